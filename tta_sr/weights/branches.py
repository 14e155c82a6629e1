"""LR reconstruction branches shipped inside the package, loaded by name.

Each shipped branch is ``lr_recon_<name>.pth`` (``params``/``params_ema`` for LRReconNet,
``params_far`` for FAR's T_a, T_m) with ``lr_recon_<name>.yml`` beside it: the ``network_recon``,
``network_far`` and ``far_opt`` it was trained with, and its training recipe.
"""
import glob
import os

import yaml

BRANCH_DIR = os.path.dirname(os.path.abspath(__file__))


def shipped_branch_names():
    """Names of the branches shipped in this installation."""
    files = glob.glob(os.path.join(BRANCH_DIR, 'lr_recon_*.yml'))
    return sorted(os.path.basename(f)[len('lr_recon_'):-len('.yml')] for f in files)


BRANCH_KEYS = ('network_recon', 'network_far', 'far_opt', 'controller')


def options_of_file(options_file):
    """The branch options (``BRANCH_KEYS``) in a YAML file: a shipped branch's sidecar, a stage-2 option file, or
    the stage-1 option file the checkpoint was trained with (``network_g`` and ``train.far_opt`` / ``controller``)."""
    with open(options_file) as f:
        raw = yaml.safe_load(f) or {}
    train = raw.get('train') or {}
    options = {key: raw.get(key) or train.get(key) for key in BRANCH_KEYS}
    if not options['network_recon'] and (raw.get('network_g') or {}).get('type') == 'LRReconNet':
        options['network_recon'] = raw['network_g']
    if options.get('far_opt'):
        options['far_opt'] = {k: v for k, v in options['far_opt'].items() if k != 'loss_weight'}
    return options


def branch_source(name_or_path, options_file=None):
    """(checkpoint path, options dict) of a branch.

    A shipped name reads its sidecar. A checkpoint file reads ``options_file`` when given, else the ``.yml`` of
    the same name beside it when there is one (see :func:`options_of_file`), else gives ``{}`` (the caller's
    option file must then hold ``network_recon``).
    """
    stem = os.path.join(BRANCH_DIR, f'lr_recon_{name_or_path}')
    if os.path.isfile(stem + '.yml'):
        with open(stem + '.yml') as f:
            return stem + '.pth', yaml.safe_load(f)
    if os.path.isfile(name_or_path):
        sibling = os.path.splitext(name_or_path)[0] + '.yml'
        options_file = options_file or (sibling if os.path.isfile(sibling) else None)
        return name_or_path, options_of_file(options_file) if options_file else {}
    raise FileNotFoundError(
        f'reconstruction branch {name_or_path!r} is neither a file nor a shipped branch '
        f'(shipped: {shipped_branch_names()}); pretrain one with options/pretrain/*.yml and set '
        'path.pretrain_network_recon to its models/net_g_latest.pth')
