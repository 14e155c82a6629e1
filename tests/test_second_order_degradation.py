"""Tests for tta_sr/data/second_order_degradation.py: shapes, range, 8-bit quantisation, seeding."""
import random

import numpy as np
import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.data.degradations import circular_lowpass_kernel, random_mixed_kernels

from tta_sr.data.second_order_degradation import (DEFAULT_DEGRADATION, degradation_options, degrade_second_order,
                                                  make_jpeger, seeded)
from tta_helpers import photo

KERNELS = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
PROBS = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]


def _kernels(batch, seed):
    """(kernel1, kernel2, sinc) each (B, 21, 21), as RealESRGANDataset makes them."""
    rng_state = np.random.get_state()
    np.random.seed(seed)
    k1, k2, sinc = [], [], []
    for _ in range(batch):
        for out, sigma in ((k1, [0.2, 3]), (k2, [0.2, 1.5])):
            k = random_mixed_kernels(KERNELS, PROBS, 21, sigma, sigma, [-np.pi, np.pi], [0.5, 4], [1, 2],
                                     noise_range=None)
            out.append(np.pad(k, ((21 - k.shape[0]) // 2,) * 2))
        sinc.append(circular_lowpass_kernel(np.pi / 3, 21, pad_to=21))
    np.random.set_state(rng_state)
    return [torch.from_numpy(np.stack(k)).float() for k in (k1, k2, sinc)]


@pytest.fixture(scope='module')
def jpeger():
    return make_jpeger()


@pytest.fixture(scope='module')
def hr():
    """(2, 3, 64, 48) photo crops: non-square, to catch H/W mix-ups."""
    return torch.stack([torch.from_numpy(photo(i, 64)[:, :48].transpose(2, 0, 1).copy()) for i in range(2)])


def _degrade(hr, jpeger, seed, opt=None):
    with seeded(seed):
        return degrade_second_order(hr, *_kernels(hr.shape[0], seed), 4, degradation_options(opt or {}), jpeger)


def test_shape_range_and_quantisation(hr, jpeger):
    for seed in (0, 1, 2):
        lr = _degrade(hr, jpeger, seed)
        assert lr.shape == (2, 3, 16, 12)
        assert lr.dtype == torch.float32
        assert lr.min() >= 0 and lr.max() <= 1
        levels = lr * 255
        assert torch.allclose(levels, levels.round(), atol=1e-4), 'output is not quantised to multiples of 1/255'
        assert lr.std() > 0.01  # a photo, not a constant


def test_seeded_reproduces_exactly_and_seeds_differ(hr, jpeger):
    a, b = _degrade(hr, jpeger, 7), _degrade(hr, jpeger, 7)
    assert torch.equal(a, b)
    c = _degrade(hr, jpeger, 8)
    assert not torch.equal(a, c)


def test_seeded_restores_outer_rng_state():
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())

    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    with seeded(5):
        inner = (random.random(), np.random.rand(), torch.rand(1).item())
    assert random.getstate() == before[0]
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    with seeded(5):
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == inner


def test_seeded_restores_state_after_an_exception():
    state = random.getstate()
    with pytest.raises(RuntimeError):
        with seeded(1):
            random.random()
            raise RuntimeError('boom')
    assert random.getstate() == state


def test_degradation_options_defaults_and_overrides():
    opt = degradation_options({'jpeg_range': [90, 95], 'unrelated': 1})
    assert set(opt) == set(DEFAULT_DEGRADATION)
    assert opt['jpeg_range'] == [90, 95]
    assert opt['noise_range'] == DEFAULT_DEGRADATION['noise_range']


def test_options_change_the_output(hr, jpeger):
    """Heavier noise settings give a different (noisier) LR for the same seed."""
    mild = {'noise_range': [1, 1], 'noise_range2': [1, 1], 'poisson_scale_range': [0.05, 0.05],
            'poisson_scale_range2': [0.05, 0.05], 'jpeg_range': [95, 95], 'jpeg_range2': [95, 95]}
    strong = {**mild, 'noise_range': [30, 30], 'noise_range2': [25, 25], 'poisson_scale_range': [3, 3],
              'poisson_scale_range2': [2.5, 2.5]}
    a, b = _degrade(hr, jpeger, 3, mild), _degrade(hr, jpeger, 3, strong)
    assert a.shape == b.shape
    assert not torch.equal(a, b)


def test_small_patch_with_strong_downscale_does_not_crash(hr, jpeger):
    """64 x 48 HR shrunk by < 0.23 is < 11 px wide, less than the 21-tap second blur's reflect padding needs.

    Always 'down' in [0.15, 1]: some of these seeds draw such a factor (regression: it used to raise).
    """
    opt = {'resize_prob': [0, 1, 0], 'resize_range': [0.15, 1.5], 'second_blur_prob': 1.0}
    for seed in range(40):
        lr = _degrade(hr, jpeger, seed, opt)
        assert lr.shape == (2, 3, 16, 12)
        assert torch.isfinite(lr).all()


def test_jpegers_own_their_quantisation_tables():
    """basicsr's DiffJPEG instances share module-level tables: moving one (to CUDA) would move all."""
    a, b = make_jpeger(), make_jpeger()
    tables = [{n: p.data_ptr() for n, p in j.named_parameters()} for j in (a, b)]
    assert tables[0] and not set(tables[0].values()) & set(tables[1].values())
    with torch.no_grad():
        next(a.parameters()).mul_(2)
    assert not torch.equal(next(a.parameters()), next(b.parameters()))
