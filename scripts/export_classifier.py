"""Package a trained degradation classifier by name, with its measured held-out accuracy (how ``cpu`` was made).

    python scripts/export_classifier.py --checkpoint experiments/NAME/models/net_g_latest.pth \
        --options options/pretrain/NAME.yml --name my_classifier [--notes "..."]

Writes ``tta_sr/weights/degradation_classifier_<name>.pth`` (``params``) and ``.yml`` (``network_classifier``,
the recipe, its labelling (``labels``: ``type_prob``, ``blur_min_width``, ``blur_max_noise``), and the per-type accuracy on the option file's validation set: whole held-out images, degraded
with its ``fixed_seed``), after which ``path.pretrain_network_classifier: <name>`` loads it.
"""
import os

import torch
import yaml

import tta_sr  # noqa: F401  (registers the archs; before basicsr)
from basicsr.archs import build_network

from tta_sr.models.degradation_classifier_model import held_out_accuracy
from tta_sr.utils.atomic import atomic_torch_save, atomic_write_text
from tta_sr.weights.branches import BRANCH_DIR, CLASSIFIER_PREFIX
from tta_sr.weights.resolver import load_state_dict

from export_branch import export_cli  # scripts/export_branch.py, beside this file


LABEL_OPTIONS = ('type_prob', 'blur_min_width', 'blur_max_noise')  # how the data were labelled: the held-out measure uses the same


def export_classifier(checkpoint, options, name, notes='', out_dir=BRANCH_DIR):
    """Write the classifier files; returns (pth path, yml path)."""
    with open(options) as f:
        opt = yaml.safe_load(f)
    params = load_state_dict(checkpoint, param_key='params')
    net = build_network(dict(opt['network_g']))
    net.load_state_dict(params)
    val = opt['datasets']['val']
    folders = [val['dataroot_gt']] + list(val.get('extra_dataroots_gt') or [])
    labels = {k: val[k] for k in LABEL_OPTIONS if k in val}
    accuracy = held_out_accuracy(net, folders, val['fixed_seed'], val.get('draws_per_image', 1),
                                 val.get('max_size', 0), opt['scale'], **labels)
    pth = os.path.join(out_dir, f'{CLASSIFIER_PREFIX}{name}.pth')
    atomic_torch_save({'params': params}, pth)
    sidecar = {
        'network_classifier': opt['network_g'],
        'recipe': {'options': os.path.basename(options), 'weights': 'params', 'notes': notes},
        'labels': labels,
        'held_out_accuracy': {'images': [os.path.normpath(f) for f in folders], 'fixed_seed': val['fixed_seed'],
                              'draws_per_image': val.get('draws_per_image', 1),
                              **{k: round(v, 4) if isinstance(v, float) else v for k, v in accuracy.items()}},
    }
    yml = os.path.join(out_dir, f'{CLASSIFIER_PREFIX}{name}.yml')
    atomic_write_text(yml, yaml.safe_dump(sidecar, sort_keys=False))
    return pth, yml


def main():
    torch.set_num_threads(1)
    export_cli(__doc__, export_classifier)


if __name__ == '__main__':
    main()
