import tta_sr  # noqa: F401  (must precede basicsr)
import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.rrdbnet_arch import RRDBNet

from model_zoo_adapters.bsrgan_arch import BSRGANNet, basicsr_to_bsrgan, bsrgan_to_basicsr, is_bsrgan_layout
from tta_sr.weights import resolver

TINY = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4, 'scale': 4}


def _bsrgan_layout_state(seed=0):
    """A state dict in the published BSRGAN.pth (KAIR) key layout, from a random BasicSR RRDBNet."""
    torch.manual_seed(seed)
    return basicsr_to_bsrgan(RRDBNet(**TINY).state_dict())


def test_key_mapping_names_the_published_layout():
    kair = _bsrgan_layout_state()
    assert is_bsrgan_layout(kair)
    for key in ('conv_first.weight', 'RRDB_trunk.0.RDB1.conv1.weight', 'RRDB_trunk.1.RDB3.conv5.bias',
                'trunk_conv.weight', 'upconv1.weight', 'upconv2.bias', 'HRconv.weight', 'conv_last.bias'):
        assert key in kair
    assert not any(k.startswith(('body.', 'conv_body', 'conv_up', 'conv_hr')) for k in kair)


def test_key_mapping_round_trips_exactly_both_ways():
    basic = RRDBNet(**TINY).state_dict()
    there = basicsr_to_bsrgan(basic)
    back = bsrgan_to_basicsr(there)
    assert list(back) == list(basic)
    assert all(torch.equal(back[k], basic[k]) for k in basic)
    kair = _bsrgan_layout_state(1)
    again = basicsr_to_bsrgan(bsrgan_to_basicsr(kair))
    assert list(again) == list(kair)
    assert all(torch.equal(again[k], kair[k]) for k in kair)


def test_builds_from_options_loads_published_layout_strictly_and_upsamples_x4():
    net = build_network({'type': 'BSRGANNet', **TINY})
    assert isinstance(net, BSRGANNet) and isinstance(net, RRDBNet)
    kair = _bsrgan_layout_state()
    net.load_state_dict(kair, strict=True)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in bsrgan_to_basicsr(kair).items())
    out = net(torch.rand(2, 3, 7, 9))
    assert out.shape == (2, 3, 28, 36)


def test_same_outputs_as_basicsr_rrdbnet_with_mapped_weights():
    kair = _bsrgan_layout_state(2)
    reference = RRDBNet(**TINY).eval()
    reference.load_state_dict(bsrgan_to_basicsr(kair), strict=True)
    adapter = BSRGANNet(**TINY).eval()
    adapter.load_state_dict(kair, strict=True)
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(reference(x), adapter(x))


def test_basicsr_layout_also_loads_and_unknown_keys_still_fail():
    net = BSRGANNet(**TINY)
    net.load_state_dict(RRDBNet(**TINY).state_dict(), strict=True)
    bad = _bsrgan_layout_state()
    bad['extra.weight'] = torch.zeros(1)
    with pytest.raises(RuntimeError, match='extra.weight'):
        net.load_state_dict(bad, strict=True)


def test_only_scale_4():
    with pytest.raises(ValueError, match='scale=4'):
        BSRGANNet(**dict(TINY, scale=2))


def test_manifest_entry_builds_and_loads_a_published_layout_file(tmp_path, monkeypatch):
    entry = resolver.manifest_entry('BSRGAN')
    assert entry['arch'] == 'BSRGANNet' and entry['scale'] == 4 and entry['param_key'] is None
    # the real file is 67 MB; write a tiny one in its (bare, KAIR) layout and point the entry at tiny widths
    monkeypatch.setenv(resolver.ENV_VAR, str(tmp_path))
    torch.save(_bsrgan_layout_state(), tmp_path / entry['filename'])
    tiny_entry = dict(entry, arch_kwargs=TINY)
    monkeypatch.setattr(resolver, 'manifest_entry', lambda name: tiny_entry)
    net = resolver.build_pretrained('BSRGAN')
    assert net(torch.rand(1, 3, 4, 4)).shape == (1, 3, 16, 16)
