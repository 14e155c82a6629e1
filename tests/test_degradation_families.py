"""Tests for tta_sr/data/degradation_families.py and the family mixture of stage 1."""
import random

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import tta_sr  # noqa: F401

from tta_sr.data.degradation_families import (DEFAULT_MILD, degrade, degrade_mild, disk_kernel, draw_family,
                                              family_options, family_probabilities, sample_mild)
from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.data.second_order_degradation import make_jpeger, quantize, seeded
from tta_sr.ops.downscalers import downscale
from tta_helpers import build_model, parsed, photo, pretrain_options, write_photos

JPEGER = make_jpeger()


def hr_batch(size=64):
    return torch.from_numpy(photo(0, size).transpose(2, 0, 1).copy())[None]


def test_the_mixture_draws_each_family_with_its_configured_probability():
    probs = family_probabilities({'family_prob': {'second_order': 2, 'mild': 1, 'bicubic': 1}})
    assert probs == {'second_order': 0.5, 'mild': 0.25, 'bicubic': 0.25}
    random.seed(0)
    n = 8000
    draws = [draw_family(probs) for _ in range(n)]
    for family, p in probs.items():
        frequency = draws.count(family) / n
        assert abs(frequency - p) < 4 * (p * (1 - p) / n) ** 0.5, (family, frequency, p)


def test_a_single_family_draws_nothing_and_unknown_families_are_refused():
    probs = family_probabilities({})
    assert probs == {'second_order': 1.0, 'mild': 0.0, 'bicubic': 0.0}
    state = random.getstate()
    assert draw_family(probs) == 'second_order' and random.getstate() == state
    with pytest.raises(ValueError, match='unknown families'):
        family_probabilities({'family_prob': {'jpeg': 1}})
    with pytest.raises(ValueError, match='non-negative'):
        family_probabilities({'family_prob': {'mild': -1, 'bicubic': 2}})


def test_bicubic_family_is_the_quantised_antialiased_downscale():
    hr = hr_batch()
    lr = degrade('bicubic', hr, None, 4, family_options({}), JPEGER)
    assert torch.equal(lr, quantize(downscale(hr, 4, 'bicubic_aa')))


def test_mild_family_is_a_light_reproducible_degradation():
    hr = hr_batch()
    opt = family_options({})
    with seeded(3):
        a = degrade('mild', hr, None, 4, opt, JPEGER)
    with seeded(3):
        b = degrade('mild', hr, None, 4, opt, JPEGER)
    with seeded(4):
        c = degrade('mild', hr, None, 4, opt, JPEGER)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (1, 3, 16, 16) and torch.equal(a, (a * 255).round() / 255)
    clean = downscale(hr, 4, 'area')
    assert 10 * torch.log10(1 / torch.mean((a - clean) ** 2)) > 24  # light, not a second-order wreck
    with seeded(5):
        params = sample_mild(DEFAULT_MILD)
    assert 85 <= params['jpeg_quality'] <= 95 and params['downscaler'] in ('area', 'bicubic_aa')


def test_mild_blur_and_noise_act():
    hr = hr_batch()
    base = {'blur': 'none', 'kernel': None, 'downscaler': 'area', 'noise_sigma': 0.0, 'gray_noise': False,
            'jpeg_quality': 95.0}
    sharp = degrade_mild(hr, 4, base, JPEGER)
    blurred = degrade_mild(hr, 4, dict(base, blur='disk', kernel=disk_kernel(2.0)), JPEGER)
    noisy = degrade_mild(hr, 4, dict(base, noise_sigma=8.0), JPEGER)
    laplacian = lambda x: (x[..., 1:-1, 1:-1] * 4 - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2]  # noqa: E731
                           - x[..., 1:-1, 2:]).abs().mean()
    assert laplacian(blurred) < laplacian(sharp) < laplacian(noisy)
    assert disk_kernel(1.5).sum() == pytest.approx(1.0) and disk_kernel(1.5).shape == (5, 5)


def test_validation_items_follow_the_family_mixture(tmp_path):
    write_photos(tmp_path / 'hr', 4, 72)
    dataset = HRDegradationDataset({'dataroot_gt': str(tmp_path / 'hr'), 'gt_size': 64, 'scale': 4, 'fixed_seed': 10,
                                    'phase': 'val', 'family_prob': {'bicubic': 1}})
    item = dataset[1]
    assert item['family'] == 'bicubic'
    assert torch.equal(item['lq'], quantize(downscale(item['gt'][None], 4, 'bicubic_aa'))[0])


def test_stage1_batches_follow_the_families_and_pair_views_for_the_contrastive_loss(tmp_path):
    write_photos(tmp_path / 'hr', 2, 72)
    opt = pretrain_options(tmp_path / 'hr')
    opt['family_prob'] = {'bicubic': 1}
    opt['train']['contrastive_opt'] = {'type': 'DegradationContrastiveLoss', 'loss_weight': 0.1}
    opt = parsed(opt, tmp_path)
    model = build_model(opt)
    dataset = HRDegradationDataset(opt['datasets']['train'])
    torch.manual_seed(0)
    model.feed_data(default_collate([dataset[0], dataset[1]]))
    assert model.gt.shape == (4, 3, 64, 64) and model.lq.shape == (4, 3, 16, 16)  # two views of two images
    assert torch.equal(model.lq, quantize(downscale(model.gt, 4, 'bicubic_aa')))
    assert not torch.equal(model.gt[:2], model.gt[2:])  # two different windows
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_rec', 'l_far', 'l_con'} and np.isfinite(model.log_dict['l_con'])
