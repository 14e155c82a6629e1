"""Tests for tta_sr/ops/downscalers.py and the physical prior of tta_sr/archs/reconstructor_arch.py."""
import pytest
import torch
from torch.nn import functional as F

import tta_sr  # noqa: F401
from tta_sr.archs.reconstructor_arch import Reconstructor
from tta_sr.ops.downscalers import DownscalerBank, downscale, gaussian_blur, gaussian_kernel1d, parse_downscaler

BANK = ['bicubic', 'bicubic_aa', 'area', 'gauss1.0', 'gauss2.5']


def test_plain_downscalers_match_their_definitions():
    torch.manual_seed(0)
    y = torch.rand(2, 3, 32, 24)
    assert torch.allclose(downscale(y, 4, 'area'), F.avg_pool2d(y, 4))
    assert torch.equal(downscale(y, 4, 'gauss0'), downscale(y, 4, 'area'))
    assert torch.allclose(downscale(y, 4, 'bicubic_aa'),
                          F.interpolate(y, size=(8, 6), mode='bicubic', antialias=True, align_corners=False))
    assert downscale(y, 4, 'bicubic').shape == (2, 3, 8, 6)
    assert not torch.allclose(downscale(y, 4, 'bicubic'), downscale(y, 4, 'bicubic_aa'), atol=1e-3)


def test_gaussian_blur_is_normalised_linear_and_widens_with_sigma():
    assert gaussian_kernel1d(1.3).sum().item() == pytest.approx(1.0)
    assert gaussian_kernel1d(1.3).numel() == 2 * 4 + 1
    y = torch.zeros(1, 1, 21, 21)
    y[..., 10, 10] = 1
    narrow, wide = gaussian_blur(y, 0.8), gaussian_blur(y, 2.0)
    assert narrow.sum().item() == pytest.approx(1.0, abs=1e-5) and narrow.max() > wide.max()
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert torch.allclose(downscale(a + 2 * b, 4, 'gauss1.5'), downscale(a, 4, 'gauss1.5') + 2 * downscale(b, 4, 'gauss1.5'),
                          atol=1e-6)
    assert torch.equal(gaussian_blur(a, 0), a)


def test_unknown_names_are_refused():
    assert parse_downscaler('gauss1.25') == ('gauss', 1.25)
    for name in ('lanczos', 'gauss', 'gauss-1', 'gaussx'):
        with pytest.raises(ValueError, match='unknown downscaler'):
            parse_downscaler(name)
    with pytest.raises(ValueError, match='unknown downscaler'):
        DownscalerBank(['area', 'box'], 4)


def test_bank_mixture_is_the_weighted_sum_and_checks_weights():
    torch.manual_seed(0)
    bank = DownscalerBank(BANK, 4)
    y = torch.rand(2, 3, 32, 32)
    one_hot = F.one_hot(torch.tensor([2, 4]), len(BANK)).float()
    out = bank(y, one_hot)
    assert torch.allclose(out[0], downscale(y[:1], 4, 'area')[0], atol=1e-6)
    assert torch.allclose(out[1], downscale(y[1:], 4, 'gauss2.5')[0], atol=1e-6)
    half = torch.tensor([[0.5, 0.5, 0, 0, 0]] * 2)
    expected = 0.5 * (downscale(y, 4, 'bicubic') + downscale(y, 4, 'bicubic_aa'))
    assert torch.allclose(bank(y, half), expected, atol=1e-6)
    with pytest.raises(ValueError, match='weights must be'):
        bank(y, torch.ones(2, 3))


def test_reconstructor_prior_starts_uniform_and_follows_its_heads():
    torch.manual_seed(0)
    rec = Reconstructor(num_feat=8, num_block=1, emb_dim=4, scale=4, prior=BANK)
    y, e_im, e_d = torch.rand(2, 3, 32, 32), torch.rand(2, 8, 32, 32), torch.randn(2, 4)
    uniform = DownscalerBank(BANK, 4)(y, torch.full((2, len(BANK)), 1 / len(BANK)))
    assert torch.allclose(rec(e_d, e_im, y), uniform, atol=1e-6)  # zero heads, zero last conv
    with torch.no_grad():  # the head selects the area downscaler; the gate closes the residual
        rec.prior_head.bias.copy_(torch.tensor([0, 0, 30.0, 0, 0]))
        rec.gate_head.bias.fill_(-30.0)
        torch.nn.init.normal_(rec.conv_last.weight, std=0.5)
    assert torch.allclose(rec(e_d, e_im, y), downscale(y, 4, 'area'), atol=1e-5)
    with torch.no_grad():
        rec.gate_head.bias.fill_(0.0)
    assert not torch.allclose(rec(e_d, e_im, y), downscale(y, 4, 'area'), atol=1e-3)  # the residual is back
    out = rec(e_d.requires_grad_(), e_im, y)
    out.sum().backward()
    assert rec.prior_head.weight.grad is not None and rec.gate_head.weight.grad is not None
