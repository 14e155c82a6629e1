import pytest
import torch

from tta_sr.losses.low_pass_loss import LowPassL1Loss


def _checkerboard(size, amplitude):
    """A pattern at the Nyquist frequency: a Gaussian low-pass of std 2 removes it almost entirely."""
    idx = torch.arange(size)
    return amplitude * (1 - 2 * ((idx[:, None] + idx[None, :]) % 2)).float().expand(1, 3, size, size)


def test_the_low_pass_term_ignores_detail_and_the_detail_term_holds_it():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32) * 0.5 + 0.25
    sharper = target + _checkerboard(32, 0.1)
    low_only = LowPassL1Loss(sigma=2.0)
    assert low_only(sharper, target).item() < 0.005
    with_detail = LowPassL1Loss(sigma=2.0, detail_weight=0.5)
    assert with_detail(sharper, target).item() == pytest.approx(0.5 * 0.1, rel=0.1)


def test_a_uniform_brightness_change_is_held_by_the_low_pass_term_only():
    target = torch.full((1, 3, 24, 24), 0.5)
    darker = target - 0.2
    loss = LowPassL1Loss(sigma=2.0, loss_weight=2.0, detail_weight=1.0)
    assert loss(darker, target).item() == pytest.approx(2.0 * 0.2, rel=1e-4)


def test_shapes_must_match():
    with pytest.raises(ValueError, match='differ'):
        LowPassL1Loss()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
