import tta_sr  # noqa: F401
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from tta_sr.archs.modulated_conv import ModulatedConv2d

TINY = dict(emb_dim=16, num_feat=8, deg_num_block=1, img_num_block=1, rec_num_block=1)


def test_registered():
    for name in ('DegradationEncoder', 'ImageEncoder', 'Reconstructor', 'LRReconNet'):
        assert ARCH_REGISTRY.get(name) is not None


def test_modulated_conv_matches_per_sample_conv():
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 5, 3, emb_dim=6)
    x, emb = torch.randn(2, 4, 7, 7), torch.randn(2, 6)
    out = conv(x, emb)
    assert out.shape == (2, 5, 7, 7)
    for i in range(2):  # reference: modulate / demodulate one sample by hand
        w = conv.scale * conv.weight[0] * conv.modulation(emb[i:i + 1]).view(1, 4, 1, 1)
        w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        ref = torch.nn.functional.conv2d(x[i:i + 1], w, conv.bias, padding=1)
        assert torch.allclose(out[i:i + 1], ref, atol=1e-5)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_reconstructor_output_is_lr_shape(scale):
    rec = ARCH_REGISTRY.get('Reconstructor')(num_feat=8, num_block=1, emb_dim=16, scale=scale)
    out = rec(torch.randn(2, 16), torch.randn(2, 8, 6 * scale, 5 * scale), torch.rand(2, 3, 6 * scale, 5 * scale))
    assert out.shape == (2, 3, 6, 5)


def test_reconstructor_rejects_indivisible_size():
    rec = ARCH_REGISTRY.get('Reconstructor')(num_feat=8, num_block=1, emb_dim=16, scale=4)
    with pytest.raises(ValueError, match='divisible'):
        rec(torch.randn(1, 16), torch.randn(1, 8, 10, 12), torch.rand(1, 3, 10, 12))


def test_lr_recon_net_shapes_embedding_and_controller():
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get('LRReconNet')(scale=4, **TINY)
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    e_d = net.encode_degradation(x)
    e_im = net.encode_image(y)
    assert e_d.shape == (2, 16) and e_im.shape == (2, 8, 32, 32)
    x_hat = net(x, y)
    assert x_hat.shape == x.shape
    assert torch.allclose(x_hat, net.reconstruct(e_d, e_im, y))
    s = torch.full((2, 16), 0.3)
    assert torch.allclose(net(x, y, s), net.reconstruct(e_d, e_im, y, s), atol=1e-6)
    assert torch.allclose(net(x, y, s), net.reconstruct(0.3 * e_d, e_im, y), atol=1e-6)  # no prior: R sees s * e_d
    # different embeddings -> different outputs (once R's last conv is no longer zero)
    torch.nn.init.normal_(net.reconstructor.conv_last.weight, std=0.1)
    a = net.reconstruct(torch.randn(2, 16), e_im, y)
    b = net.reconstruct(torch.randn(2, 16), e_im, y)
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match='4x'):
        net(x, torch.rand(2, 3, 16, 16))


def test_degradation_embedding_is_standardised_over_the_batch_and_has_unit_rms():
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get('LRReconNet')(scale=4, **TINY)
    encoder = net.deg_encoder
    x = torch.rand(6, 3, 8, 8)
    e_d = net.encode_degradation(x)  # training: batch statistics, running ones updated
    assert torch.allclose(e_d.pow(2).mean(dim=1), torch.ones(6), atol=1e-3)
    assert e_d.std(dim=0).mean() > 0.5  # images differ, whatever E_deg's weights
    assert not torch.equal(encoder.running_mean, torch.zeros(16))
    running = encoder.running_mean.clone()
    single = net.encode_degradation(x[:1])  # a batch of one: running statistics, nothing updated
    assert torch.equal(encoder.running_mean, running) and single.shape == (1, 16)
    net.eval()
    assert torch.allclose(net.encode_degradation(x[:1]), single, atol=1e-6)
    assert torch.allclose(net.encode_degradation(100 * x).pow(2).mean(dim=1), torch.ones(6), atol=1e-3)


def test_untrained_output_is_antialiased_bicubic_downscale_and_all_parts_train():
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get('LRReconNet')(scale=2, **TINY)
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    out = net(x, y)
    down = torch.nn.functional.interpolate(y, size=(8, 8), mode='bicubic', align_corners=False, antialias=True)
    assert torch.allclose(out, down, atol=1e-6)
    (out - x).abs().mean().backward()
    assert net.reconstructor.conv_last.weight.grad.abs().sum() > 0
    torch.nn.init.normal_(net.reconstructor.conv_last.weight, std=0.1)  # one step later every part gets grads
    net.zero_grad()
    (net(x, y) - x).abs().mean().backward()
    for part in (net.deg_encoder, net.img_encoder, net.reconstructor):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
