"""The shipped reconstruction branches, on held-out photos degraded with seeds never used in training.

Training used BSD68 + Urban100 HR (the global seed 0 for the on-the-fly degradations) and Set5 with seeds
2024 + i for validation; here: 128 px crops of scikit-image photos (astronaut, chelsea, coffee, rocket), each
degraded by Real-ESRGAN's second-order pipeline with seed 9000 + i (and 5000 + i for "another degradation").
A branch is run as its stage-1 validation runs it: the HR-aware branch with the noise-free controller
s = 1 - HQI(X_s, Y_gt), the LWay branch with s = 1.
"""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import tta_sr  # noqa: F401
from basicsr.archs import build_network

from tta_sr.archs.downscalers import downscale
from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.losses.far_loss import FARLoss
from tta_sr.models.branch_components import Controller
from tta_sr.utils.image_io import write_image
from tta_sr.weights.branches import branch_source, shipped_branch_names
from tta_sr.weights.resolver import load_state_dict

# The branch must beat the better of the plain and the antialiased bicubic downscale of Y_gt by this much
# (mean PSNR over the pairs, dB). An untrained R is exactly the antialiased downscale: the margin is learnt.
MARGIN_DB = 0.5
WRONG_EMBEDDING_MARGIN_DB = 0.05  # the right embedding must beat another degradation's by this (mean PSNR, dB)
SIZE = 128
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')
HELD_OUT_SEED, OTHER_SEED = 9000, 5000


def psnr(a, b):
    return float(10 * torch.log10(1 / F.mse_loss(a.clamp(0, 1), b)))


def held_out_pairs(folder, seed):
    """[(X_s (1,3,32,32), Y_gt (1,3,128,128))]: crop i degraded by the second-order pipeline with seed + i."""
    dataset = HRDegradationDataset({'dataroot_gt': str(folder), 'gt_size': SIZE, 'scale': 4, 'fixed_seed': seed,
                                    'phase': 'val'})
    return [(item['lq'][None], item['gt'][None]) for item in (dataset[i] for i in range(len(dataset)))]


def load_branch(name):
    """(LRReconNet in eval mode, controller scale function (x, y) -> s or None, options, path)."""
    path, options = branch_source(name)
    net = build_network(options['network_recon'])
    net.load_state_dict(load_state_dict(path, param_key='params_ema'))
    controller = Controller(options.get('controller') or {'enabled': False}, 'pretrain', net.emb_dim, 'cpu')
    return net.eval(), (lambda x, y: controller(x, y, noise=False)), options, path


def reconstruct(net, scale_of, x_for_embedding, x, y):
    """R(s(x, y) * E_deg(x_for_embedding), E_img(y), y): the embedding may come from another LR image."""
    e_d = net.encode_degradation(x_for_embedding)
    s = scale_of(x, y)
    return net.reconstruct(e_d, net.encode_image(y), y, s)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Non-overlapping 128 px crops of each photo, at most 3 x 3 from its top-left corner: 33 HR images."""
    from skimage import data
    folder = tmp_path_factory.mktemp('held_out')
    for name in PHOTOS:
        image = getattr(data, name)()[..., :3].astype(np.float32) / 255
        rows, cols = (min(3, n // SIZE) for n in image.shape[:2])
        for top in range(0, rows * SIZE, SIZE):
            for left in range(0, cols * SIZE, SIZE):
                write_image(str(folder / f'{name}_{top}_{left}.png'), image[top:top + SIZE, left:left + SIZE])
    return folder


@pytest.fixture(scope='module')
def pairs(photos):
    return held_out_pairs(photos, HELD_OUT_SEED)


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_branch_is_shipped_and_loads_strictly(name):
    assert name in shipped_branch_names()
    net, _, options, path = load_branch(name)
    assert net.scale == 4
    if options.get('far_opt'):
        far = FARLoss(**{k: v for k, v in options['far_opt'].items() if k != 'type'},
                      target_channels=build_network(options['network_far']).out_channels)
        far.load_state_dict(load_state_dict(path, param_key='params_far'))


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_branch_reconstructs_held_out_lr_better_than_bicubic(name, pairs):
    net, scale_of, _, _ = load_branch(name)
    with torch.no_grad():
        rec = np.mean([psnr(reconstruct(net, scale_of, x, x, y), x) for x, y in pairs])
        plain = np.mean([psnr(F.interpolate(y, size=x.shape[2:], mode='bicubic', align_corners=False), x)
                         for x, y in pairs])
        antialiased = np.mean([psnr(downscale(y, 4, 'bicubic_aa'), x) for x, y in pairs])
    assert len(pairs) == 33
    assert rec > max(plain, antialiased) + MARGIN_DB, (rec, plain, antialiased)


@pytest.mark.parametrize('name', ['hr_aware_cpu', 'lway_cpu'])
def test_embedding_of_another_degradation_reconstructs_worse(name, pairs, photos):
    """Same Y and s, E_deg of the same crop degraded differently: R must follow the embedding."""
    net, scale_of, _, _ = load_branch(name)
    with torch.no_grad():
        gains = [psnr(reconstruct(net, scale_of, x, x, y), x) - psnr(reconstruct(net, scale_of, other, x, y), x)
                 for (x, y), (other, _) in zip(pairs, held_out_pairs(photos, OTHER_SEED))]
    assert np.mean(gains) > WRONG_EMBEDDING_MARGIN_DB, gains
