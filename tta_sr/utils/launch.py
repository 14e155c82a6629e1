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
    with open(opt_path, 'r') as f:
        names = (yaml.safe_load(f) or {}).get('import_modules') or []
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


def load_resume_state_on_any_device(opt):
    """BasicSR's ``load_resume_state`` with the state mapped to the CPU when no GPU is used."""
    from basicsr.utils import check_resume, scandir
    state_path = None
    if opt['auto_resume']:
        folder = os.path.join(opt['root_path'], 'experiments', opt['name'], 'training_states')
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
    import_user_modules(option_file_from_argv(argv))
    basicsr.train.load_resume_state = load_resume_state_on_any_device
