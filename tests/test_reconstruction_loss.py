import tta_sr  # noqa: F401
import pytest
import torch
from basicsr.losses import build_loss
from torch.nn import functional as F

from tta_sr.archs.lpips_arch import build_lpips


def _smooth(seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(2, 3, 8, 8, generator=g), size=(32, 32), mode='bicubic',
                         align_corners=False).clamp(0, 1)


def test_built_from_options_and_value():
    loss = build_loss({'type': 'ReconstructionLoss', 'lpips_kind': 'stlpips', 'loss_weight': 2.0})
    assert loss.lpips_name == 'ST-LPIPS-alex (stlpips-pytorch)'
    assert loss.state_dict() == {}  # LPIPS is shared, not saved with the model
    x = _smooth()
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    expected = 2.0 * (F.l1_loss(x, y) + build_lpips('stlpips')(x, y).mean())
    assert torch.allclose(loss(x, y), expected)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_weighted_version_is_lways_loss():
    loss = build_loss({'type': 'ReconstructionLoss', 'lpips_kind': 'stlpips'})
    x, y = _smooth(0), _smooth(1)
    w = torch.rand(2, 1, 32, 32)
    expected = F.l1_loss(w * x, w * y) + build_lpips('stlpips')(w * x, w * y).mean()
    assert torch.allclose(loss(x, y, weight=w), expected)
    assert loss(x, y, weight=torch.zeros(2, 1, 32, 32)).item() == pytest.approx(0.0, abs=1e-6)


def test_l1_only_and_gradient():
    loss = build_loss({'type': 'ReconstructionLoss', 'lpips_weight': 0})
    assert loss.lpips_name is None
    x = _smooth().requires_grad_(True)
    out = loss(x, torch.zeros_like(x))
    out.backward()
    assert torch.allclose(out, x.detach().mean()) and x.grad is not None
