"""The BasicSR option file that ``tta-sr adapt`` runs, built from the shipped YAML files (no defaults here).

Sources, in the order they are applied:

1. the template ``options/tta/<mode>_<model>.yml`` (the YAML route's own file): every default;
2. ``--preset cpu``: the CPU-scale values of ``options/quickstart/tta_realesrgan_x4plus_demo.yml`` for the
   keys in :data:`CPU_PRESET_KEYS` (crop and batch size, workers, iterations, EMA, validation and logging
   frequency); ``--preset gpu`` keeps the template's;
3. ``--arch-yaml FILE``: a YAML fragment laid over the result (:func:`merge`): typically ``import_modules``,
   ``scale``, ``network_g`` and ``path.pretrain_network_g`` for a user's own registered arch;
4. the command line: the photos (``datasets.*.dataroot_lq``), ``--gt`` (``eval.dataroot_gt``, scoring only),
   ``--iters`` (``train.total_iter``; for SRTTA, whose iteration adapts one whole photo, the steps per photo,
   ``train.iterations_per_image``, and ``train.total_iter`` is the number of photos), ``--per-image``, ``--device`` (``num_gpu``), the run folder
   (``path.experiments_root``) and ``logger.progress_bar``.

A model's modes are the ``<mode>`` of the templates ``options/tta/<mode>_<model>.yml`` whose
``path.pretrain_network_g`` is that model, so a new template (a new mode or a new family) is picked up as
it is. The templates live in the repository's ``options/`` folder (an editable install: ``pip install -e .``).
"""
import copy
import glob
import os

import yaml

from tta_sr.utils.image_io import list_image_files
from tta_sr.utils.launch import read_options

REPO_OPTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'options')
TEMPLATE_DIR = os.path.join(REPO_OPTIONS, 'tta')
CPU_PRESET_FILE = os.path.join(REPO_OPTIONS, 'quickstart', 'tta_realesrgan_x4plus_demo.yml')
CPU_PRESET_KEYS = ('num_gpu', 'datasets.train.lq_size', 'datasets.train.batch_size_per_gpu',
                   'datasets.train.num_worker_per_gpu', 'datasets.train.dataset_enlarge_ratio',
                   'datasets.val.val_crop_size', 'train.total_iter', 'train.ema_decay', 'train.early_stopping',
                   'val.val_freq', 'logger.print_freq', 'logger.save_checkpoint_freq')


def templates():
    """``{model: {mode: path}}`` of every template ``options/tta/<mode>_<model>.yml``."""
    if not os.path.isdir(TEMPLATE_DIR):
        raise FileNotFoundError(f'the option templates {TEMPLATE_DIR} are missing; install tta_sr from a clone with '
                                '`pip install -e .` so that its options/ folder is on disk')
    found = {}
    for path in sorted(glob.glob(os.path.join(TEMPLATE_DIR, '*.yml'))):
        model = (read_options(path).get('path') or {}).get('pretrain_network_g')
        stem = os.path.basename(path)[:-len('.yml')]
        if model and stem.endswith(f'_{model}') and len(stem) > len(model) + 1:
            found.setdefault(model, {})[stem[:-len(model) - 1]] = path
    return found


def get_key(opt, dotted):
    """``opt['a']['b']`` for ``'a.b'``; ``KeyError`` when a level is missing."""
    for key in dotted.split('.'):
        opt = opt[key]
    return opt


def has_parent(opt, dotted):
    """Whether the mapping that would hold ``dotted`` exists in ``opt`` (a preset does not add sections)."""
    *parents, _ = dotted.split('.')
    for key in parents:
        if not isinstance(opt, dict) or key not in opt:
            return False
        opt = opt[key]
    return isinstance(opt, dict)


def set_key(opt, dotted, value):
    """Set ``opt['a']['b'] = value`` for ``'a.b'``, creating missing levels."""
    *parents, last = dotted.split('.')
    for key in parents:
        opt = opt.setdefault(key, {})
    opt[last] = copy.deepcopy(value)


def cpu_preset():
    """``{dotted key: value}``: the quickstart's values of :data:`CPU_PRESET_KEYS` (keys it lacks are left out)."""
    quickstart, preset = read_options(CPU_PRESET_FILE), {}
    for dotted in CPU_PRESET_KEYS:
        try:
            preset[dotted] = get_key(quickstart, dotted)
        except (KeyError, TypeError):
            continue
    return preset


def merge(base, overlay):
    """Lay ``overlay`` over ``base`` in place and return it: mappings merge key by key, except ``network_*``
    entries, which replace the whole entry (one arch's arguments do not mix with another's); any other
    value replaces."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not str(key).startswith('network_'):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def arch_overlay(path):
    """The ``--arch-yaml`` fragment, with relative weights paths that exist made absolute (the run may start
    from another folder)."""
    overlay = read_options(path)
    for key, value in (overlay.get('path') or {}).items():
        if key.startswith('pretrain_network') and isinstance(value, str) and os.path.isfile(value):
            overlay['path'][key] = os.path.abspath(value)
    return overlay


def adapt_options(photos, template, out_dir, preset='cpu', arch_yaml=None, gt=None, iters=None, per_image=False,
                  device='auto'):
    """The full option dict of one ``tta-sr adapt`` run (module docstring: sources and order).

    Args:
        photos (str): folder of LR photos (made absolute).
        template (str): path of ``options/tta/<mode>_<model>.yml``.
        out_dir (str): the run goes to ``<out_dir>/<name>``, ``<name>`` = the template's ``name`` + ``_<photos
            folder name>`` (``<out_dir>/<name>_<stem>`` per image with ``per_image``).
        preset (str): ``'cpu'`` or ``'gpu'``.
        arch_yaml (str | None), gt (str | None), iters (int | None), per_image (bool), device (``'auto'``,
            ``'cpu'`` or ``'cuda'``): see the module docstring.
    """
    opt = read_options(template)
    per_image_model = opt.get('model_type') == 'SRTTAModel'  # one iteration adapts one whole image
    if preset == 'cpu':
        for dotted, value in cpu_preset().items():
            if has_parent(opt, dotted) and not (per_image_model and dotted == 'train.total_iter'):
                set_key(opt, dotted, value)
    if arch_yaml:
        merge(opt, arch_overlay(arch_yaml))
    opt['name'] = f'{opt["name"]}_{os.path.basename(os.path.abspath(photos))}'
    for dataset in opt['datasets'].values():
        dataset['dataroot_lq'] = os.path.abspath(photos)
    set_key(opt, 'eval.dataroot_gt', os.path.abspath(gt) if gt else None)
    if per_image_model:
        set_key(opt, 'train.total_iter', max(1, len(list_image_files(photos))))
        if iters:
            set_key(opt, 'train.iterations_per_image', int(iters))
    elif iters:
        set_key(opt, 'train.total_iter', int(iters))
    if per_image:
        opt['per_image'] = True
    if device != 'auto':
        opt['num_gpu'] = 0 if device == 'cpu' else 'auto'
    set_key(opt, 'path.experiments_root', os.path.abspath(os.path.join(out_dir, opt['name'])))
    set_key(opt, 'logger.progress_bar', True)
    return opt


def write_options(path, opt, header_lines):
    """Write ``opt`` as YAML to ``path`` (atomically) under ``# `` comment lines; returns ``path``."""
    from tta_sr.utils.atomic import atomic_write_text
    header = ''.join(f'# {line}\n' for line in header_lines)
    return atomic_write_text(path, header + yaml.safe_dump(opt, sort_keys=False, default_flow_style=None, width=110))
