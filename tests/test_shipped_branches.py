"""The shipped reconstruction branches, on held-out photos degraded with a seed never used in training.

Training used BSD68 + Urban100 HR (seed 0 for the on-the-fly degradations); here: scikit-image photos
(astronaut, chelsea, coffee, rocket), Real-ESRGAN second-order degradation with seeds 9000 + i.
"""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import tta_sr  # noqa: F401
from basicsr.archs import build_network

from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.losses.far_loss import FARLoss
from tta_sr.utils.image_io import write_image
from tta_sr.weights.branches import branch_source, shipped_branch_names
from tta_sr.weights.resolver import load_state_dict

MARGIN_DB = 0.5  # the branch must beat the bicubic downscale of Y_gt by at least this (PSNR, dB)
# Known gap, measured (docs/pretraining.md): the shipped CPU branches stopped at 1250 of 2500 iterations;
# on these held-out photos they do not beat bicubic (hr_aware_cpu -0.50 dB, lway_cpu -0.02 dB over 80 pairs)
# and E_deg's embedding has almost no effect yet. strict: a better shipped branch turns these into failures
# until the marks are removed.
KNOWN_GAP = pytest.mark.xfail(strict=True, reason='shipped CPU branches are under-trained: see docs/pretraining.md')
SIZE = 128
HELD_OUT_SEED, OTHER_SEED = 9000, 5000  # training used seed 0; Set5 validation 2024


def psnr(a, b):
    return float(10 * torch.log10(1 / F.mse_loss(a.clamp(0, 1), b)))


def held_out_pairs(folder, seed):
    """[(X_s (1,3,32,32), Y_gt (1,3,128,128))]: each photo degraded by the second-order pipeline, seed + i."""
    dataset = HRDegradationDataset({'dataroot_gt': str(folder), 'gt_size': SIZE, 'scale': 4, 'fixed_seed': seed,
                                    'phase': 'val'})
    return [(item['lq'][None], item['gt'][None]) for item in (dataset[i] for i in range(len(dataset)))]


def load_branch(name):
    path, options = branch_source(name)
    net = build_network(options['network_recon'])
    net.load_state_dict(load_state_dict(path, param_key='params_ema'))
    return net.eval(), options, path


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    from skimage import data
    folder = tmp_path_factory.mktemp('held_out')
    for name in ('astronaut', 'chelsea', 'coffee', 'rocket'):
        write_image(str(folder / f'{name}.png'), getattr(data, name)()[:SIZE, :SIZE, :3].astype(np.float32) / 255)
    return folder


@pytest.fixture(scope='module')
def pairs(photos):
    return held_out_pairs(photos, HELD_OUT_SEED)


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_branch_is_shipped_and_loads_strictly(name):
    assert name in shipped_branch_names()
    net, options, path = load_branch(name)
    assert net.scale == 4
    if options.get('far_opt'):
        far = FARLoss(**{k: v for k, v in options['far_opt'].items() if k != 'type'},
                      target_channels=build_network(options['network_far']).out_channels)
        far.load_state_dict(load_state_dict(path, param_key='params_far'))


@KNOWN_GAP
@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_branch_reconstructs_held_out_lr_better_than_bicubic(name, pairs):
    net, _, _ = load_branch(name)
    with torch.no_grad():
        rec = [psnr(net(x, y), x) for x, y in pairs]
        bic = [psnr(F.interpolate(y, size=x.shape[2:], mode='bicubic', align_corners=False), x) for x, y in pairs]
    assert np.mean(rec) > np.mean(bic) + MARGIN_DB, (rec, bic)


@KNOWN_GAP
@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_embedding_of_another_degradation_reconstructs_worse(name, pairs, photos):
    """Same Y, the embedding of a differently degraded LR: R must follow the embedding."""
    net, _, _ = load_branch(name)
    right, wrong = [], []
    with torch.no_grad():
        for (x, y), (other, _) in zip(pairs, held_out_pairs(photos, OTHER_SEED)):
            e_im = net.encode_image(y)
            right.append(psnr(net.reconstruct(net.encode_degradation(x), e_im), x))
            wrong.append(psnr(net.reconstruct(net.encode_degradation(other), e_im), x))
    assert np.mean(right) > np.mean(wrong), (right, wrong)
