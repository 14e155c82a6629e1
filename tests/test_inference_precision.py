"""tta_sr.utils.inference_precision: the bf16 / channels-last paths stay within the fp32 tolerance on a small conv
net, bf16 support follows the CPU's flags, fp16 is refused on CPU, and auto keeps the fastest accurate path."""
import pytest
import torch

from tta_sr.utils import inference_precision as ip
from tta_sr.utils.tiling import tiled_forward
from test_tiling import tiny_sr

CPU_BF16 = ip.bf16_supported('cpu')
FAST_PATHS = [('fp32', True), pytest.param('bf16', False, marks=pytest.mark.skipif(
    not CPU_BF16, reason='this CPU has no bf16 instructions (avx512_bf16 / amx_bf16)')), pytest.param(
    'bf16', True, marks=pytest.mark.skipif(not CPU_BF16, reason='this CPU has no bf16 instructions'))]


def bright_sr():
    """``tiny_sr`` with 0.5 added to its last bias: outputs inside (0, 1), so clipping hides no difference."""
    net = tiny_sr()
    with torch.no_grad():
        net[4].bias += 0.5
    return net


@pytest.mark.parametrize('precision, channels_last', FAST_PATHS)
def test_fast_paths_match_fp32_within_the_tolerance(precision, channels_last):
    """Tiled (tile 16, overlap 8) on a 40 x 52 image against the untiled fp32 output; measured differences
    (/255, mean and max): channels_last < 0.0001 and < 0.0001, bf16 (either layout) 0.20 and 0.83."""
    net, x = bright_sr(), torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        reference = net(x)
    assert ((reference > 0) & (reference < 1)).all()
    out = tiled_forward(ip.PreparedNet(bright_sr(), precision, channels_last), x, 2, tile=16, overlap=8)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    mean, max_ = ip.output_difference(reference, out)
    assert ip.within_tolerance(mean, max_), (mean * 255, max_ * 255)


def test_bf16_support_follows_the_cpu_flags(monkeypatch, tmp_path):
    x86, arm = tmp_path / 'x86', tmp_path / 'arm'
    x86.write_text('processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n')
    arm.write_text('processor\t: 0\nFeatures\t: fp asimd bf16\n')
    assert ip.cpu_flags(str(x86)) == {'fpu', 'avx512f', 'avx512_bf16'}
    assert 'bf16' in ip.cpu_flags(str(arm)) and ip.cpu_flags(str(tmp_path / 'none')) == set()
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX512')
    monkeypatch.setattr(ip, 'cpu_flags', lambda: {'avx512f', 'avx512_bf16'})
    assert ip.bf16_supported('cpu') and ip.unsupported_reason('bf16', 'cpu') is None
    assert ('bf16', True) in ip.supported_paths('cpu')
    monkeypatch.setattr(ip, 'cpu_flags', lambda: {'avx512f', 'avx2'})
    assert not ip.bf16_supported('cpu') and 'avx512_bf16' in ip.unsupported_reason('bf16', 'cpu')
    assert ip.supported_paths('cpu') == [('fp32', False), ('fp32', True)]


def test_fp16_and_unknown_precisions_are_refused_on_cpu():
    assert 'CUDA' in ip.unsupported_reason('fp16', 'cpu')
    assert 'fp32' in ip.unsupported_reason('fp64', 'cpu')
    with pytest.raises(ValueError, match='precision'):
        ip.PreparedNet(tiny_sr(), 'fp64')


def test_auto_keeps_the_fastest_accurate_path_and_leaves_the_net_alone(monkeypatch):
    net, probe = tiny_sr(), torch.rand(1, 3, 24, 24)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    chosen, rows = ip.fastest_path(net, probe)
    assert [r['path'] for r in rows] == ip.supported_paths('cpu')
    assert chosen == min((r for r in rows if r['ok']), key=lambda r: r['seconds'])['path']
    assert all(torch.equal(v, before[k]) and v.is_contiguous() for k, v in net.state_dict().items())
    monkeypatch.setattr(ip, 'TOLERANCE', {'mean': 0.0, 'max': 0.0})  # only the reference itself passes for sure
    chosen, rows = ip.fastest_path(net, probe)
    assert rows[0]['ok'] and chosen[0] == 'fp32'
