"""Networks shipped inside the package, loaded by name: LR reconstruction branches and degradation classifiers.

Each shipped network is ``<prefix><name>.pth`` with ``<prefix><name>.yml`` beside it (the options it was
built with, and its training recipe). Branches (prefix ``lr_recon_``): ``params``/``params_ema`` for
LRReconNet, ``params_far`` for FAR's T_a, T_m; the yml holds ``network_recon``, ``network_far``, ``far_opt``.
Degradation classifiers (prefix ``degradation_classifier_``): ``params``; the yml holds ``network_classifier``
and the measured held-out accuracy.
"""
import glob
import os

import yaml

BRANCH_DIR = os.path.dirname(os.path.abspath(__file__))
BRANCH_PREFIX, CLASSIFIER_PREFIX = 'lr_recon_', 'degradation_classifier_'


def shipped_names(prefix=BRANCH_PREFIX):
    """Names of the networks with ``prefix`` shipped in this installation."""
    files = glob.glob(os.path.join(BRANCH_DIR, f'{prefix}*.yml'))
    return sorted(os.path.basename(f)[len(prefix):-len('.yml')] for f in files)


def shipped_branch_names():
    """Names of the reconstruction branches shipped in this installation."""
    return shipped_names(BRANCH_PREFIX)


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


def shipped_source(name_or_path, prefix, what, hint):
    """(checkpoint path, options dict) for a shipped name; (path, {}) for a checkpoint file."""
    stem = os.path.join(BRANCH_DIR, f'{prefix}{name_or_path}')
    if os.path.isfile(stem + '.yml'):
        with open(stem + '.yml') as f:
            return stem + '.pth', yaml.safe_load(f)
    if os.path.isfile(name_or_path):
        return name_or_path, {}
    raise FileNotFoundError(f'{what} {name_or_path!r} is neither a file nor a shipped name '
                            f'(shipped: {shipped_names(prefix)}); {hint}')


def branch_source(name_or_path, options_file=None):
    """(checkpoint path, options dict) of a reconstruction branch.

    A shipped name reads its sidecar. A checkpoint file reads ``options_file`` when given, else the ``.yml`` of
    the same name beside it when there is one (see :func:`options_of_file`), else gives ``{}`` (the caller's
    option file must then hold ``network_recon``).
    """
    path, options = shipped_source(name_or_path, BRANCH_PREFIX, 'reconstruction branch',
                                   'pretrain one with options/pretrain/*.yml and set path.pretrain_network_recon to '
                                   'its models/net_g_latest.pth')
    if options:
        return path, options
    sibling = os.path.splitext(path)[0] + '.yml'
    options_file = options_file or (sibling if os.path.isfile(sibling) else None)
    return path, options_of_file(options_file) if options_file else {}


def classifier_source(name_or_path):
    """(checkpoint path, options dict) of a degradation classifier: a shipped name or a checkpoint file."""
    return shipped_source(name_or_path, CLASSIFIER_PREFIX, 'degradation classifier',
                          'train one with options/pretrain/train_degradation_classifier_cpu.yml and set '
                          'path.pretrain_network_classifier to its models/net_g_latest.pth')
