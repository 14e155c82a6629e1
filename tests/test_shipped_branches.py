"""The shipped reconstruction branches, on held-out photos degraded with a seed never used in training.

Training used BSD68 + Urban100 HR (seed 0 for the on-the-fly degradations); here: scikit-image photos
(astronaut, chelsea, coffee, rocket), second-order degradation seeds 9000 + i.
"""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import tta_sr  # noqa: F401
from basicsr.archs import build_network
from basicsr.utils import DiffJPEG

from tta_sr.data.hr_degradation_dataset import DEFAULT_KERNELS
from tta_sr.data.second_order_degradation import degradation_options, degrade_second_order, seeded
from tta_sr.losses.far_loss import FARLoss
from tta_sr.weights.branches import branch_source, shipped_branch_names
from tta_sr.weights.resolver import load_state_dict

MARGIN_DB = 0.5  # the branch must beat the bicubic downscale of Y_gt by at least this (PSNR, dB)
SIZE = 128


def psnr(a, b):
    return float(10 * torch.log10(1 / F.mse_loss(a.clamp(0, 1), b)))


def held_out_pairs():
    """[(X_s (1,3,32,32), Y_gt (1,3,128,128))]: four photos, each with its own fixed degradation."""
    from skimage import data
    jpeger, pairs = DiffJPEG(differentiable=False), []
    for i, name in enumerate(('astronaut', 'chelsea', 'coffee', 'rocket')):
        img = getattr(data, name)()[:SIZE, :SIZE, :3].astype(np.float32) / 255
        y = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        pairs.append((degrade(y, 9000 + i, jpeger), y))
    return pairs


def degrade(y, seed, jpeger):
    """Second-order degradation of ``y`` with Gaussian kernels drawn from ``seed``."""
    from basicsr.data.degradations import random_mixed_kernels
    with seeded(seed), torch.no_grad():
        opt = DEFAULT_KERNELS
        kernels = [torch.from_numpy(random_mixed_kernels(opt['kernel_list'], opt['kernel_prob'], 21, opt['blur_sigma'],
                                                         opt['blur_sigma'], [-np.pi, np.pi], opt['betag_range'],
                                                         opt['betap_range'], noise_range=None)).float()[None]
                   for _ in range(2)]
        pulse = torch.zeros(1, 21, 21)
        pulse[0, 10, 10] = 1
        return degrade_second_order(y, kernels[0], kernels[1], pulse, 4, degradation_options({}), jpeger)


def load_branch(name):
    path, options = branch_source(name)
    net = build_network(options['network_recon'])
    net.load_state_dict(load_state_dict(path, param_key='params_ema'))
    return net.eval(), options, path


@pytest.fixture(scope='module')
def pairs():
    return held_out_pairs()


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_branch_is_shipped_and_loads_strictly(name):
    assert name in shipped_branch_names()
    net, options, path = load_branch(name)
    assert net.scale == 4
    if options.get('far_opt'):
        far = FARLoss(**{k: v for k, v in options['far_opt'].items() if k != 'type'},
                      target_channels=build_network(options['network_far']).out_channels)
        far.load_state_dict(load_state_dict(path, param_key='params_far'))


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_branch_reconstructs_held_out_lr_better_than_bicubic(name, pairs):
    net, _, _ = load_branch(name)
    with torch.no_grad():
        rec = [psnr(net(x, y), x) for x, y in pairs]
        bic = [psnr(F.interpolate(y, size=x.shape[2:], mode='bicubic', align_corners=False), x) for x, y in pairs]
    assert np.mean(rec) > np.mean(bic) + MARGIN_DB, (rec, bic)


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_embedding_of_another_degradation_reconstructs_worse(name, pairs):
    """Same Y, the embedding of a differently degraded LR: R must follow the embedding."""
    net, _, _ = load_branch(name)
    jpeger = DiffJPEG(differentiable=False)
    right, wrong = [], []
    with torch.no_grad():
        for i, (x, y) in enumerate(pairs):
            other = degrade(y, 5000 + i, jpeger)
            e_im = net.encode_image(y)
            right.append(psnr(net.reconstruct(net.encode_degradation(x), e_im), x))
            wrong.append(psnr(net.reconstruct(net.encode_degradation(other), e_im), x))
    assert np.mean(right) > np.mean(wrong), (right, wrong)
