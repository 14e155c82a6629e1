import tta_sr  # noqa: F401
import torch

from tta_sr.losses.dwt_weight import high_frequency_weight


def test_flat_image_gives_zero_weight():
    w = high_frequency_weight(torch.full((2, 3, 16, 20), 0.4))
    assert w.shape == (2, 1, 16, 20) and torch.equal(w, torch.zeros_like(w))


def test_edges_near_one_and_flat_regions_zero():
    x = torch.zeros(1, 3, 16, 16)
    x[..., 7:] = 1.0  # vertical step inside a haar pair (columns 6|7)
    w = high_frequency_weight(x)
    assert w.shape == (1, 1, 16, 16)
    assert w.max().item() == 1.0 and w.min().item() >= 0
    assert (w[..., 6:8] > 0.9).all()  # on the edge
    assert (w[..., :4] == 0).all() and (w[..., 11:] == 0).all()  # far from it


def test_odd_size_dtype_device_and_no_grad():
    x = torch.rand(3, 3, 15, 17, dtype=torch.float64, requires_grad=True)
    w = high_frequency_weight(x)
    assert w.shape == (3, 1, 15, 17) and w.dtype == torch.float64 and not w.requires_grad
    assert torch.isfinite(w).all() and (w.flatten(1).amax(1) == 1).all()


def test_per_channel_mode():
    x = torch.zeros(1, 3, 8, 8)
    x[:, 0, :, 3:] = 1.0
    w = high_frequency_weight(x, use_gray=False, wavelet='db2')
    assert w.shape == (1, 1, 8, 8) and w.max().item() == 1.0
