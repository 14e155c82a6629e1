"""What the benchmark scripts share: presets, the in-process HRAwareTTAModel option dict, a seeded crop
sampler independent of the global RNGs, the training loop with timing and peak memory, and scoring.

Not a test and not part of the package: run the scripts in this folder (each has ``--help``).
"""
import copy
import hashlib
import json
import os
import random
import statistics
import threading
import time

import numpy as np
import torch
import yaml

import tta_sr  # noqa: F401  (registers the archs, models and datasets; torchvision shim before basicsr)

METRICS = ('psnr_y', 'ssim', 'lpips', 'niqe')
TTA_METHODS = ('rec_only', 'lway', 'hr_aware', 'fixed')
ALL_METHODS = ('base',) + TTA_METHODS + ('srtta',)
METHOD_COLORS = {'base': '#888888', 'rec_only': '#4c72b0', 'lway': '#dd8452', 'hr_aware': '#55a868', 'fixed': '#8172b3',
                 'srtta': '#c44e52'}

# Preset values; any of them can be overridden on the command line.
PRESETS = {
    # 2 shared CPU cores: one comparison of RealESRGAN_x4plus (3 adapted methods) in about 20 minutes.
    # lr: chosen a priori, never tuned on a reported set's GT: 5e-6 * sqrt(500 / iters), i.e. the same
    # random-walk drift of the weights (Adam moves each weight by about lr per step, with noisy signs) as
    # the paper's 500 iterations at 5e-6; 2.0e-5 for 30 iterations.
    # threads 1: on a machine already running other jobs, 2 intra-op threads were 2-8x SLOWER than 1
    # (RRDBNet fwd+bwd, batch 4 of 32x32: 5.1 s with 1 thread, 12-43 s with 2, load average 6.5).
    # srtta (per image, reset after each): the same pixels per step as the methods above (4 patches of 32:
    # the official 32 of 64 cut by 32x, as 6 of 128 -> 4 of 32 is 24x), and SRTTA's own 10 steps per image,
    # so its lr stays the paper's 5e-5 (the sqrt rule with the iteration count unchanged).
    'cpu': {'lq_size': 32, 'batch': 4, 'iters': 30, 'lr': None, 'lr_rule': 'sqrt', 'ema_decay': 0.0,
            'max_images': 5, 'tile': 128, 'tile_overlap': 16, 'threads': 1,
            'srtta': {'iters': 10, 'patch': 32, 'batch': 4, 'lr': 5e-5, 'fisher_size': 32}},
    # the papers' scale (HR-aware paper / LWay: LR patch 128, batch 6, 500 iterations, Adam lr 5e-6, EMA 0.999)
    'gpu': {'lq_size': 128, 'batch': 6, 'iters': 500, 'lr': 5e-6, 'lr_rule': None, 'ema_decay': 0.999,
            'max_images': 0, 'tile': 256, 'tile_overlap': 16, 'threads': 0,
            'srtta': {'iters': 10, 'patch': 64, 'batch': 32, 'lr': 5e-5, 'fisher_size': 64}},  # SRTTA's scripts
}

# Which reconstruction branch each mode uses (LWay's own stage 1 for lway and rec_only; fixed uses none).
BRANCH_OF = {'hr_aware': 'branch', 'lway': 'lway_branch', 'rec_only': 'lway_branch'}


def add_common_args(parser, methods_default, iters_help='training iterations per method'):
    """Arguments shared by compare.py and iterations.py (preset values fill the ones left unset)."""
    parser.add_argument('--lr', dest='lr_dir', required=True, help='folder of LR images (adapted to and scored)')
    parser.add_argument('--gt', dest='gt_dir', required=True, help='folder of GT images with the same stems (scoring only)')
    parser.add_argument('--model', default='RealESRGAN_x4plus', help='SR model: a name in tta_sr/weights/manifest.yml')
    parser.add_argument('--methods', default=methods_default, help=f'comma list of {",".join(ALL_METHODS)}')
    parser.add_argument('--iters', type=int, default=None, help=iters_help)
    parser.add_argument('--merge-from', nargs='*', default=[],
                        help='result folders of runs with the same settings (e.g. one method run in parallel into '
                             'its own --out): their methods are copied into --out before this run')
    parser.add_argument('--seed', type=int, default=0, help='seed of the crops, flips, noise and model init')
    parser.add_argument('--out', required=True, help='output folder (e.g. benchmarks/runs/NAME)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='cpu', help='default values (see PRESETS)')
    parser.add_argument('--branch', default='hr_aware_cpu',
                        help='HR-aware reconstruction branch: a shipped name (tta_sr/weights/lr_recon_<name>.yml) '
                             'or a checkpoint file (then give --branch-options)')
    parser.add_argument('--lway-branch', default='lway_cpu', help='LWay branch for lway and rec_only (name or file)')
    parser.add_argument('--branch-options', default=None,
                        help='YAML holding network_recon, network_far and far_opt (top level or under train) for '
                             'branches given as files, e.g. /tmp/e2e/tta.yml')
    parser.add_argument('--lq-size', type=int, default=None, help='LR training crop')
    parser.add_argument('--batch', type=int, default=None, help='batch size')
    parser.add_argument('--learning-rate', type=float, default=None,
                        help='Adam lr (cpu preset default: 5e-6 * sqrt(500 / iters), see PRESETS)')
    parser.add_argument('--ema', type=float, default=None, dest='ema_decay',
                        help='EMA decay of the adapted model; scores use the EMA net when > 0 (0: the raw net)')
    parser.add_argument('--max-images', type=int, default=None, help='adapt to and score the first N images (0: all)')
    parser.add_argument('--images', default=None, help='comma list of image stems (overrides --max-images)')
    parser.add_argument('--tile', type=int, default=None, help='tile size of the full-image inference (LR pixels)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (0: leave as is)')
    parser.add_argument('--noise-std', type=float, default=None, help="controller noise_std (default: the branch's)")
    parser.add_argument('--far-weight', type=float, default=None,
                        help="lambda_ft of FAR in hr_aware mode (default: the method's option file)")
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override any key of the methods\' option dicts, dotted, the value read as YAML '
                             '(e.g. --set train.source_opt.loss_weight=0.5 --set gate.min_gain_db=0.1); repeatable')
    parser.add_argument('--no-niqe', action='store_true', help='skip NIQE (it is the slowest metric)')
    for key, kind, what in (('iters', int, 'steps per image'), ('patch', int, 'LR patch size'),
                            ('batch', int, 'patches per step'), ('lr', float, 'Adam lr')):
        parser.add_argument(f'--srtta-{key}', type=kind, default=None, help=f'srtta: {what} (default: the preset\'s)')


def resolve_args(args):
    """Fill unset arguments from the preset; returns a plain dict config."""
    preset = PRESETS[args.preset]
    cfg = {k: v for k, v in vars(args).items()}
    for key in ('lq_size', 'batch', 'iters', 'ema_decay', 'max_images', 'tile', 'threads'):
        if cfg.get(key) is None:
            cfg[key] = preset[key]
    cfg['tile_overlap'] = preset['tile_overlap']
    cfg['srtta'] = {k: v if cfg.get(f'srtta_{k}') is None else cfg[f'srtta_{k}'] for k, v in preset['srtta'].items()}
    if cfg.get('learning_rate') is None:
        cfg['learning_rate'] = preset['lr'] if preset['lr'] is not None else 5e-6 * (500 / max(cfg['iters'], 1)) ** 0.5
    cfg['methods'] = [m.strip() for m in cfg['methods'].split(',') if m.strip()]
    cfg['overrides'] = parse_overrides(cfg.get('overrides') or [])
    unknown = set(cfg['methods']) - set(ALL_METHODS)
    if unknown:
        raise SystemExit(f'unknown method(s) {sorted(unknown)}; choose from {", ".join(ALL_METHODS)}')
    cfg['device'] = 'cuda' if torch.cuda.is_available() and args.preset == 'gpu' else 'cpu'
    if cfg['threads'] and cfg['device'] == 'cpu':
        torch.set_num_threads(cfg['threads'])
    cfg['torch_threads'] = torch.get_num_threads()
    # x86 FTZ/DAZ: a run that drives weights towards tiny values would otherwise slow down ~10x on CPU
    # (measured on a diverging smoke run); numerically negligible.
    cfg['flush_denormal'] = bool(torch.set_flush_denormal(True))
    return cfg


def parse_overrides(items):
    """``['a.b=1', ...]`` -> ``{'a.b': 1, ...}`` (values parsed as YAML); errors name a malformed item."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise SystemExit(f'--set {item!r}: expected KEY=VALUE, e.g. train.source_opt.loss_weight=0.5')
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def run_settings(cfg, pairs):
    """What makes two runs comparable (stored as ``settings`` in results.json / curves.json; merges and the
    sweep's reuse check compare it)."""
    settings = {k: cfg[k] for k in ('model', 'lr_dir', 'gt_dir', 'preset', 'iters', 'batch', 'lq_size', 'learning_rate',
                                    'ema_decay', 'seed', 'tile', 'tile_overlap', 'far_weight', 'noise_std', 'device',
                                    'overrides')}
    settings['images'] = [p[0] for p in pairs]
    settings['srtta'] = dict(cfg['srtta'])
    return settings


def image_pairs(cfg):
    """[(stem, lr_path, gt_path)] of the chosen images, sorted by stem."""
    from tta_sr.utils.image_io import scan_images
    gts = {os.path.splitext(os.path.basename(p))[0]: p for p in scan_images(cfg['gt_dir'])}
    pairs = []
    for path in scan_images(cfg['lr_dir']):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in gts:
            raise SystemExit(f'LR image {path} has no GT with stem {stem!r} in {cfg["gt_dir"]}')
        pairs.append((stem, path, gts[stem]))
    pairs.sort()
    if cfg.get('images'):
        wanted = [s.strip() for s in cfg['images'].split(',')]
        pairs = [p for p in pairs if p[0] in wanted]
    elif cfg.get('max_images'):
        pairs = pairs[:cfg['max_images']]
    if not pairs:
        raise SystemExit(f'no LR/GT pairs found in {cfg["lr_dir"]} / {cfg["gt_dir"]}')
    return pairs


def branch_record(path):
    """{'path', 'sha256'} of a branch checkpoint, or None (a method without a branch)."""
    return {'path': path, 'sha256': sha256_prefix(path)} if path else None


def sha256_prefix(path, n=12):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:n]


def branch_files(name_or_path, options_file=None):
    """(checkpoint path, options dict with network_recon / network_far / far_opt / controller)."""
    from tta_sr.weights.branches import branch_source
    path, options = branch_source(name_or_path, options_file)
    if not options.get('network_recon'):
        raise SystemExit(f'branch {name_or_path} is a checkpoint file: give --branch-options (its stage-1 option file) '
                         'or put that file beside it with the same name and .yml')
    return path, options


def method_template(model, method):
    """The option dict of ``options/tta/<method>_<model>.yml`` (the shipped defaults), or None."""
    from tta_sr.commands.adapt_options import templates
    from tta_sr.utils.launch import read_options
    path = templates().get(model, {}).get(method)
    return read_options(path) if path else None


def model_options(cfg, method, pairs, root):
    """The option dict ``basicsr.utils.options.parse_options`` would hand to ``build_model`` (is_train).

    The ``train`` and ``gate`` blocks come from the method's shipped option file (``options/tta``), so a
    benchmark runs the defaults a user gets; the preset sets only the budget (iterations, lr, batch, crop,
    EMA), ``--far-weight`` / ``--noise-std`` / ``--set`` override the rest. ``rec_only`` has no option file:
    L_rec alone, no gate. Returns (opt, branch path or None).
    """
    from tta_sr.commands.adapt_options import set_key
    from tta_sr.weights.resolver import manifest_entry
    entry = manifest_entry(cfg['model'])
    if method not in TTA_METHODS:
        raise SystemExit(f'{method!r} is not an HRAwareTTAModel mode (compare.py runs srtta itself)')
    template = method_template(cfg['model'], method) or {}
    train = copy.deepcopy(template.get('train') or {'rec_opt': {'type': 'ReconstructionLoss'}})
    train.pop('early_stopping', None)  # no validation split here: every method trains its full budget
    train.update(mode=method, ema_decay=cfg['ema_decay'], total_iter=cfg['iters'], warmup_iter=-1,
                 optim_g=dict(train.get('optim_g') or {'type': 'Adam', 'betas': [0.9, 0.999]}, lr=cfg['learning_rate']),
                 scheduler={'type': 'MultiStepLR', 'milestones': [10 ** 9], 'gamma': 0.5})
    branch_path, branch_opt = None, {}
    if method in BRANCH_OF:
        branch = cfg['lway_branch'] if BRANCH_OF[method] == 'lway_branch' else cfg['branch']
        branch_path, branch_opt = branch_files(branch, cfg.get('branch_options'))
    if method == 'hr_aware':
        train['far_opt'] = dict(branch_opt.get('far_opt') or {'type': 'FARLoss'}, **(train.get('far_opt') or {}))
        if cfg.get('far_weight') is not None:
            train['far_opt']['loss_weight'] = cfg['far_weight']
        train['controller'] = dict(branch_opt.get('controller') or {}, **(train.get('controller') or {}))
        if cfg.get('noise_std') is not None:
            train['controller']['noise_std'] = cfg['noise_std']
    names = [stem for stem, _, _ in pairs]
    opt = {
        'name': f'bench_{method}', 'model_type': 'HRAwareTTAModel', 'scale': entry['scale'],
        'num_gpu': 1 if cfg['device'] == 'cuda' else 0, 'manual_seed': cfg['seed'], 'is_train': True, 'dist': False,
        'rank': 0, 'world_size': 1, 'auto_resume': False,
        'datasets': {'train': {'name': 'bench_lr', 'type': 'LRImageDataset', 'dataroot_lq': cfg['lr_dir'],
                               'image_names': names, 'lq_size': cfg['lq_size'], 'split': 'all', 'phase': 'train',
                               'scale': entry['scale'], 'return_hf_weight': method == 'lway', 'use_hflip': True,
                               'use_rot': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': cfg['batch']}},
        'network_g': dict(entry.get('arch_kwargs') or {}, type=entry['arch']),
        'network_recon': copy.deepcopy(branch_opt.get('network_recon')),
        'network_far': copy.deepcopy(branch_opt.get('network_far')),
        'path': dict(experiment_paths(root), pretrain_network_g=cfg['model'], strict_load_g=True,
                     pretrain_network_recon=branch_path, resume_state=None),
        'train': train,
        'gate': copy.deepcopy(template.get('gate') or {}) if template else {'enabled': False},
        'eval': {'tile': cfg['tile'], 'tile_overlap': cfg['tile_overlap']},
        'val': {'val_freq': 10 ** 9, 'save_img': False},
        'logger': {'print_freq': 10 ** 9, 'save_checkpoint_freq': 10 ** 9, 'use_tb_logger': False},
    }
    for key, value in cfg.get('overrides', {}).items():
        set_key(opt, key, value)
    return opt, branch_path


def experiment_paths(root):
    """The ``path`` entries ``parse_options`` derives from an experiments root."""
    return {'experiments_root': root, 'models': os.path.join(root, 'models'),
            'training_states': os.path.join(root, 'training_states'), 'log': root,
            'visualization': os.path.join(root, 'visualization')}


def srtta_options(cfg, pairs, root):
    """SRTTAModel's option dict: ``options/tta/srtta_<model>.yml`` (its trainable part, classifier, Fisher
    ratio) with this run's images (whole, one per iteration), the preset's srtta budget, seed and paths."""
    opt = method_template(cfg['model'], 'srtta')
    if opt is None:
        raise SystemExit(f'no SRTTA option file for {cfg["model"]}: expected options/tta/srtta_{cfg["model"]}.yml')
    budget = cfg['srtta']
    opt.update(name='bench_srtta', num_gpu=1 if cfg['device'] == 'cuda' else 0, manual_seed=cfg['seed'],
               is_train=True, dist=False, rank=0, world_size=1, auto_resume=False,
               eval={'tile': cfg['tile'], 'tile_overlap': cfg['tile_overlap']})
    opt['datasets'] = {'train': dict(opt['datasets']['train'], dataroot_lq=cfg['lr_dir'], phase='train',
                                     image_names=[stem for stem, _, _ in pairs], scale=opt['scale'])}
    opt['path'].update(experiment_paths(root), pretrain_network_g=cfg['model'], resume_state=None)
    opt['train'].update(iterations_per_image=budget['iters'], patch_size=budget['patch'], patch_batch=budget['batch'],
                        fisher_max_size=budget['fisher_size'], total_iter=len(pairs))
    opt['train']['optim_g'] = dict(opt['train']['optim_g'], lr=budget['lr'])
    return opt


def build_tta_model(opt):
    from basicsr.models import build_model
    for key in ('experiments_root', 'models', 'training_states', 'visualization'):
        os.makedirs(opt['path'][key], exist_ok=True)
    return build_model(copy.deepcopy(opt))


class CropSampler:
    """Batches of random LR crops (+ flips), drawn from a private ``random.Random(seed)``.

    The global RNGs (which the controller's noise uses) are never touched, so every method sees exactly
    the same crops in the same order. Batch ``k`` is ``{'lq': (B, 3, s, s), 'lq_path': [...],
    'hf_weight': (B, 1, s, s)}`` (the latter for LWay), as BasicSR's collate of LRImageDataset items.
    """

    def __init__(self, dataset, batch, size, seed, hf_weight=False):
        self.dataset, self.batch, self.size, self.hf = dataset, batch, size, hf_weight
        self.rng = random.Random(seed)
        self.order = []

    def _next_index(self):
        if not self.order:  # epoch-style: each image once per pass, shuffled
            self.order = self.rng.sample(range(len(self.dataset)), len(self.dataset))
        return self.order.pop()

    def __call__(self):
        lqs, ws, paths = [], [], []
        for _ in range(self.batch):
            i = self._next_index()
            img = self.dataset.image(i)
            h, w = img.shape[1:]
            top, left = self.rng.randint(0, h - self.size), self.rng.randint(0, w - self.size)
            flips = [self.rng.random() < 0.5 for _ in range(3)]
            planes = [img] + ([self.dataset.hf_weight(i)] if self.hf else [])
            planes = [p[:, top:top + self.size, left:left + self.size] for p in planes]
            if flips[0]:
                planes = [p.flip(2) for p in planes]
            if flips[1]:
                planes = [p.flip(1) for p in planes]
            if flips[2]:
                planes = [p.transpose(1, 2) for p in planes]
            lqs.append(planes[0].contiguous())
            if self.hf:
                ws.append(planes[1].contiguous())
            paths.append(self.dataset.paths[i])
        out = {'lq': torch.stack(lqs), 'lq_path': paths}
        if self.hf:
            out['hf_weight'] = torch.stack(ws)
        return out


def make_sampler(opt, cfg):
    from tta_sr.data.lr_image_dataset import LRImageDataset
    dataset = LRImageDataset(dict(opt['datasets']['train'], return_hf_weight=True))
    return CropSampler(dataset, cfg['batch'], cfg['lq_size'], cfg['seed'], hf_weight=opt['train']['mode'] == 'lway')


class PeakMemory:
    """Peak memory over a ``with`` block: process RSS sampled every ``interval`` s on CPU (psutil), or
    ``torch.cuda.max_memory_allocated`` on GPU. ``peak_mb`` (absolute) and ``delta_mb`` (above the start)."""

    def __init__(self, device='cpu', interval=0.01):
        self.device, self.interval = str(device), interval
        self.peak_mb = self.start_mb = self.delta_mb = None

    def __enter__(self):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2 ** 20
            return self
        import psutil
        self._proc = psutil.Process()
        self.start_mb = self._peak = self._proc.memory_info().rss / 2 ** 20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss / 2 ** 20)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, self._proc.memory_info().rss / 2 ** 20)
        self.delta_mb = self.peak_mb - self.start_mb
        return False


def sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def train_steps(model, sampler, start, stop, device, times, losses):
    """Iterations ``start+1 .. stop`` of ``model`` on the sampler's batches; appends seconds and losses."""
    for it in range(start + 1, stop + 1):
        batch = sampler()
        sync(device)
        t0 = time.perf_counter()
        model.update_learning_rate(it, warmup_iter=-1)
        model.feed_data(batch)
        model.optimize_parameters(it)
        sync(device)
        times.append(time.perf_counter() - t0)
        losses.append({k: float(v) for k, v in model.log_dict.items()})


def eval_net(model, cfg):
    """The network scored: the EMA copy when EMA is on, else the raw adapted net."""
    if cfg['ema_decay'] > 0 and hasattr(model, 'net_g_ema'):
        return model.net_g_ema
    return model.get_bare_model(model.net_g)


class Scorer:
    """PSNR-Y, SSIM, LPIPS (and NIQE) of full-image (tiled) SR outputs against GT."""

    def __init__(self, cfg, scale):
        from tta_sr.metrics import create_metric
        names = [m for m in METRICS if not (cfg.get('no_niqe') and m == 'niqe')]
        self.metrics = {n: create_metric(n, device=cfg['device'], scale=scale) for n in names}
        self.scale, self.cfg = scale, cfg

    def info(self):
        return {n: m.info() for n, m in self.metrics.items()}

    def score_images(self, srs, gts):
        """{metric: {'mean': x, 'per_image': {stem: x}}} for dicts stem -> (H, W, 3) float arrays."""
        out = {}
        for name, metric in self.metrics.items():
            per = {stem: metric(srs[stem], gts[stem]) for stem in srs}
            out[name] = {'mean': float(np.mean(list(per.values()))), 'per_image': per}
        return out

    def upscale_all(self, net, pairs, save_dir=None):
        from tta_sr.utils.image_io import read_image, write_image
        from tta_sr.utils.tiling import upscale_image
        was_training = net.training
        net.eval()
        srs = {}
        for stem, lr_path, _ in pairs:
            lr, _ = read_image(lr_path)
            srs[stem] = upscale_image(net, lr, self.scale, self.cfg['tile'], self.cfg['tile_overlap'],
                                      self.cfg['device'])
            if save_dir:
                write_image(os.path.join(save_dir, f'{stem}.png'), srs[stem])
        net.train(was_training)
        return srs


def read_gts(pairs):
    from tta_sr.utils.image_io import read_image
    return {stem: read_image(gt)[0] for stem, _, gt in pairs}


def read_folder(folder, pairs):
    from tta_sr.utils.image_io import read_image
    return {stem: read_image(os.path.join(folder, f'{stem}.png'))[0] for stem, _, _ in pairs}


def summary(times):
    """Seconds per iteration: mean and median over the iterations after the first (warm-up)."""
    steady = times[1:] or times
    return {'mean': float(np.mean(steady)), 'median': float(statistics.median(steady)), 'first': float(times[0]),
            'n': len(times)}


def machine_info(cfg):
    import platform
    import psutil
    info = {'platform': platform.platform(), 'python': platform.python_version(), 'torch': torch.__version__,
            'cpu_count_logical': os.cpu_count(), 'torch_threads': torch.get_num_threads(), 'device': cfg['device'],
            'load_avg_at_start': os.getloadavg(), 'ram_gb': round(psutil.virtual_memory().total / 2 ** 30, 1)}
    if cfg['device'] == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def dump_json(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2, default=str)
    os.replace(tmp, path)


def setup_logging(out):
    """BasicSR's root logger to ``<out>/bench.log`` (the model logs there)."""
    import logging
    from basicsr.utils import get_root_logger
    os.makedirs(out, exist_ok=True)
    return get_root_logger(log_level=logging.INFO, log_file=os.path.join(out, 'bench.log'))


def merge_results(results, folders, filename, settings):
    """Copy the methods of ``folder/filename`` (same ``settings`` only) into ``results`` for each folder."""
    for folder in folders:
        with open(os.path.join(folder, filename)) as f:
            other = json.load(f)
        if other.get('settings') != settings:
            raise SystemExit(f'--merge-from {folder}: its settings differ from this run\'s; not merged')
        results['methods'].update(other['methods'])
        results.setdefault('merged_from', []).append({'folder': folder, 'command': other.get('command')})
