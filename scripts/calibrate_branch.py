"""Calibrate an exported branch's physical prior: temperature scaling of its bank weights and residual gate.

    python scripts/calibrate_branch.py --name lway_cpu --options options/pretrain/finetune_lr_recon_lway_cpu.yml

The branch's R mixes its downscalers with w = softmax(t_p * P e_d) and gates its residual with
g = sigmoid(t_g * G e_d + b_g) (``tta_sr.archs.reconstructor_arch``); training leaves t_p = t_g = 1, b_g = 0.
Here (t_p, t_g, b_g) are chosen on a grid to maximise the mean reconstruction PSNR of pairs made from the
training photos of ``--options`` (its ``datasets.train`` folders, one 128 px crop each, degraded in its
degradation families with seeds ``--seed + i``, a range that training, validation and the benchmarks never
use), with every network weight frozen. The chosen values are written into ``network_recon`` of the branch's
sidecar ``lr_recon_<name>.yml``, with the grid's best and default scores under ``recipe.calibration``.
"""
import argparse
import itertools
import os

import numpy as np
import torch
import yaml

PRIOR_SHARPNESS = (1, 1.5, 2, 3, 4, 6, 8, 12, 16)
GATE_SHARPNESS = (1, 2, 4, 8)
GATE_OFFSET = (-6, -4, -2, -1, 0, 1, 2)


def calibration_pairs(options, seed, count):
    """Up to ``count`` (X (1, 3, h, w), Y (1, 3, ah, aw)) pairs from the training photos of a stage-1 option dict."""
    from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
    train = options['datasets']['train']
    dataset = HRDegradationDataset({**{k: v for k, v in options.items() if k in ('family_prob', 'mild')},
                                    'dataroot_gt': train['dataroot_gt'],
                                    'extra_dataroots_gt': train.get('extra_dataroots_gt'), 'gt_size': 128,
                                    'scale': options['scale'], 'fixed_seed': seed, 'phase': 'val'})
    return [(item['lq'][None], item['gt'][None]) for item in (dataset[i] for i in range(min(count, len(dataset))))]


@torch.no_grad()
def pair_terms(net, controller, pairs):
    """Per pair, what the grid needs: (X, bank candidates (1, K, 3, h, w), prior logits (1, K), gate logit (1, 1),
    ungated residual (1, 3, h, w)), computed once."""
    rec, terms = net.reconstructor, []
    for x, y in pairs:
        e_d = net.encode_degradation(x)
        s = controller(x, y, noise=False)
        terms.append((x, rec.bank.all(y), rec.prior_head(e_d), rec.gate_head(e_d),
                      rec.residual(e_d, net.encode_image(y), s)))
    return terms


def mean_psnr(terms, t_p, t_g, b_g):
    """Mean PSNR (dB) of X_hat = sum_k softmax(t_p l)_k D_k(Y) + sigmoid(t_g q + b_g) r against X."""
    values = []
    for x, candidates, logits, gate_logit, residual in terms:
        w = torch.softmax(t_p * logits, dim=1)[:, :, None, None, None]
        x_hat = (w * candidates).sum(dim=1) + torch.sigmoid(t_g * gate_logit + b_g).view(-1, 1, 1, 1) * residual
        mse = torch.mean((x_hat.clamp(0, 1) - x) ** 2).clamp_min(1e-12)
        values.append(float(-10 * torch.log10(mse)))
    return float(np.mean(values))


def calibrate(name, options_file, seed=40000, count=400):
    """Grid-search (t_p, t_g, b_g) for the shipped branch ``name``; update its sidecar; return the record."""
    from basicsr.archs import build_network
    from tta_sr.models.branch_components import Controller
    from tta_sr.utils.atomic import atomic_write_text
    from tta_sr.weights.branches import BRANCH_DIR, BRANCH_PREFIX, branch_source
    from tta_sr.weights.resolver import load_state_dict
    path, sidecar = branch_source(name)
    if not sidecar or not sidecar['network_recon'].get('prior'):
        raise SystemExit(f'{name}: calibration needs a shipped branch with a physical prior (network_recon.prior)')
    with open(options_file) as f:
        options = yaml.safe_load(f)
    net = build_network(sidecar['network_recon']).eval()
    net.load_state_dict(load_state_dict(path, param_key='params_ema'))
    controller = Controller(sidecar.get('controller') or {'enabled': False}, 'pretrain', net.emb_dim, 'cpu')
    terms = pair_terms(net, controller, calibration_pairs(options, seed, count))
    grid = {(t_p, t_g, b_g): mean_psnr(terms, t_p, t_g, b_g)
            for t_p, t_g, b_g in itertools.product(PRIOR_SHARPNESS, GATE_SHARPNESS, GATE_OFFSET)}
    best = max(grid, key=grid.get)
    record = {'pairs': len(terms), 'seed': seed, 'options': os.path.basename(options_file),
              'default_psnr': round(grid[(1, 1, 0)], 3), 'calibrated_psnr': round(grid[best], 3)}
    sidecar['network_recon'].update(prior_sharpness=best[0], gate_sharpness=best[1], gate_offset=best[2])
    sidecar.setdefault('recipe', {})['calibration'] = record
    atomic_write_text(os.path.join(BRANCH_DIR, f'{BRANCH_PREFIX}{name}.yml'), yaml.safe_dump(sidecar, sort_keys=False))
    return dict(record, prior_sharpness=best[0], gate_sharpness=best[1], gate_offset=best[2])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--name', required=True, help='a shipped branch (tta_sr/weights/lr_recon_<name>.yml)')
    parser.add_argument('--options', required=True, help='the stage-1 option file it was trained with')
    parser.add_argument('--seed', type=int, default=40000, help='first seed of the calibration pairs')
    parser.add_argument('--pairs', type=int, default=400, help='at most this many pairs (one per training photo)')
    args = parser.parse_args()
    import tta_sr  # noqa: F401  (registers the archs)
    print(calibrate(args.name, args.options, args.seed, args.pairs))


if __name__ == '__main__':
    main()
