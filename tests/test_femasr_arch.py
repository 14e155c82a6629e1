import tta_sr  # noqa: F401  (must precede basicsr)
import pytest
import torch
from basicsr.archs import build_network

from model_zoo_adapters.femasr_arch import FeMaSRNet, VectorQuantizer

# tiny widths: a 64-px "gt patch", codebook of 16 entries x 32 dims at 8 px, one Swin block of depth 2
TINY = {'gt_resolution': 64, 'codebook_params': [[8, 16, 32]], 'channel_query_dict': {8: 32, 16: 32, 32: 32, 64: 32},
        'swin_opts': {'input_resolution': [8, 8], 'blk_depth': 2, 'num_heads': 2, 'window_size': 4, 'num_blocks': 1},
        'LQ_stage': True, 'norm_type': 'gn', 'act_type': 'silu'}


def _official_key_names():
    """Key names of the published FeMaSR_SRX4_model_g.pth (official FeMaSRNet, LQ stage), per module."""
    return ['multiscale_encoder.in_conv.weight', 'multiscale_encoder.blocks.0.0.weight',
            'multiscale_encoder.blocks.0.1.conv.0.norm.weight', 'multiscale_encoder.blocks.0.2.conv.5.bias',
            'multiscale_encoder.blocks.1.swin_blks.0.residual_group.blocks.0.attn.relative_position_bias_table',
            'multiscale_encoder.blocks.1.swin_blks.0.residual_group.blocks.1.attn_mask',
            'multiscale_encoder.blocks.1.swin_blks.0.conv.weight', 'multiscale_encoder.blocks.2.1.weight',
            'multiscale_encoder.blocks.3.3.conv.3.norm.bias', 'decoder_group.0.block.1.weight',
            'decoder_group.2.block.2.conv.2.weight', 'out_conv.weight', 'quantize_group.0.embedding.weight',
            'before_quant_group.0.weight', 'after_quant_group.0.conv.weight']


def test_full_size_has_the_official_keys_and_shapes():
    state = FeMaSRNet(codebook_params=[[32, 1024, 512]], LQ_stage=True, scale_factor=4).state_dict()
    for key in _official_key_names():
        assert key in state, key
    assert state['quantize_group.0.embedding.weight'].shape == (1024, 512)
    assert state['multiscale_encoder.in_conv.weight'].shape == (256, 3, 4, 4)
    assert state['before_quant_group.0.weight'].shape == (512, 256, 1, 1)
    assert state['after_quant_group.0.conv.weight'].shape == (256, 512, 3, 3)
    assert state['out_conv.weight'].shape == (3, 64, 3, 3)
    assert state['multiscale_encoder.blocks.1.swin_blks.3.residual_group.blocks.5.attn_mask'].shape == (16, 64, 64)
    assert len(state) == 473  # counted on the official module tree


@pytest.mark.parametrize('scale', [4, 2])
def test_builds_loads_published_layout_strictly_and_upsamples(scale):
    opt = dict(TINY, type='FeMaSRNet', scale_factor=scale, frozen_module_keywords=['quantize', 'decoder'])
    torch.manual_seed(0)
    ckpt = {'params': build_network(dict(opt)).state_dict()}  # published files keep the net under 'params'
    ckpt['params']['conv_semantic.0.weight'] = torch.zeros(1)  # HR-prior semantic head: dropped at load
    net = build_network(dict(opt))
    net.load_state_dict(ckpt['params'], strict=True)
    assert torch.equal(net.quantize_group[0].embedding.weight, ckpt['params']['quantize_group.0.embedding.weight'])
    with torch.no_grad():
        out = net.eval()(torch.rand(1, 3, 11, 14))
    assert out.shape == (1, 3, 11 * scale, 14 * scale)


def test_quantizer_returns_exact_codebook_entries():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_e=10, e_dim=4)
    z = torch.randn(2, 4, 3, 5)
    z_q, loss, idx = vq(z)
    codebook = vq.embedding.weight
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    expected_idx = torch.cdist(flat, codebook).argmin(1)
    assert torch.equal(idx.reshape(-1), expected_idx)
    assert torch.equal(z_q.permute(0, 2, 3, 1).reshape(-1, 4), codebook[expected_idx])  # bit-exact rows
    assert idx.shape == (2, 1, 3, 5) and loss.ndim == 0


def test_straight_through_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    net = FeMaSRNet(**TINY)
    out = net(torch.rand(1, 3, 16, 16))
    out.square().mean().backward()
    enc_grad = net.multiscale_encoder.in_conv.weight.grad
    assert enc_grad is not None and enc_grad.abs().sum() > 0
    assert net.before_quant_group[0].weight.grad.abs().sum() > 0
    # the codebook itself gets no gradient through the image path (only through the codebook loss)
    assert net.quantize_group[0].embedding.weight.grad is None


def test_straight_through_gradient_is_identity():
    vq = VectorQuantizer(n_e=8, e_dim=3)
    z = torch.randn(1, 3, 2, 2, requires_grad=True)
    z_q, _, _ = vq(z)
    weights = torch.randn_like(z_q)
    (z_q * weights).sum().backward()
    assert torch.equal(z.grad, weights)
