import tta_sr  # noqa: F401  (must precede basicsr)
import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.swinir_arch import SwinIR

from model_zoo_adapters.swinir_gan_arch import SWINIR_GAN_VARIANTS, SwinIRGAN, swinir_gan_kwargs
from tta_sr.weights import resolver

# tiny widths; img_size 16 / window 4 keep the saved attention masks small
TINY = {'embed_dim': 12, 'depths': [2], 'num_heads': [2], 'window_size': 4, 'img_size': 16}


def _published_layout_state(variant, seed=0):
    """``{'params_ema': state}`` as in the published files, from the official-config module tree (BasicSR SwinIR)."""
    torch.manual_seed(seed)
    return {'params_ema': SwinIR(**swinir_gan_kwargs(variant, **TINY)).state_dict()}


def test_variants_are_the_published_configs():
    medium, large = SWINIR_GAN_VARIANTS['medium'], SWINIR_GAN_VARIANTS['large']
    for cfg in (medium, large):
        fixed = ('upscale', 'img_size', 'window_size', 'mlp_ratio', 'upsampler', 'img_range')
        assert tuple(cfg[k] for k in fixed) == (4, 64, 8, 2, 'nearest+conv', 1.)
    assert (medium['embed_dim'], medium['depths'], medium['num_heads'], medium['resi_connection']) \
        == (180, [6] * 6, [6] * 6, '1conv')
    assert (large['embed_dim'], large['depths'], large['num_heads'], large['resi_connection']) \
        == (240, [6] * 9, [8] * 9, '3conv')
    with pytest.raises(ValueError, match='variant'):
        swinir_gan_kwargs('huge')


@pytest.mark.parametrize('variant', ['medium', 'large'])
def test_builds_loads_published_layout_strictly_and_upsamples_x4(variant):
    net = build_network({'type': 'SwinIRGAN', 'variant': variant, **TINY})
    assert isinstance(net, SwinIR)
    ckpt = _published_layout_state(variant)
    net.load_state_dict(ckpt['params_ema'], strict=True)
    keys = set(ckpt['params_ema'])
    for key in ('conv_first.weight', 'conv_before_upsample.0.weight', 'conv_up1.weight', 'conv_up2.weight',
                'conv_hr.weight', 'conv_last.weight', 'layers.0.residual_group.blocks.1.attn_mask'):
        assert key in keys
    assert ('conv_after_body.2.weight' in keys) == (variant == 'large')  # 3conv
    out = net.eval()(torch.rand(1, 3, 8, 12))
    assert out.shape == (1, 3, 32, 48)


@pytest.mark.parametrize('official_padding', [True, False])
def test_sizes_not_multiple_of_window_are_padded_and_cropped(official_padding):
    torch.manual_seed(0)
    net = SwinIRGAN('medium', official_padding=official_padding, **TINY).eval()
    x = torch.rand(1, 3, 9, 6)  # window 4
    with torch.no_grad():
        out = net(x)
        assert out.shape == (1, 3, 36, 24)
        # the padded region is a mirror of the image: equals running SwinIR on the hand-padded input
        # 9 x 6 -> 12 x 8 in both modes (neither side is a multiple of 4)
        xp = torch.cat([x, torch.flip(x, [2])], 2)[:, :, :12]
        xp = torch.cat([xp, torch.flip(xp, [3])], 3)[:, :, :, :8]
        assert torch.allclose(out, SwinIR.forward(net, xp)[..., :36, :24])


def test_official_padding_adds_a_window_when_already_divisible():
    torch.manual_seed(0)
    net = SwinIRGAN('medium', **TINY).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        xp = torch.cat([x, torch.flip(x, [2])], 2)[:, :, :12]
        xp = torch.cat([xp, torch.flip(xp, [3])], 3)[:, :, :, :12]
        assert torch.allclose(net(x), SwinIR.forward(net, xp)[..., :32, :32])


def test_manifest_entry_loads_a_params_ema_file(tmp_path, monkeypatch):
    entry = resolver.manifest_entry('SwinIR-L_x4_GAN')
    assert entry['arch'] == 'SwinIRGAN' and entry['param_key'] == 'params_ema' and entry['scale'] == 4
    monkeypatch.setenv(resolver.ENV_VAR, str(tmp_path))
    torch.save(_published_layout_state('large'), tmp_path / entry['filename'])
    tiny_entry = dict(entry, arch_kwargs=dict(entry['arch_kwargs'], **TINY))
    monkeypatch.setattr(resolver, 'manifest_entry', lambda name: tiny_entry)
    net = resolver.build_pretrained('SwinIR-L_x4_GAN')
    assert net(torch.rand(1, 3, 5, 7)).shape == (1, 3, 20, 28)
