"""The BasicSR option file that ``tta-sr adapt`` runs, built from the shipped YAML files, and the composition of
those files from their fragments (no defaults here: they are declared once, in ``tta_sr.options.stage2``).

Sources of a run's options, in the order they are applied:

1. the template ``options/tta/<mode>_<model>.yml`` (the YAML route's own file);
2. ``--preset cpu``: the CPU-scale values of ``options/fragments/presets/cpu.yml`` (crop and batch size, workers,
   iterations, EMA, early stopping, validation and logging frequency), each laid over the template where the
   template has that key's section and its model declares the key; ``--preset gpu`` keeps the template's;
3. ``--arch-yaml FILE``: a YAML fragment laid over the result (:func:`merge`): typically ``import_modules``,
   ``scale``, ``network_g`` and ``path.pretrain_network_g`` for a user's own registered arch;
4. the command line: the photos (``datasets.*.dataroot_lq``), ``--gt`` (``eval.dataroot_gt``, scoring only),
   ``--iters`` (``train.total_iter``; for SRTTA, whose iteration adapts one whole photo, the steps per photo,
   ``train.iterations_per_image``, and ``train.total_iter`` is the number of photos), ``--per-image``, ``--device`` (``num_gpu``), the run folder
   (``path.experiments_root``), ``logger.progress_bar`` and ``eval.export`` (``--export``: whole-photo outputs;
   without it an HR-aware run writes only its report, on one crop of each photo).

The result is validated (``tta_sr.options.stage2.resolve_stage2``) before anything runs.

A model's modes are the ``<mode>`` of the templates ``options/tta/<mode>_<model>.yml`` whose
``path.pretrain_network_g`` is that model, so a new template (a new mode or a new family) is picked up as
it is. The templates live in the repository's ``options/`` folder (an editable install: ``pip install -e .``).

The templates and the quickstart are generated (:func:`generated_option_files`, written by
``python scripts/generate_options.py``) from one fragment per mode (``options/fragments/modes/<mode>.yml``), one
per model family (``options/fragments/families/<model>.yml``: its ``modes``, the keys of every mode, and
``by_mode`` overlays) and, for the quickstart, the CPU preset and ``options/fragments/quickstart.yml``; each
carries only what differs from the declared defaults.
"""
import copy
import glob
import os

import yaml

from tta_sr.options.stage2 import declares, resolve_stage2
from tta_sr.utils.image_io import list_image_files
from tta_sr.utils.launch import read_options

REPO_OPTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'options')
TEMPLATE_DIR = os.path.join(REPO_OPTIONS, 'tta')
FRAGMENT_DIR = os.path.join(REPO_OPTIONS, 'fragments')
CPU_PRESET_FILE = os.path.join(FRAGMENT_DIR, 'presets', 'cpu.yml')
QUICKSTART_FILE = os.path.join(REPO_OPTIONS, 'quickstart', 'tta_realesrgan_x4plus_demo.yml')
KEY_ORDER = ('name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'path', 'train',
             'gate', 'eval', 'val', 'logger')


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


def flatten(opt, prefix=''):
    """``{dotted key: value}`` of the leaves of a nested mapping."""
    flat = {}
    for key, value in opt.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def cpu_preset():
    """``{dotted key: value}`` of ``options/fragments/presets/cpu.yml``."""
    return flatten(read_options(CPU_PRESET_FILE))


def apply_preset(opt, preset):
    """Lay ``preset`` (dotted keys) over ``opt`` in place where ``opt`` has the key's section and its model declares
    the key (an SRTTA run has no EMA or early stopping)."""
    model_type = opt.get('model_type')
    for dotted, value in preset.items():
        if has_parent(opt, dotted) and declares(model_type, dotted):
            set_key(opt, dotted, value)
    return opt


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
                  device='auto', export=False):
    """The full option dict of one ``tta-sr adapt`` run (module docstring: sources and order).

    Args:
        photos (str): folder of LR photos (made absolute).
        template (str): path of ``options/tta/<mode>_<model>.yml``.
        out_dir (str): the run goes to ``<out_dir>/<name>``, ``<name>`` = the template's ``name`` + ``_<photos
            folder name>`` (``<out_dir>/<name>_<stem>`` per image with ``per_image``).
        preset (str): ``'cpu'`` or ``'gpu'``.
        arch_yaml (str | None), gt (str | None), iters (int | None), per_image (bool), device (``'auto'``,
            ``'cpu'`` or ``'cuda'``): see the module docstring.
        export (bool): ``eval.export`` of an HRAwareTTAModel run: whole-photo outputs, or the report's crops only.
    """
    opt = read_options(template)
    per_image_model = opt.get('model_type') == 'SRTTAModel'  # one iteration adapts one whole image
    if preset == 'cpu':
        apply_preset(opt, cpu_preset())
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
    if not per_image_model:
        set_key(opt, 'eval.export', bool(export))
    if device != 'auto':
        opt['num_gpu'] = 0 if device == 'cpu' else 'auto'
    set_key(opt, 'path.experiments_root', os.path.abspath(os.path.join(out_dir, opt['name'])))
    set_key(opt, 'logger.progress_bar', True)
    resolve_stage2(copy.deepcopy(opt))  # a typo fails here, before the run starts
    return opt


def options_text(opt, header_lines):
    """``opt`` as the YAML text of an option file, under ``# `` comment lines."""
    header = ''.join(f'# {line}\n' for line in header_lines)
    return header + yaml.safe_dump(opt, sort_keys=False, default_flow_style=None, width=110)


def write_options(path, opt, header_lines):
    """Write :func:`options_text` to ``path`` (atomically); returns ``path``."""
    from tta_sr.utils.atomic import atomic_write_text
    return atomic_write_text(path, options_text(opt, header_lines))


def _fragment(path):
    """(header comment lines, options) of a fragment file."""
    with open(path) as f:
        text = f.read()
    header = []
    for line in text.splitlines():
        if not line.startswith('#'):
            break
        header.append(line[1:].strip())
    return header, yaml.safe_load(text) or {}


def _ordered(opt):
    return {**{k: opt[k] for k in KEY_ORDER if k in opt}, **{k: v for k, v in opt.items() if k not in KEY_ORDER}}


def compose_template(mode, family):
    """(header lines, option dict) of ``options/tta/<mode>_<family>.yml``: the mode's fragment, then the family's
    keys for every mode, then its ``by_mode[mode]`` overlay (:func:`merge`)."""
    header, opt = _fragment(os.path.join(FRAGMENT_DIR, 'modes', f'{mode}.yml'))
    family_opt = _fragment(os.path.join(FRAGMENT_DIR, 'families', f'{family}.yml'))[1]
    by_mode = family_opt.pop('by_mode', {})
    family_opt.pop('modes')
    merge(opt, family_opt)
    merge(opt, by_mode.get(mode) or {})
    opt['name'] = f'tta_{mode}_{family}'
    return header, _ordered(opt)


def compose_quickstart():
    """(header lines, option dict) of the quickstart: the RealESRGAN_x4plus hr_aware template, the CPU preset and
    ``options/fragments/quickstart.yml``."""
    opt = compose_template('hr_aware', 'RealESRGAN_x4plus')[1]
    apply_preset(opt, cpu_preset())
    header, quickstart = _fragment(os.path.join(FRAGMENT_DIR, 'quickstart.yml'))
    return header, _ordered(merge(opt, quickstart))


def generated_option_files():
    """``{path: text}`` of every generated option file (the templates and the quickstart), from the fragments."""
    files = {}
    for family_path in sorted(glob.glob(os.path.join(FRAGMENT_DIR, 'families', '*.yml'))):
        family = os.path.basename(family_path)[:-len('.yml')]
        for mode in _fragment(family_path)[1]['modes']:
            files[os.path.join(TEMPLATE_DIR, f'{mode}_{family}.yml')] = compose_template(mode, family)
    files[QUICKSTART_FILE] = compose_quickstart()
    out = {}
    for path, (header, opt) in files.items():
        rel = os.path.relpath(path, os.path.dirname(REPO_OPTIONS))
        lines = [line.replace('{model}', str((opt.get('path') or {}).get('pretrain_network_g'))).replace('{file}', rel)
                 for line in header]
        lines += ['Generated by `python scripts/generate_options.py` from options/fragments/: edit those, then rerun it.',
                  'Every key not written here has its declared default (tta_sr/options/stage2.py, docs/adaptation.md).']
        out[path] = options_text(opt, lines)
    return out
