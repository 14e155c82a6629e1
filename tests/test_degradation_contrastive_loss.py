"""Tests for tta_sr/losses/degradation_contrastive_loss.py, alone and training a tiny stage-1 branch."""
import random

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import default_collate

import tta_sr  # noqa: F401

from tta_sr.data.degradation_families import degrade_mild, disk_kernel
from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.data.second_order_degradation import make_jpeger
from tta_sr.losses.degradation_contrastive_loss import DegradationContrastiveLoss
from tta_helpers import build_model, parsed, photo, pretrain_options, write_photos


def test_loss_prefers_matched_pairs_and_checks_shapes():
    torch.manual_seed(0)
    loss = DegradationContrastiveLoss(temperature=0.1)
    a = torch.randn(6, 8)
    matched = loss(a, a + 0.01 * torch.randn(6, 8))
    shuffled = loss(a, a[torch.randperm(6)] + 0.01 * torch.randn(6, 8))
    assert matched < 0.1 < shuffled
    assert DegradationContrastiveLoss(loss_weight=2.0)(a, a) == pytest.approx(2 * loss(a, a).item(), rel=1e-5)
    with pytest.raises(ValueError, match='two \\(B, C\\)'):
        loss(a, a[:, :4])


# Four degradations a test can tell apart by eye: clean, a wide lens blur, strong noise, both.
CLEAN = {'blur': 'none', 'kernel': None, 'downscaler': 'area', 'noise_sigma': 0.0, 'gray_noise': False,
         'jpeg_quality': 95.0}
DEGRADATIONS = [CLEAN, dict(CLEAN, blur='disk', kernel=disk_kernel(2.5)), dict(CLEAN, noise_sigma=12.0),
                dict(CLEAN, blur='disk', kernel=disk_kernel(2.5), noise_sigma=12.0)]


def embedding_margin(net):
    """Mean cosine similarity of the E_deg embeddings of the two halves of one degraded photo, minus that of
    the same two halves under two different degradations (the content is the same on both sides)."""
    jpeger = make_jpeger()
    photos = [torch.from_numpy(photo(i, 64).transpose(2, 0, 1).copy())[None] for i in (3, 4, 5)]
    same, different = [], []
    with torch.no_grad():
        for hr in photos:
            lrs = [degrade_mild(hr, 4, d, jpeger) for d in DEGRADATIONS]  # (1, 3, 16, 16) each
            left = [F.normalize(net.encode_degradation(lr[..., :8]), dim=1)[0] for lr in lrs]
            right = [F.normalize(net.encode_degradation(lr[..., 8:]), dim=1)[0] for lr in lrs]
            for i in range(len(lrs)):
                for j in range(len(lrs)):
                    (same if i == j else different).append(float(left[i] @ right[j]))
    return sum(same) / len(same) - sum(different) / len(different)


def test_a_tiny_branch_trained_with_the_contrastive_loss_tells_degradations_apart(tmp_path):
    """After a few dozen steps on generated data, two patches of one degraded image embed closer together than
    under two different degradations (and closer than before training)."""
    write_photos(tmp_path / 'hr', 6, 96)
    opt = pretrain_options(tmp_path / 'hr')
    opt['network_g'] = dict(opt['network_g'], emb_dim=16, deg_highpass=1.0)
    opt['family_prob'] = {'mild': 1}
    opt['mild'] = {'blur_prob': {'disk': 0.5, 'none': 0.5}, 'disk_radius': [1.5, 3.0], 'noise_sigma': [0, 15],
                   'downscalers': ['area']}
    opt['train'].update(ema_decay=0, contrastive_opt={'type': 'DegradationContrastiveLoss', 'loss_weight': 1.0},
                        pixel_opt={'type': 'ReconstructionLoss', 'l1_weight': 1.0, 'lpips_weight': 0.0},
                        optim_g={'type': 'Adam', 'lr': 2e-3, 'betas': [0.9, 0.999]})
    del opt['network_far'], opt['train']['far_opt'], opt['train']['controller']
    opt = parsed(opt, tmp_path)
    torch.manual_seed(0)
    random.seed(0)  # the degradations are drawn with random and numpy: seeded, the run does not depend on the
    np.random.seed(0)  # tests before it
    model = build_model(opt)
    dataset = HRDegradationDataset(opt['datasets']['train'])
    before = embedding_margin(model.net_g.eval())
    model.net_g.train()
    for step in range(1, 61):
        model.feed_data(default_collate([dataset[(step * 4 + k) % len(dataset)] for k in range(6)]))
        model.optimize_parameters(step)
    after = embedding_margin(model.net_g.eval())
    assert after > 0.1 and after > before + 0.1, (before, after)
