"""The option dicts the benchmark scripts build their models from, in-process (what ``parse_options`` would hand
to ``build_model``): the method's shipped template ``options/tta/<method>_<model>.yml``, so that a benchmark runs
the defaults a user gets, with this run's images, budget, seed and folders laid over it (``merge``), then
``--far-weight`` / ``--noise-std`` / ``--set`` (``set_key``). Keys left unset take the model's declared defaults
(``tta_sr.options.stage2``), and a shipped branch's own options (``network_recon``, ``network_far``, ``far_opt``,
``controller``) are not copied in: the model reads them from the branch and lays ``train.far_opt`` /
``train.controller`` over them itself. Only a branch given as a file with ``--branch-options`` elsewhere has its
options laid under the template, as a user's option file would hold them.
"""
import copy
import os

from tta_sr.commands.adapt_options import merge, set_key, templates
from tta_sr.options.stage2 import TRAIN_OF
from tta_sr.utils.launch import read_options
from tta_sr.weights.branches import branch_source
from tta_sr.weights.resolver import manifest_entry

from presets import TTA_METHODS

# Which reconstruction branch each mode uses (LWay's own stage 1 for lway and rec_only; fixed uses none).
BRANCH_OF = {'hr_aware': 'branch', 'lway': 'lway_branch', 'rec_only': 'lway_branch'}
# rec_only has no option file: the model's defaults (L_rec alone), no gate.
REC_ONLY_OPTIONS = {'model_type': 'HRAwareTTAModel', 'train': {'mode': 'rec_only'}, 'gate': {'enabled': False}}
NEVER = 10 ** 9  # an iteration no benchmark reaches: no validation, checkpoint, log line or lr milestone


def method_template(model, method):
    """The option dict of ``options/tta/<method>_<model>.yml`` (the shipped defaults), or None."""
    path = templates().get(model, {}).get(method)
    return read_options(path) if path else None


def branch_checkpoint(name_or_path, options_file=None):
    """(checkpoint path, options dict with network_recon / network_far / far_opt / controller) of a branch."""
    path, options = branch_source(name_or_path, options_file)
    if not options.get('network_recon'):
        raise SystemExit(f'branch {name_or_path} is a checkpoint file: give --branch-options (its stage-1 option file) '
                         'or put that file beside it with the same name and .yml')
    return path, options


def branch_file_options(options):
    """A branch's options as a user's option file holds them (the model reads a branch's options itself only
    from its sidecar ``.yml``, not from ``--branch-options``)."""
    return {'network_recon': options.get('network_recon'), 'network_far': options.get('network_far'),
            'train': {'far_opt': options.get('far_opt') or {}, 'controller': options.get('controller') or {}}}


def experiment_paths(root):
    """The ``path`` entries ``parse_options`` derives from an experiments root."""
    return {'experiments_root': root, 'models': os.path.join(root, 'models'),
            'training_states': os.path.join(root, 'training_states'), 'log': root,
            'visualization': os.path.join(root, 'visualization')}


def optimiser(opt, lr):
    """``opt``'s optimiser of M (the template's, else the model's default) with learning rate ``lr``; whole, as
    the model takes ``train.optim_g`` as one value."""
    return dict(opt['train'].get('optim_g') or TRAIN_OF[opt['model_type']].default('optim_g'), lr=lr)


def lay_run(opt, cfg, name, root, datasets):
    """Lay over ``opt`` (in place; returns it) what every benchmark model takes from the run: name, device, seed,
    in-process training and its folder under ``root``; ``datasets`` (this run's images) and ``eval`` (tiled
    inference alone: the scripts score the outputs themselves) replace the template's."""
    merge(opt, {'name': name, 'num_gpu': 1 if cfg['device'] == 'cuda' else 0, 'manual_seed': cfg['seed'],
                'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1, 'auto_resume': False,
                'path': dict(experiment_paths(root), pretrain_network_g=cfg['model'], resume_state=None)})
    opt.update(datasets=datasets, eval={'tile': cfg['tile'], 'tile_overlap': cfg['tile_overlap']})
    return opt


def model_options(cfg, method, pairs, root):
    """HRAwareTTAModel's option dict for ``method`` (is_train); returns (opt, branch path or None).

    The preset sets only the budget (iterations, lr, batch, crop, EMA); early stopping is off (every method
    trains its full budget).
    """
    if method not in TTA_METHODS:
        raise SystemExit(f'{method!r} is not an HRAwareTTAModel mode (compare.py runs srtta itself)')
    entry = manifest_entry(cfg['model'])
    opt = method_template(cfg['model'], method) or copy.deepcopy(REC_ONLY_OPTIONS)
    opt['train'].pop('early_stopping', None)
    branch_path = None
    if method in BRANCH_OF:
        branch_path, branch_options = branch_checkpoint(cfg[BRANCH_OF[method]], cfg.get('branch_options'))
        if cfg.get('branch_options'):
            opt = merge(branch_file_options(branch_options), opt)
    # all the images, no validation split: the gate compares on every image
    lay_run(opt, cfg, f'bench_{method}', root, {'train': {
        'name': 'bench_lr', 'type': 'LRImageDataset', 'dataroot_lq': cfg['lr_dir'],
        'image_names': [stem for stem, _, _ in pairs], 'lq_size': cfg['lq_size'], 'split': 'all', 'phase': 'train',
        'scale': entry['scale'], 'return_hf_weight': method == 'lway', 'use_hflip': True, 'use_rot': True,
        'num_worker_per_gpu': 0, 'batch_size_per_gpu': cfg['batch']}})
    merge(opt, {'model_type': 'HRAwareTTAModel', 'scale': entry['scale'],
                'network_g': dict(entry.get('arch_kwargs') or {}, type=entry['arch']),
                'path': {'strict_load_g': True, 'pretrain_network_recon': branch_path},
                'train': {'mode': method, 'ema_decay': cfg['ema_decay'], 'total_iter': cfg['iters'], 'warmup_iter': -1,
                          'optim_g': optimiser(opt, cfg['learning_rate']),
                          'scheduler': {'type': 'MultiStepLR', 'milestones': [NEVER], 'gamma': 0.5}},
                'val': {'val_freq': NEVER, 'save_img': False},
                'logger': {'print_freq': NEVER, 'save_checkpoint_freq': NEVER, 'use_tb_logger': False}})
    if method == 'hr_aware':
        for key, value in (('train.far_opt.loss_weight', cfg.get('far_weight')),
                           ('train.controller.noise_std', cfg.get('noise_std'))):
            if value is not None:
                set_key(opt, key, value)
    for key, value in cfg.get('overrides', {}).items():
        set_key(opt, key, value)
    return opt, branch_path


def srtta_options(cfg, pairs, root):
    """SRTTAModel's option dict: ``options/tta/srtta_<model>.yml`` (its trainable part, classifier, Fisher
    ratio) with this run's images (whole, one per iteration), the preset's srtta budget, seed and paths."""
    opt = method_template(cfg['model'], 'srtta')
    if opt is None:
        raise SystemExit(f'no SRTTA option file for {cfg["model"]}: expected options/tta/srtta_{cfg["model"]}.yml')
    budget = cfg['srtta']
    lay_run(opt, cfg, 'bench_srtta', root, {'train': dict(
        opt['datasets']['train'], dataroot_lq=cfg['lr_dir'], phase='train', image_names=[stem for stem, _, _ in pairs],
        scale=opt['scale'])})
    merge(opt, {'train': {'iterations_per_image': budget['iters'], 'patch_size': budget['patch'],
                          'patch_batch': budget['batch'], 'fisher_opt': {'max_size': budget['fisher_size']},
                          'total_iter': len(pairs), 'optim_g': optimiser(opt, budget['lr'])}})
    return opt


def build_tta_model(opt):
    """The model of ``opt``, its folders created (``opt`` itself is left as it is)."""
    from basicsr.models import build_model
    for key in ('experiments_root', 'models', 'training_states', 'visualization'):
        os.makedirs(opt['path'][key], exist_ok=True)
    return build_model(copy.deepcopy(opt))
