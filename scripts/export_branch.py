"""Package a stage-1 checkpoint as a named reconstruction branch (how the shipped branches were made).

    python scripts/export_branch.py --checkpoint experiments/NAME/models/net_g_latest.pth \
        --options options/pretrain/NAME.yml --name my_branch [--param-key params_ema] [--notes "..."]

Writes ``tta_sr/weights/lr_recon_<name>.pth`` (``params_ema`` = the chosen weights, and ``params_far``)
and ``lr_recon_<name>.yml`` (``network_recon``, ``network_far``, ``far_opt``, ``controller`` and the
recipe), after which ``path.pretrain_network_recon: <name>`` loads it.
"""
import argparse
import os

import yaml

from tta_sr.utils.atomic import atomic_torch_save, atomic_write_text
from tta_sr.weights.branches import BRANCH_DIR
from tta_sr.weights.resolver import load_state_dict


def export_branch(checkpoint, options, name, param_key='params_ema', notes='', out_dir=BRANCH_DIR):
    """Write the branch files; returns (pth path, yml path)."""
    with open(options) as f:
        opt = yaml.safe_load(f)
    state = {'params_ema': load_state_dict(checkpoint, param_key=param_key)}
    train = opt.get('train', {})
    if train.get('far_opt'):
        state['params_far'] = load_state_dict(checkpoint, param_key='params_far')
    pth = os.path.join(out_dir, f'lr_recon_{name}.pth')
    atomic_torch_save(state, pth)
    sidecar = {
        'network_recon': opt['network_g'],
        'network_far': opt.get('network_far'),
        'far_opt': {k: v for k, v in (train.get('far_opt') or {}).items() if k != 'loss_weight'} or None,
        'controller': train.get('controller'),
        'recipe': {'options': os.path.basename(options), 'weights': param_key, 'notes': notes},
    }
    yml = os.path.join(out_dir, f'lr_recon_{name}.yml')
    atomic_write_text(yml, yaml.safe_dump(sidecar, sort_keys=False))
    return pth, yml


def export_cli(doc, export, param_key=None, argv=None):
    """The command line of an export script: ``export(checkpoint, options, name, [param_key,] notes, out_dir)``
    returns the written paths, printed with their sizes. ``param_key``: the default of ``--param-key`` (None:
    no such flag)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--options', required=True, help='the option file the checkpoint was trained with')
    parser.add_argument('--name', required=True)
    if param_key:
        parser.add_argument('--param-key', default=param_key, help='params_ema (EMA) or params')
    parser.add_argument('--notes', default='')
    parser.add_argument('--out-dir', default=BRANCH_DIR)
    args = parser.parse_args(argv)
    keys = [args.param_key] if param_key else []
    for path in export(args.checkpoint, args.options, args.name, *keys, args.notes, args.out_dir):
        print(path, f'{os.path.getsize(path) / 1e6:.2f} MB')


def main():
    export_cli(__doc__, export_branch, param_key='params_ema')


if __name__ == '__main__':
    main()
