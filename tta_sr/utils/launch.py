"""Preparation shared by ``tta_sr/train.py`` and ``tta_sr/test.py`` before BasicSR takes over.

- ``import_modules: [pkg.module, ...]`` in the option file is imported first, so a user's own
  registered arch (or dataset, loss, model) exists in BasicSR's registries when networks are built.
- BasicSR 1.4.2 loads resume states with ``torch.cuda.current_device()``; on a CPU-only machine that
  raises, so ``--auto_resume`` is routed through a device-aware loader. Frozen networks
  (``FROZEN_NETWORKS``) keep their configured weights on resume: they are never checkpointed. The
  weights the run started from stay known as ``path.source_network_g`` (and ``source_param_key_g``).
- resume is deterministic (``tta_sr.utils.resume``): the loader arms the training sampler to skip the
  samples the interrupted epoch had consumed, and the model restores the saved RNG states.
- ``--launcher pytorch`` initialises gloo on CPU, nccl on GPU (``patch_basicsr_options_for_cpu_dist``).
- ``path.experiments_root`` in the option file (or ``--force_yml path:experiments_root=DIR``) is the run's
  folder, as BasicSR reads it after 1.4.2; without it the run goes to ``<cwd>/experiments/<name>``.
- ``logger.progress_bar: true`` draws a tqdm bar over the iterations (``tta_sr.utils.progress``).
"""
import os
import sys

import torch
import yaml

FROZEN_NETWORKS = ('network_recon', 'network_far')


def option_file_from_argv(argv):
    """Return the value of ``-opt`` in ``argv`` (BasicSR's flag), or raise with the usage."""
    if '-opt' not in argv or argv.index('-opt') + 1 >= len(argv):
        raise SystemExit('usage: python tta_sr/train.py -opt OPTIONS.yml [--auto_resume] [--launcher pytorch] [--debug]')
    return argv[argv.index('-opt') + 1]


def import_user_modules(opt_path):
    """Import every module listed under ``import_modules`` in the YAML at ``opt_path``; return their names."""
    names = read_options(opt_path).get('import_modules') or []
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a user's module next to where they run the command
    import importlib
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ImportError(f'import_modules in {opt_path} lists {name!r}, which cannot be imported ({err}); '
                              'install it or run from the folder that contains it') from err
    return names


def read_options(opt_path):
    """The option file at ``opt_path`` as a dict (empty file: ``{}``); ``ValueError`` when it holds no mapping."""
    with open(opt_path, 'r') as f:
        opt = yaml.safe_load(f) or {}
    if not isinstance(opt, dict):
        raise ValueError(f'{opt_path}: expected a mapping of options, found a {type(opt).__name__}')
    return opt


def experiments_root_option(opt_path, force_yml=None):
    """``path.experiments_root`` of the option file, or its ``--force_yml path:experiments_root=...`` override."""
    from basicsr.utils.options import _postprocess_yml_value
    root = (read_options(opt_path).get('path') or {}).get('experiments_root')
    for entry in force_yml or []:
        keys, _, value = entry.partition('=')
        if keys.strip() == 'path:experiments_root':
            root = _postprocess_yml_value(value.strip())
    return root


def parse_options(root_path, is_train=True):
    """BasicSR 1.4.2's ``parse_options``, then stage 2's options validated with their defaults filled
    (``tta_sr.options.stage2``: an unknown key fails here, before any data is read), then the run's folders under
    ``path.experiments_root`` when it is set."""
    from basicsr.utils.options import parse_options as basicsr_parse_options
    from tta_sr.options.stage2 import TRAIN_OF, resolve_stage2
    opt, args = basicsr_parse_options(root_path, is_train)
    if opt.get('model_type') in TRAIN_OF:
        resolve_stage2(opt)
    root = experiments_root_option(args.opt, args.force_yml) if is_train else None
    if root:
        root = os.path.abspath(os.path.expanduser(str(root)))
        opt['path'].update(experiments_root=root, models=os.path.join(root, 'models'), log=root,
                           training_states=os.path.join(root, 'training_states'),
                           visualization=os.path.join(root, 'visualization'))
    return opt, args


def load_resume_state_on_any_device(opt):
    """BasicSR's ``load_resume_state`` with the state mapped to the CPU when no GPU is used."""
    from basicsr.utils import check_resume, scandir
    state_path = None
    if opt['auto_resume']:
        folder = opt['path']['training_states']
        if os.path.isdir(folder):
            iters = [float(v.split('.state')[0]) for v in scandir(folder, suffix='state', recursive=False)]
            if iters:
                state_path = os.path.join(folder, f'{max(iters):.0f}.state')
                opt['path']['resume_state'] = state_path
    elif opt['path'].get('resume_state'):
        state_path = opt['path']['resume_state']
    if state_path is None:
        return None
    # what the run started from, before check_resume points pretrain_network_g at the run's own checkpoint
    opt['path'].setdefault('source_network_g', opt['path'].get('pretrain_network_g'))
    opt['path'].setdefault('source_param_key_g', opt['path'].get('param_key_g'))
    ignored = opt['path'].setdefault('ignore_resume_networks', [])
    ignored.extend(k for k in FROZEN_NETWORKS if k in opt and k not in ignored)
    location = 'cpu' if opt['num_gpu'] == 0 else f'cuda:{torch.cuda.current_device()}'
    state = torch.load(state_path, map_location=location, weights_only=True)
    check_resume(opt, state['iter'])
    from tta_sr.utils import resume
    resume.arm(opt, state)  # the train sampler built next skips the consumed part of state['epoch']
    return state


def prepare_basicsr(argv):
    """Import the option file's user modules and make BasicSR's pipelines work on CPU."""
    import basicsr.train
    from tta_sr.utils import resume
    from tta_sr.utils.distributed import patch_basicsr_options_for_cpu_dist
    patch_basicsr_options_for_cpu_dist()
    resume.install()
    opt_path = option_file_from_argv(argv)
    import_user_modules(opt_path)
    basicsr.train.load_resume_state = load_resume_state_on_any_device
    basicsr.train.parse_options = parse_options
    if (read_options(opt_path).get('logger') or {}).get('progress_bar'):
        from tta_sr.utils import progress
        progress.install()
