"""Stage 2's option schema: every key that ``HRAwareTTAModel``, ``SRTTAModel`` and ``LRImageDataset`` read, with
its one default. The models read the values :func:`resolve_stage2` returns, never ``.get(key, default)``.

Precedence, lowest first: the defaults below; for ``train.controller`` and ``train.far_opt`` the shipped
branch's own settings (its sidecar YAML: how the branch was trained, e.g. its controller noise); the option file.
An old spelling (:data:`RENAMED`) is accepted for one release with a warning.
"""
import dataclasses
import re
import warnings

from tta_sr.options.schema import REQUIRED, Block, Option, OptionError, markdown_table, resolve, unknown_key_error

NUM = (int, float)
MODES = ('hr_aware', 'lway', 'rec_only', 'fixed')
DEFAULT_METRICS = ('psnr_y', 'ssim', 'lpips', 'niqe')
DEFAULT_TILE, DEFAULT_TILE_OVERLAP = 256, 16
CHARBONNIER_EPS = 1e-3 / 255 ** 2  # the official eps 1e-3 is on [0, 255] images; the same floor on [0, 1]
HR_AWARE_MODEL, SRTTA_MODEL = 'HRAwareTTAModel', 'SRTTAModel'


def _fisher(ratio):
    return Block('SRTTA\'s parameter preservation (`tta_sr.models.fisher_restoration`): after each step the most '
                 'Fisher-important entries of every trainable tensor go back to the source values', {
                     'ratio': Option(ratio, NUM, 'share of each tensor\'s entries held at the source values (0: off)'),
                     'max_size': Option(64, (int,), 'longest side of the LR centre crops the Fisher information is '
                                                    'estimated on'),
                 })


def _optimiser(lr):
    return Option({'type': 'Adam', 'lr': lr, 'betas': [0.9, 0.999]}, (dict,), 'optimiser of M (BasicSR `optim_g`)')


COMMON_TRAIN = {
    'total_iter': Option(REQUIRED, (int,), 'training iterations (BasicSR)'),
    'warmup_iter': Option(-1, (int,), 'linear warm-up iterations (BasicSR; -1: none)'),
    'scheduler': Option({'type': 'MultiStepLR', 'milestones': [100000], 'gamma': 0.5}, (dict,),
                        'learning-rate scheduler (BasicSR)'),
    'trainable': Option(None, (dict,), 'the part of M that learns: `{patterns: [regex, ...]}` or `{fraction: f}` '
                                       '(nearest the output); null: all of M'),
    'grad_clip': Option(None, NUM, 'clip the gradient norm of M to this value (null: no clipping)'),
    'loss_health': Option(None, (dict,), 'NaN/Inf guard (`tta_sr.utils.training_health.LossHealthGuard` '
                                         'arguments: snapshot_every, lr_decay_on_nan, max_consecutive)'),
    'debug_inject_nan_iter': Option(None, (int,), 'testing only: make the loss NaN at this iteration'),
}

CONTROLLER = Block('the quality controller s = n + HQI(X, M(X)); keys not given come from the branch\'s sidecar, '
                   'then from these defaults', {
                       'enabled': Option(True, (bool,), 'false: s = 1'),
                       'noise_std': Option(1.0, NUM, 'standard deviation of n during training (the shipped '
                                                     'branches set their own, 0.1)'),
                       'flip_sign': Option(False, (bool,), 'ablation: s = n + 1 - HQI'),
                       'lpips_kind': Option('auto', (str,), 'LPIPS of HQI (`tta_sr.archs.lpips_arch`)'),
                       'lpips_net': Option('alex', (str,), 'LPIPS backbone of HQI'),
                   }, fill=False)

HR_AWARE_TRAIN = Block('stage 2 of `HRAwareTTAModel`', {
    'mode': Option('hr_aware', (str,), 'the loss: HR-aware, LWay, the plain branch loss, or a fixed downscaler',
                   choices=MODES),
    **COMMON_TRAIN,
    'optim_g': _optimiser(5e-6),
    'ema_decay': Option(0, NUM, 'EMA of M\'s weights (0: off)'),
    'rec_opt': Option({'type': 'ReconstructionLoss', 'l1_weight': 1.0, 'lpips_weight': 1.0}, (dict,),
                      'L_rec between R\'s reconstruction (fixed mode: D(M(X))) and X'),
    'source_opt': Option(None, (dict,), 'anchor of M(X) to the frozen source model\'s output (a loss, e.g. '
                                        '`LowPassL1Loss`)'),
    'color_opt': Option(None, (dict,), 'anchor of down(M(X))\'s low frequencies to X'),
    'far_opt': Option(None, (dict,), 'FAR loss, laid over the branch\'s `far_opt` (hr_aware mode)'),
    'use_far': Option(True, (bool,), 'false: no FAR term even when the branch has one'),
    'controller': CONTROLLER,
    'early_stopping': Block('keep the best validation\'s weights', {
        'patience': Option(0, (int,), 'stop after this many validations without a lower `val.monitor` (0: off)'),
    }),
    'fisher_opt': _fisher(0.0),
    'degradation_embedding': Option('image', (str,), 'e_d per whole image (cached) or per crop',
                                    choices=('image', 'crop')),
    'degradation_embedding_max_size': Option(256, (int,), 'longest side an image is shrunk to for e_d'),
    'fixed_degradation': Option('area', (str,), 'fixed mode\'s known downscaler D (`tta_sr.ops.downscalers`: area, '
                                                'bicubic, bicubic_aa, gauss<sigma>)'),
})

SRTTA_TRAIN = Block('`SRTTAModel` (docs/srtta.md)', {
    'mode': Option('srtta', (str,), 'the method\'s name', choices=('srtta',)),
    **COMMON_TRAIN,
    'optim_g': _optimiser(5e-5),
    'iterations_per_image': Option(10, (int,), 'adaptation steps per LR image'),
    'patch_size': Option(64, (int,), 'side of the LR patches of one step'),
    'patch_batch': Option(32, (int,), 'patches per step'),
    'teacher_weight': Option(1.0, NUM, 'weight of the feature-alignment loss'),
    'per_image_reset': Option(True, (bool,), 'false: lifelong (no reset between images)'),
    'charbonnier_eps': Option(CHARBONNIER_EPS, NUM, 'epsilon of the Charbonnier loss'),
    'classifier_max_size': Option(512, (int,), 'longest side an image is shrunk to for the classifier'),
    'degradation': Option(None, (dict,), 'settings of the re-degradation (`tta_sr.data.degradation_types`)'),
    'feature_layer': Option(None, (str,), 'the layer whose features are aligned (null: the trunk\'s end)'),
    'types': Option(None, (list, str), 'fixed degradation types instead of the classifier\'s'),
    'network_classifier': Option(None, (dict,), 'classifier arch (null: the shipped one\'s)'),
    'fisher_opt': _fisher(0.5),
})

GATE = Block('what the run hands back: the GT-free selector (`tta_sr.models.selector`) over the candidates '
             '(`tta_sr.models.candidates`)', {
    'enabled': Option(True, (bool,), 'false: hand back the adapted model whatever it does'),
    'reference': Option('bicubic_aa', (str,), 'how each judged LR crop X is downscaled into the self-validation '
                                              'input X_d: a neutral downscaler, the branch R with X\'s own '
                                              'degradation embedding, or the neutral one plus X\'s own LR residual '
                                              'X - D(M_0(X)) (`noise_matched`)',
                        choices=('bicubic_aa', 'branch', 'noise_matched')),
    'checkpoints': Option(True, (bool,), 'the weights at every validation are candidates (else only the last)'),
    'alphas': Option([0.25, 0.5, 0.75], (list,), 'weight-space blends theta_0 + a (theta - theta_0) of the last '
                                                 'weights that are candidates'),
    'projection': Option([], (list,), 'kinds of LR-consistency projection added to every candidate (`bicubic_aa`, '
                                      '`branch`); none by default: self-validation cannot judge a projection'),
    'projection_steps': Option(1, (int,), 'back-projection steps S <- S + U(X - D(S))'),
    'margin_db': Option(0.05, NUM, 'a candidate must beat the source\'s self-validation PSNR-Y by this (dB)'),
    'max_lpips_increase': Option(0.0, NUM, 'and keep its self-validation LPIPS within the source\'s + this'),
    'lpips_per_db': Option(0.005, NUM, 'and lower that LPIPS by at least this much more for each dB of its PSNR-Y '
                                     'gain (a blur buys PSNR-Y without lowering LPIPS)'),
    'max_noise_matched_loss_db': Option(0.0, NUM, 'and keep its self-validation PSNR-Y with the noise-matched input '
                                                   '(X_d plus X\'s own LR residual) within this of the source\'s '
                                                   '(dB; null: not checked)', nullable=True),
    'max_residual_gate': Option(0.05, NUM, 'above this residual gate g(E_deg(X)) of the branch (what its downscaler '
                                           'bank does not explain: noise, JPEG, heavy blur) self-validation is not '
                                           'trusted and the source model is kept'),
    'min_images': Option(4, (int,), 'fewer validation images than this: judge on all adapted images'),
    'crop_size': Option(128, (int,), 'LR side of the crops judged; an image no larger is judged whole'),
    'crops_per_image': Option(2, (int,), 'seeded crops of each larger image'),
    'max_crops': Option(16, (int,), 'crops judged in all (0: no limit); the cost of a check is bounded by it'),
})

EVAL = Block('outputs and scores written at the end (`results/`, `report.html`, `metrics.json`)', {
    'dataroot_gt': Option(None, (str,), 'ground truth, for scoring only'),
    'metrics': Option(list(DEFAULT_METRICS), (list, tuple), 'metrics of the report (`tta_sr.metrics`)'),
    'tile': Option(DEFAULT_TILE, (int,), 'LR tile side of whole-image passes (0: whole image)'),
    'tile_overlap': Option(DEFAULT_TILE_OVERLAP, (int,), 'LR overlap of neighbouring tiles'),
    'bit_depth': Option(8, (int,), 'PNG bit depth of the outputs', choices=(8, 16)),
    'export': Option(True, (bool,), 'write whole-photo outputs (`results/base` at the start, `results/adapted` '
                                    'at the end); false: only the report, on one crop of each photo '
                                    '(`SRTTAModel` always writes its per-photo outputs)'),
    'crop_size': Option(128, (int,), 'without `export`: LR side of the crop of each photo the report scores and '
                                     'shows (the most detailed of a few seeded ones); a photo no larger is whole'),
})

VAL = Block('validation (BasicSR; absent: none)', {
    'val_freq': Option(REQUIRED, (int,), 'validate every this many iterations'),
    'save_img': Option(False, (bool,), 'unused by stage 2 (BasicSR reads it)'),
    'monitor': Option('ssl_loss', (str,), 'the validation value early stopping watches'),
}, nullable=True, extra={'pbar': 'BasicSR\'s progress bar', 'suffix': 'BasicSR', 'metrics': 'BasicSR'})

LOGGER = Block('logging (BasicSR)', {
    'print_freq': Option(REQUIRED, (int,), 'log every this many iterations'),
    'save_checkpoint_freq': Option(REQUIRED, (int,), 'save a checkpoint every this many iterations'),
    'use_tb_logger': Option(False, (bool,), 'TensorBoard'),
    'wandb': Option(None, (dict,), 'Weights & Biases (BasicSR)'),
    'progress_bar': Option(False, (bool,), 'a tqdm bar over the iterations (`tta_sr.utils.progress`)'),
})

LR_DATASET = Block('`LRImageDataset`: real LR photos, no ground truth', {
    'name': Option(REQUIRED, (str,), 'the set\'s name in the log'),
    'type': Option('LRImageDataset', (str,), 'the dataset class'),
    'dataroot_lq': Option(REQUIRED, (str,), 'folder of LR photos'),
    'phase': Option('train', (str,), 'set by BasicSR: train crops and flips, val centre-crops'),
    'lq_size': Option(0, (int,), 'side of the random training crops (0: whole images)'),
    'split': Option('train', (str,), 'which images', choices=('train', 'val', 'all')),
    'val_fraction': Option(0.2, NUM, 'share of the images held out for validation'),
    'split_seed': Option(0, (int,), 'seed of the train/val split'),
    'image_names': Option(None, (list,), 'only these stems'),
    'on_bad_image': Option('warn', (str,), 'an unreadable image: skip it with a warning, or stop',
                           choices=('warn', 'raise')),
    'use_hflip': Option(True, (bool,), 'random horizontal flips (train)'),
    'use_rot': Option(True, (bool,), 'random rotations (train)'),
    'return_hf_weight': Option(False, (bool,), 'also return the DWT weight map W (lway mode)'),
    'val_crop_size': Option(0, (int,), 'centre crop of validation images (0: whole)'),
    'region_size': Option(256, (int,), 'a photo larger than this is held in memory only as `regions_per_image` '
                                       'seeded regions of this side (validation: its centre), where the crops are '
                                       'drawn; 0: whole photos'),
    'regions_per_image': Option(4, (int,), 'regions kept of each larger photo'),
}, extra={**{key: 'BasicSR\'s data loader' for key in (
    'scale', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio', 'use_shuffle', 'prefetch_mode',
    'pin_memory', 'persistent_workers', 'num_prefetch_queue')},
    'dataroot_gt': 'never read: stage 2 learns from LR alone (ground truth for scoring is `eval.dataroot_gt`)'})

PATH = Block('weights and folders', {
    'pretrain_network_g': Option(None, (str,), 'the source SR model: a manifest name or a .pth file'),
    'strict_load_g': Option(True, (bool,), 'load its weights strictly'),
    'resume_state': Option(None, (str,), 'a training state to resume from'),
    'pretrain_network_recon': Option(None, (str,), 'the reconstruction branch: a shipped name (`hr_aware_cpu`, '
                                                   '`lway_cpu`) or a stage-1 checkpoint'),
    'param_key_recon': Option('params_ema', (str,), 'the branch weights\' key in its checkpoint'),
    'pretrain_network_classifier': Option('cpu', (str,), 'SRTTA\'s degradation classifier: a shipped name or a file'),
}, patterns=(r'(pretrain_network|param_key|strict_load|source_network|source_param_key)_\w+',),
    extra={key: 'set by BasicSR or tta_sr' for key in (
        'experiments_root', 'models', 'training_states', 'log', 'visualization', 'results_root',
        'ignore_resume_networks')})

TOP_LEVEL = ('name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'network_recon',
             'network_far', 'path', 'train', 'gate', 'eval', 'val', 'logger', 'per_image', 'import_modules',
             'dist_params', 'find_unused_parameters', 'cudnn_benchmark',
             # added by BasicSR's parse_options
             'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path')

TRAIN_OF = {HR_AWARE_MODEL: HR_AWARE_TRAIN, SRTTA_MODEL: SRTTA_TRAIN}

# old spelling -> (block, key) of the one spelling; accepted for one release with a warning
RENAMED = {'fisher_ratio': ('fisher_opt', 'ratio'), 'fisher_max_size': ('fisher_opt', 'max_size')}


# keys of the binary acceptance gate, which the selector replaced
REMOVED_GATE_KEYS = ('downscaler', 'min_gain_db', 'max_halo_increase', 'max_colour_increase', 'min_texture_ratio')


def _check_removed_gate_keys(gate):
    """A key of the old binary gate fails with what replaced it (not only the list of known keys)."""
    old = [k for k in (gate or {}) if k in REMOVED_GATE_KEYS] if isinstance(gate, dict) else []
    if old:
        raise OptionError(f'gate.{old[0]} belonged to the binary acceptance gate, which the GT-free selector replaced '
                          f'(docs/adaptation.md, "What a run hands back"); remove it, or set the selector\'s '
                          f'margin_db / max_lpips_increase / lpips_per_db')


def _apply_renames(train):
    """Move ``train.<old>`` keys of :data:`RENAMED` to their one spelling, warning once per key."""
    train = dict(train or {})
    for old, (block, key) in RENAMED.items():
        if old not in train:
            continue
        warnings.warn(f'train.{old} is deprecated: write train.{block}.{key} (read as that for now)', FutureWarning,
                      stacklevel=3)
        value = train.pop(old)
        sub = dict(train.get(block) or {})
        if key in sub:
            raise OptionError(f'train.{old} and train.{block}.{key} are both given; keep train.{block}.{key}')
        sub[key] = value
        train[block] = sub
    return train


def lr_dataset_options(opt):
    """The validated options of one ``LRImageDataset`` block, defaults filled."""
    return resolve(LR_DATASET, opt, f'datasets.{opt.get("phase", "train") if isinstance(opt, dict) else "?"}')


def resolve_stage2(opt):
    """Validate a stage-2 option dict (``model_type`` ``HRAwareTTAModel`` or ``SRTTAModel``) in place, filling
    every default; returns ``opt``. Raises :class:`OptionError` naming an unknown key and its nearest neighbour."""
    model_type = opt.get('model_type', HR_AWARE_MODEL)
    if model_type not in TRAIN_OF:
        raise OptionError(f'model_type must be one of {", ".join(TRAIN_OF)} for stage 2, got {model_type!r}')
    for key in opt:
        if key not in TOP_LEVEL:
            raise unknown_key_error('<option file>', key, TOP_LEVEL)
    opt['train'] = resolve(TRAIN_OF[model_type], _apply_renames(opt.get('train')), 'train')
    if model_type == HR_AWARE_MODEL:
        _check_removed_gate_keys(opt.get('gate'))
        opt['gate'] = resolve(GATE, opt.get('gate'), 'gate')
    elif opt.get('gate') is not None:
        raise OptionError('gate: SRTTAModel has no selector (it adapts each photo on its own); remove the gate block')
    opt['eval'] = resolve(EVAL, opt.get('eval'), 'eval')
    opt['val'] = resolve(VAL, opt.get('val'), 'val')
    if opt['val'] is None:
        opt.pop('val')
    for key, block in (('logger', LOGGER), ('path', PATH)):
        if key in opt:
            opt[key] = resolve(block, opt[key], key)
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict) and dataset.get('type', 'LRImageDataset') == 'LRImageDataset':
            opt['datasets'][phase] = resolve(LR_DATASET, dataset, f'datasets.{phase}')
    return opt


def declares(model_type, dotted):
    """Whether the stage-2 schema of ``model_type`` declares the option ``dotted`` (``'train.ema_decay'``,
    ``'datasets.val.val_crop_size'``); keys of blocks it does not declare (``network_g``) count as declared."""
    top, *rest = dotted.split('.')
    if top not in TOP_LEVEL:
        return False
    blocks = {'train': TRAIN_OF.get(model_type, HR_AWARE_TRAIN), 'gate': GATE if model_type != SRTTA_MODEL else None,
              'eval': EVAL, 'val': VAL, 'logger': LOGGER, 'path': PATH}
    if top == 'datasets':
        block, rest = LR_DATASET, rest[1:]
    elif top in blocks:
        block = blocks[top]
    else:
        return True
    for key in rest:
        if block is None:
            return False
        entry = block.keys.get(key)
        if entry is None:
            return key in block.extra or any(re.fullmatch(p, key) for p in block.patterns)
        block = entry if isinstance(entry, Block) else None
    return True


def controller_options(shipped, given):
    """``train.controller`` laid over the branch's own (``shipped``), then the declared defaults filled."""
    return resolve(dataclasses.replace(CONTROLLER, fill=True), {**(shipped or {}), **(given or {})}, 'train.controller')


BLOCKS = {'train': HR_AWARE_TRAIN, 'gate': GATE, 'eval': EVAL, 'val': VAL, 'logger': LOGGER, 'path': PATH,
          'datasets.<phase>': LR_DATASET, 'train (SRTTAModel)': SRTTA_TRAIN}


def options_markdown():
    """Every block's table (:func:`tta_sr.options.schema.markdown_table`), as ``docs/adaptation.md`` shows them."""
    return '\n'.join(markdown_table(block, where) for where, block in BLOCKS.items())


__all__ = ['MODES', 'DEFAULT_METRICS', 'DEFAULT_TILE', 'DEFAULT_TILE_OVERLAP', 'CHARBONNIER_EPS', 'HR_AWARE_TRAIN',
           'SRTTA_TRAIN', 'CONTROLLER', 'GATE', 'EVAL', 'VAL', 'LOGGER', 'LR_DATASET', 'PATH', 'BLOCKS', 'RENAMED',
           'resolve_stage2', 'lr_dataset_options', 'controller_options', 'declares', 'options_markdown']
