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


def branch_source(name_or_path):
    """(checkpoint path, options dict) for a shipped name; (path, {}) for a checkpoint file."""
    stem = os.path.join(BRANCH_DIR, f'lr_recon_{name_or_path}')
    if os.path.isfile(stem + '.yml'):
        with open(stem + '.yml') as f:
            return stem + '.pth', yaml.safe_load(f)
    if os.path.isfile(name_or_path):
        return name_or_path, {}
    raise FileNotFoundError(
        f'reconstruction branch {name_or_path!r} is neither a file nor a shipped branch '
        f'(shipped: {shipped_branch_names()}); pretrain one with options/pretrain/*.yml and set '
        'path.pretrain_network_recon to its models/net_g_latest.pth')
