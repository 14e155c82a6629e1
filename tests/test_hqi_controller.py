import tta_sr  # noqa: F401
import pytest
import torch
from torch.nn import functional as F

from tta_sr.losses.hqi_controller import controller_scale, hqi
from tta_sr.archs.lpips_arch import build_lpips


def test_hqi_is_one_for_identical_and_falls_with_noise():
    torch.manual_seed(0)
    lpips = build_lpips('stlpips')
    y = F.interpolate(torch.rand(1, 3, 16, 16), size=(64, 64), mode='bicubic', align_corners=False).clamp(0, 1)
    x = F.interpolate(y, size=(16, 16), mode='bicubic', align_corners=False)
    y_same = F.interpolate(x, size=(64, 64), mode='bicubic', align_corners=False).clamp(0, 1)
    assert hqi(x, y_same, lpips).item() == pytest.approx(1.0, abs=1e-5)
    values = [hqi(x, (y_same + s * torch.randn_like(y_same)).clamp(0, 1), lpips).item() for s in (0.05, 0.2, 0.5)]
    assert values[0] > values[1] > values[2]
    assert all(0 <= v <= 1 for v in values)


def test_hqi_has_no_gradient():
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    out = hqi(x, torch.rand(2, 3, 32, 32), build_lpips('stlpips'))
    assert out.shape == (2,) and not out.requires_grad


def test_controller_formulas_without_noise():
    h = torch.tensor([0.2, 0.9])
    s = controller_scale(h, 4, 'pretrain', noise_std=0.0)
    assert s.shape == (2, 4) and torch.allclose(s, (1 - h)[:, None].expand(2, 4))
    assert torch.allclose(controller_scale(h, 4, 'finetune', noise_std=0.0), h[:, None].expand(2, 4))
    assert torch.allclose(controller_scale(h, 4, 'finetune', noise_std=0.0, flip_sign=True),
                          (1 - h)[:, None].expand(2, 4))


def test_controller_noise_scale_and_generator():
    h = torch.full((3,), 0.5)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = controller_scale(h, 4096, 'finetune', noise_std=0.1, generator=g1)
    b = controller_scale(h, 4096, 'finetune', noise_std=0.1, generator=g2)
    assert torch.equal(a, b)
    assert (a - 0.5).mean().abs() < 0.01 and (a - 0.5).std().item() == pytest.approx(0.1, rel=0.05)


def test_controller_rejects_unknown_stage():
    with pytest.raises(ValueError, match='pretrain'):
        controller_scale(torch.zeros(1), 4, 'train')
