import tta_sr  # noqa: F401
import pytest
import torch

from tta_sr.archs import lpips_arch as lm


def _noisy(x, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _smooth(size, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(2, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(size, size), mode='bicubic', align_corners=False).clamp(0, 1)


@pytest.mark.parametrize('size', [32, 64])
def test_stlpips_zero_for_identical_and_monotone_in_noise(size):
    metric = lm.build_lpips('stlpips', 'alex')
    x = _smooth(size)
    assert metric(x, x).shape == (2,)
    assert torch.allclose(metric(x, x), torch.zeros(2), atol=1e-6)
    d = [metric(x, _noisy(x, s)).mean().item() for s in (0.02, 0.1, 0.3)]
    assert 0 < d[0] < d[1] < d[2]


def test_cached_once_per_kind_net_device_and_frozen():
    a = lm.build_lpips('stlpips', 'alex')
    assert a is lm.build_lpips('stlpips', 'alex')
    assert a.name == 'ST-LPIPS-alex (stlpips-pytorch)' and a.is_fallback is False
    assert not any(p.requires_grad for p in a.parameters())
    x = _smooth(32).requires_grad_(True)
    a(x, _noisy(x.detach(), 0.1)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # usable as a loss


def test_matches_upsampled_input():
    metric = lm.build_lpips('stlpips', 'alex')
    x = _smooth(32)
    y = _noisy(x, 0.1)
    up = lambda t: torch.nn.functional.interpolate(t, size=(64, 64), mode='bilinear', align_corners=False)
    assert metric.min_side == 64
    assert torch.allclose(metric(x, y), metric(up(x), up(y)), atol=1e-6)


def test_lpips_kind_missing_backbone_is_clear(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match='alexnet-owt-7be5be79.pth'):
        lm.PackageLPIPS('alex')
    assert lm.resolve_lpips_kind('auto', 'alex') == ('stlpips', True)


def test_auto_falls_back_with_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    metric = lm.build_lpips('auto', 'alex')
    assert metric.is_fallback and 'ST-LPIPS' in metric.name


def test_lpips_package_backend_with_cached_backbone(tmp_path, monkeypatch):
    import torchvision

    ckpt = tmp_path / 'checkpoints'
    ckpt.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), ckpt / 'alexnet-owt-7be5be79.pth')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    assert lm.resolve_lpips_kind('auto', 'alex') == ('lpips', False)
    metric = lm.PackageLPIPS('alex')
    assert metric.name == 'LPIPS-alex (lpips)'
    x = _smooth(32)
    assert torch.allclose(metric(x, x), torch.zeros(2), atol=1e-6)
    assert (metric(x, _noisy(x, 0.3)) > 0).all()


def test_bad_kind():
    with pytest.raises(ValueError, match='stlpips'):
        lm.build_lpips('foo')
