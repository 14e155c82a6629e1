"""A benchmark run's configuration: the methods it can compare, the presets (``cpu``, ``gpu``), the command-line
arguments compare.py, iterations.py and overhead.py share, and their resolution into one config dict.

Not a test and not part of the package: run the scripts in this folder (each has ``--help``).
"""
import torch
import yaml

import tta_sr  # noqa: F401  (registers the archs, models and datasets; torchvision shim before basicsr)
from tta_sr.options.stage2 import HR_AWARE_TRAIN

TTA_METHODS = ('rec_only', 'lway', 'hr_aware', 'fixed')
ALL_METHODS = ('base',) + TTA_METHODS + ('srtta',)
METHOD_COLORS = {'base': '#888888', 'rec_only': '#4c72b0', 'lway': '#dd8452', 'hr_aware': '#55a868', 'fixed': '#8172b3',
                 'srtta': '#c44e52'}



def user_cpu_preset():
    """The budget of ``tta-sr adapt --preset cpu`` and the quickstart (``options/fragments/presets/cpu.yml``, the one
    definition): LR crop, batch, iterations, EMA, and the validation interval at which the selector's checkpoints are
    taken; the learning rate is the template's (None here: the model's declared default, Adam 5e-6)."""
    from tta_sr.commands.adapt_options import cpu_preset
    preset = cpu_preset()
    return {'lq_size': preset['datasets.train.lq_size'], 'batch': preset['datasets.train.batch_size_per_gpu'],
            'iters': preset['train.total_iter'], 'ema_decay': preset['train.ema_decay'], 'lr': None,
            'candidate_every': preset['val.val_freq']}


# Preset values; any of them can be overridden on the command line.
PRESETS = {
    # What a user of `tta-sr adapt --preset cpu` runs (user_cpu_preset), plus what only a benchmark sets: 5 images,
    # tiles of 128, 1 torch thread (on a machine already running other jobs, 2 intra-op threads were 2-8x SLOWER
    # than 1: RRDBNet fwd+bwd, batch 4 of 32x32: 5.1 s with 1 thread, 12-43 s with 2, load average 6.5).
    # Early stopping is off in every benchmark (each method trains its full budget).
    # srtta (per image, reset after each): the same pixels per step as 4 patches of 32 (the official 32 of 64 cut by
    # 32x, as 6 of 128 -> 4 of 32 is 24x), and SRTTA's own 10 steps per image at its paper lr 5e-5.
    'cpu': dict(user_cpu_preset(), max_images=5, tile=128, tile_overlap=16, threads=1,
                srtta={'iters': 10, 'patch': 32, 'batch': 4, 'lr': 5e-5, 'fisher_size': 32}),
    # the papers' scale (HR-aware paper / LWay: LR patch 128, batch 6, 500 iterations, Adam lr 5e-6, EMA 0.999)
    'gpu': {'lq_size': 128, 'batch': 6, 'iters': 500, 'lr': 5e-6, 'ema_decay': 0.999, 'candidate_every': 50,
            'max_images': 0, 'tile': 256, 'tile_overlap': 16, 'threads': 0,
            'srtta': {'iters': 10, 'patch': 64, 'batch': 32, 'lr': 5e-5, 'fisher_size': 64}},  # SRTTA's scripts
}


def add_run_args(parser, methods_default, iters_help='training iterations per method'):
    """Arguments shared by compare.py, iterations.py and overhead.py (preset values fill the ones left unset)."""
    parser.add_argument('--lr', dest='lr_dir', required=True, help='folder of LR images (adapted to and scored)')
    parser.add_argument('--gt', dest='gt_dir', required=True,
                        help='folder of GT images with the same stems (scoring only)')
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
                        help="Adam lr (default: the preset's; cpu: HR-aware's declared default, as tta-sr adapt uses)")
    parser.add_argument('--candidate-every', type=int, default=None,
                        help="iterations between the selector's checkpoints (default: the preset's validation interval)")
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
    for key in ('lq_size', 'batch', 'iters', 'ema_decay', 'max_images', 'tile', 'threads', 'candidate_every'):
        if cfg.get(key) is None:
            cfg[key] = preset[key]
    cfg['tile_overlap'] = preset['tile_overlap']
    cfg['srtta'] = {k: v if cfg.get(f'srtta_{k}') is None else cfg[f'srtta_{k}'] for k, v in preset['srtta'].items()}
    if cfg.get('learning_rate') is None:  # the cpu preset: the default tta-sr adapt's HR-aware runs use
        cfg['learning_rate'] = preset['lr'] or HR_AWARE_TRAIN.default('optim_g')['lr']
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


def parse_overrides(items, flag='--set', example='train.source_opt.loss_weight=0.5'):
    """``['a.b=1', ...]`` -> ``{'a.b': 1, ...}`` (values parsed as YAML); errors name a malformed item and ``flag``."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise SystemExit(f'{flag} {item!r}: expected KEY=VALUE, e.g. {example}')
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides
