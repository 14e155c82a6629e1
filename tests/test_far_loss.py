import tta_sr  # noqa: F401  (must precede basicsr)
import pytest
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from tta_sr.archs.image_encoder_arch import ImageEncoder
from tta_sr.losses.far_loss import FARLoss, gram_descriptors, gram_matrix
from tta_sr.utils.freeze import freeze


def test_gram_descriptors_match_hand_computation():
    # one image, C=2, H=1, W=2: F = [[1, 2], [3, 4]]
    e = torch.tensor([[[[1., 2.]], [[3., 4.]]]])
    gram = gram_matrix(e)
    expected = torch.tensor([[[1 + 4, 3 + 8], [3 + 8, 9 + 16]]]) / 2.0  # [[2.5, 5.5], [5.5, 12.5]]
    assert torch.allclose(gram, expected)
    s_avg, s_max = gram_descriptors(e)
    assert torch.allclose(s_avg, torch.tensor([[4.0, 9.0]]))
    assert torch.allclose(s_max, torch.tensor([[5.5, 12.5]]))


def test_gram_is_scale_free_across_sizes():
    e = torch.randn(1, 3, 4, 4)
    tiled = e.repeat(1, 1, 2, 2)  # same statistics, 4x the pixels
    assert torch.allclose(gram_matrix(e), gram_matrix(tiled), atol=1e-5)


def _identity_far(c):
    far = FARLoss(in_channels=c, target_channels=c)
    with torch.no_grad():
        for t in (far.T_a, far.T_m):
            t.weight.copy_(torch.eye(c))
            t.bias.zero_()
    return far


def test_far_zero_for_equal_features_and_identity_maps():
    e = torch.randn(2, 5, 6, 6)
    assert _identity_far(5)(e, e.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert _identity_far(5)(e, e + 0.5).item() > 1e-3


def test_far_value_matches_formula():
    torch.manual_seed(0)
    far = FARLoss(in_channels=4, target_channels=3, loss_weight=0.5)
    e_im, e_cl = torch.randn(2, 4, 5, 5), torch.randn(2, 3, 3, 3)
    a_im, m_im = gram_descriptors(e_im)
    a_cl, m_cl = gram_descriptors(e_cl)
    per = (far.T_a(a_im) - a_cl).norm(dim=1) + (far.T_m(m_im) - m_cl).norm(dim=1)
    assert torch.allclose(far(e_im, e_cl), 0.5 * per.mean())


def test_far_channel_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match='target_channels'):
        FARLoss(4, 8)(torch.randn(1, 4, 3, 3), torch.randn(1, 7, 3, 3))


def test_stage1_gradients_reach_T_and_image_encoder():
    torch.manual_seed(0)
    enc = ImageEncoder(num_feat=8, num_block=1)
    frozen = freeze(torch.nn.Conv2d(3, 6, 3, stride=2, padding=1))  # stands in for E_clip
    far = LOSS_REGISTRY.get('FARLoss')(in_channels=8, target_channels=6)
    y = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        e_cl = frozen(y)
    far(enc(y), e_cl).backward()
    for module in (far.T_a, far.T_m, enc):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_stage2_gradients_reach_only_the_input():
    torch.manual_seed(0)
    enc = freeze(ImageEncoder(num_feat=8, num_block=1))
    frozen = freeze(torch.nn.Conv2d(3, 6, 3, stride=2, padding=1))
    far = freeze(FARLoss(in_channels=8, target_channels=6))
    y = torch.rand(2, 3, 16, 16, requires_grad=True)
    far(enc(y), frozen(y)).backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    for module in (enc, frozen, far):
        assert all(p.grad is None for p in module.parameters())


def test_normalised_descriptors_ignore_intensity_scale_but_plain_ones_do_not():
    """A brighter or darker copy (features scaled) leaves the normalised FAR unchanged; the plain Gram moves."""
    torch.manual_seed(0)
    e_im, e_cl = torch.rand(2, 8, 12, 12), torch.rand(2, 16, 6, 6)
    normalised, plain = FARLoss(8, 16, normalize=True), FARLoss(8, 16)
    plain.load_state_dict(normalised.state_dict())
    assert normalised(0.6 * e_im, e_cl).item() == pytest.approx(normalised(e_im, e_cl).item(), rel=1e-5)
    assert abs(plain(0.6 * e_im, e_cl).item() - plain(e_im, e_cl).item()) > 1e-3
    gram = gram_matrix(e_im, normalize=True)
    assert torch.allclose(torch.diagonal(gram, dim1=1, dim2=2), torch.ones(2, 8), atol=1e-5)
