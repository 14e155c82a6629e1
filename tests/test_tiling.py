"""tta_sr.utils.tiling: tiled inference equals untiled inference and keeps memory bounded."""
import json
import os
import subprocess
import sys
import textwrap

import tta_sr  # noqa: F401
import numpy as np
import pytest
import torch
from torch import nn

from tta_sr.utils.tiling import tiled_forward, upscale_image


def tiny_sr(scale=2, feat=8, seed=0):
    """Three 3x3 convs + pixel shuffle: receptive-field radius 3 LR pixels."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, feat, 3, padding=1), nn.ReLU(), nn.Conv2d(feat, feat, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(feat, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)).eval()


def test_single_tile_equals_untiled():
    net, x = tiny_sr(), torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        ref = net(x)
    for tile in (0, 64):
        assert torch.allclose(tiled_forward(net, x, 2, tile=tile, overlap=16), ref, atol=1e-4)


@pytest.mark.parametrize('tile,overlap', [(32, 8), (40, 16), (33, 7), (64, 6)])
def test_tiled_with_overlap_equals_untiled(tile, overlap):
    # radius 3 <= overlap // 2 for all cases; 101 x 137 gives short last tiles in both axes
    net, x = tiny_sr(), torch.rand(1, 3, 101, 137)
    with torch.no_grad():
        ref = net(x)
    out = tiled_forward(net, x, 2, tile=tile, overlap=overlap)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-4


def test_blending_hides_seams_for_wide_context():
    # a network with global context (adds the image mean): tiles disagree, ramps keep the result close
    class GlobalNet(nn.Module):
        def forward(self, x):
            return nn.functional.interpolate(x, scale_factor=2, mode='nearest') + x.mean()

    x = torch.rand(1, 3, 64, 64)
    out = tiled_forward(GlobalNet(), x, 2, tile=24, overlap=8)
    ref = GlobalNet()(x)
    assert (out - ref).abs().max().item() < 0.1


@pytest.mark.parametrize('tile, total', [(32, 4 * 5), (0, 1), (200, 1)])
def test_progress_is_called_once_per_tile(tile, total):
    calls = []
    tiled_forward(tiny_sr(), torch.rand(1, 3, 101, 137), 2, tile=tile, overlap=8,
                  progress=lambda done, n: calls.append((done, n)))
    assert calls == [(done, total) for done in range(total + 1)]  # (0, total) first, then one call per tile


def test_bad_arguments_are_explained():
    net, x = tiny_sr(), torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match='overlap'):
        tiled_forward(net, x, 2, tile=16, overlap=16)
    with pytest.raises(ValueError, match='expected spatial size x4'):
        tiled_forward(net, x, 4, tile=16, overlap=4)


def test_upscale_image_rgb_and_alpha():
    net = tiny_sr()
    rgb = np.random.default_rng(0).random((30, 50, 3), dtype=np.float32)
    out = upscale_image(net, rgb, 2, tile=16, overlap=8)
    assert out.shape == (60, 100, 3) and out.dtype == np.float32
    alpha = np.zeros((30, 50, 1), np.float32)
    alpha[:, 25:] = 1
    rgba = upscale_image(net, np.concatenate([rgb, alpha], axis=2), 2, tile=16, overlap=8)
    assert rgba.shape == (60, 100, 4)
    assert np.allclose(rgba[..., :3], out, atol=1e-6)  # colour does not depend on alpha
    assert rgba[:, :45, 3].max() < 0.05 and rgba[:, 55:, 3].min() > 0.95
    calls = []
    upscale_image(net, rgb, 2, tile=16, overlap=8, progress=lambda done, n: calls.append(done))
    assert calls == list(range(2 * 4 + 1))


MEMORY_SCRIPT = textwrap.dedent('''
    import json, sys
    import tta_sr  # noqa
    import torch
    from torch import nn
    from tta_sr.utils.tiling import tiled_forward
    torch.set_num_threads(1)

    def status(key):
        for line in open('/proc/self/status'):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 12, 3, padding=1), nn.PixelShuffle(2)).eval()
    x = torch.rand(1, 3, 2048, 2048)
    tiled_forward(net, x[:, :, :64, :64], 2, tile=32, overlap=8)  # warm up allocator and kernels
    open('/proc/self/clear_refs', 'w').write('5')  # reset the peak (VmHWM) to the current RSS
    base = status('VmRSS:')
    out = tiled_forward(net, x, 2, tile=256, overlap=16)
    print(json.dumps({'peak_delta': status('VmHWM:') - base, 'out_bytes': out.numel() * 4}))
''')


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc/self/status')
def test_tiled_memory_is_bounded_by_output_plus_tile():
    """2048 x 2048 LR, x2, 16 features: untiled activations alone would be ~1 GiB (16 + 12 channels at
    2048^2 plus the output; measured 768 MiB); the tiled run may use the 192 MiB output plus at most
    64 MiB (measured: +36 MiB)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': repo + os.pathsep + os.environ.get('PYTHONPATH', '')}
    res = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    bound = stats['out_bytes'] + 64 * 2**20
    assert stats['out_bytes'] == 3 * 4096 * 4096 * 4
    assert stats['peak_delta'] < bound, stats
