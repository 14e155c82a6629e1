"""tta-sr upscale (tta_sr/commands/upscale.py) with tiny models: the input's form (alpha, 16-bit, gray) survives,
tiled output equals untiled output within 1/255 away from the seams, --outscale / --suffix / --ext name and size
the files as Real-ESRGAN's script does, --weights reads a checkpoint (params_ema first), wrong options exit 2."""
import cv2
import numpy as np
import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.image_io import image_format, read_image, write_image
from cli_helpers import status, tiny_model_files
from tta_helpers import photo


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """(arch yaml, weights) of tiny SRVGGNetCompact and RRDBNet models."""
    folder = tmp_path_factory.mktemp('models')
    return {arch: tiny_model_files(folder, arch) for arch in ('SRVGGNetCompact', 'RRDBNet')}


def _upscale(tiny, arch, inputs, out, *extra):
    arch_yaml, _ = tiny[arch]
    return status(['upscale', '-i', inputs, '-o', out, '--arch-yaml', arch_yaml, '--no-progress', *extra])


FORMS = {  # file -> (channels, bit depth) the output must keep
    'rgba8.png': (4, 8), 'rgb16.png': (3, 16), 'gray8.png': (1, 8), 'gray16.png': (1, 16), 'la8.png': (2, 8),
    'gray8.jpg': (1, 8), 'rgb16.tif': (3, 16), 'rgb8.jpg': (3, 8)}


def test_alpha_16bit_and_gray_come_out_in_the_same_form(tiny, tmp_path):
    rgb = photo(0, 20)[:14]  # 14 x 20
    ramp = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (14, 1))[..., None]
    for name, (channels, depth) in FORMS.items():
        img = {1: rgb[..., :1], 2: np.concatenate([rgb[..., :1], ramp], 2), 3: rgb, 4: np.concatenate([rgb, ramp], 2)}
        write_image(tmp_path / 'in' / name, img[channels], bit_depth=depth)
        assert image_format(tmp_path / 'in' / name) == (channels, depth), name
    assert _upscale(tiny, 'SRVGGNetCompact', tmp_path / 'in', tmp_path / 'out') == (0, None)
    for name, form in FORMS.items():
        stem, ext = name.split('.')
        out = tmp_path / 'out' / f'{stem}_out.{ext}'
        assert image_format(out) == form, name
        arr = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert arr.shape[:2] == (56, 80) and arr.dtype == (np.uint16 if form[1] == 16 else np.uint8), name
        if form[1] == 16:
            assert (arr % 257 != 0).any(), name  # real 16-bit values, not 8-bit ones scaled up
        if form[0] in (2, 4):
            _, alpha = read_image(out)
            expected = np.clip(cv2.resize(ramp[..., 0], (80, 56), interpolation=cv2.INTER_CUBIC), 0, 1)
            assert np.abs(alpha - expected).max() <= 1 / 255 + 1e-6, name


def _seam_distance(length, tile, scale):
    """Distance (output pixels) of every output row/column to the nearest boundary between two tile cores."""
    cuts = np.arange(tile, length, tile) * scale
    positions = np.arange(length * scale) + 0.5
    return np.min(np.abs(positions[:, None] - cuts[None, :]), axis=1) if len(cuts) else np.full(length * scale, np.inf)


@pytest.mark.parametrize('arch, margin', [('SRVGGNetCompact', 0), ('RRDBNet', 48)])
def test_tiled_equals_untiled_away_from_the_seams(tiny, tmp_path, arch, margin):
    """Compact net (receptive radius 4 <= overlap // 2): equal everywhere; RRDBNet (radius ~18 LR px > 4): equal
    farther than ``margin`` output pixels from a boundary between tile cores."""
    write_image(tmp_path / 'in' / 'a.png', photo(1, 100)[:90])  # 90 x 100, cores of 32: seams at 32, 64 (, 96)
    assert _upscale(tiny, arch, tmp_path / 'in', tmp_path / 'whole', '--tile', '0') == (0, None)
    assert _upscale(tiny, arch, tmp_path / 'in', tmp_path / 'tiled', '--tile', '32', '--tile-overlap', '8') == (0, None)
    whole, _ = read_image(tmp_path / 'whole' / 'a_out.png')
    tiled, _ = read_image(tmp_path / 'tiled' / 'a_out.png')
    assert whole.shape == tiled.shape == (360, 400, 3)
    assert whole.std() > 0.05 and ((whole > 0) & (whole < 1)).mean() > 0.5  # an image, not a flat or clipped one
    away = (_seam_distance(90, 32, 4)[:, None] > margin) & (_seam_distance(100, 32, 4)[None, :] > margin)
    assert away.sum() > (0.1 if margin else 0.99) * away.size
    assert np.abs(whole - tiled)[away].max() <= 1 / 255 + 1e-6


def test_outscale_suffix_and_ext(tiny, tmp_path):
    write_image(tmp_path / 'in' / 'p.jpg', photo(2, 14)[:10])  # 10 x 14
    write_image(tmp_path / 'in' / 't.png', np.concatenate([photo(3, 14)[:10], np.ones((10, 14, 1))], 2))
    assert _upscale(tiny, 'SRVGGNetCompact', tmp_path / 'in', tmp_path / 'o1', '--outscale', '3.5') == (0, None)
    assert cv2.imread(str(tmp_path / 'o1' / 'p_out.jpg')).shape == (35, 49, 3)  # int(3.5 * size), as Real-ESRGAN
    assert cv2.imread(str(tmp_path / 'o1' / 't_out.png'), cv2.IMREAD_UNCHANGED).shape == (35, 49, 4)
    assert _upscale(tiny, 'SRVGGNetCompact', tmp_path / 'in', tmp_path / 'o2', '--suffix', '', '--ext', 'jpg',
                    '-s', '1') == (0, None)
    assert sorted(p.name for p in (tmp_path / 'o2').iterdir()) == ['p.jpg', 't.png']  # alpha needs PNG
    assert cv2.imread(str(tmp_path / 'o2' / 'p.jpg')).shape == (10, 14, 3)
    code, message = _upscale(tiny, 'SRVGGNetCompact', tmp_path / 'in', tmp_path / 'in', '--suffix', '')
    assert code == 1 and 'would overwrite its input' in message


def test_weights_checkpoint_prefers_params_ema_unless_param_key(tmp_path):
    from tta_sr.weights.resolver import build_arch, manifest_entry
    from tta_sr.utils.tiling import upscale_image
    arch = build_arch(manifest_entry('realesr-animevideov3'))
    torch.manual_seed(0)
    states = {key: {k: v + 0.05 * torch.randn_like(v) for k, v in arch.state_dict().items()}
              for key in ('params', 'params_ema')}
    torch.save(states, tmp_path / 'net_g_latest.pth')
    img = photo(4, 12)
    write_image(tmp_path / 'in' / 'x.png', img)
    for key, extra in (('params_ema', []), ('params', ['--param-key', 'params'])):
        out = tmp_path / key
        assert status(['upscale', '-i', tmp_path / 'in' / 'x.png', '-o', out, '-n', 'realesr-animevideov3',
                       '--weights', tmp_path / 'net_g_latest.pth', '--no-progress', *extra]) == (0, None)
        arch.load_state_dict(states[key])
        expected = upscale_image(arch.eval(), img, 4, tile=0)
        assert np.abs(read_image(out / 'x_out.png')[0] - expected).max() <= 0.5 / 255 + 1e-5, key


@pytest.mark.parametrize('extra, message', [
    (['-n', 'NoSuchModel'], 'NoSuchModel'),
    (['--half', '--device', 'cpu'], '--half needs a CUDA device'),
    (['--tile', '16', '--tile-overlap', '16'], 'overlap < tile'),
    (['--outscale', '0'], '--outscale must be positive'),
    (['-n', 'RealESRGAN_x4plus', '--arch-yaml', 'x.yml'], 'not both'),
    (['--fp32', '--half'], 'not allowed with'),
    (['--precision', 'fp64'], "invalid choice: 'fp64'"),
    (['--precision', 'fp16', '--device', 'cpu'], '--precision fp16 needs a CUDA device'),
    (['--precision', 'bf16', '--fp32'], 'not allowed with'),
    (['--strength', '0.5'], '--strength needs --weights'),
    (['--strength', '1.5', '--weights', 'w.pth'], '--strength must be in [0, 1]'),
])
def test_wrong_options_exit_2_with_the_usage(tmp_path, capsys, extra, message):
    write_image(tmp_path / 'x.png', photo(0, 8))
    assert status(['upscale', '-i', tmp_path / 'x.png', '-o', tmp_path / 'out', *extra]) == (2, None)
    err = capsys.readouterr().err
    assert 'usage: tta-sr upscale' in err and message in err
    assert not (tmp_path / 'out').exists()


def test_precision_auto_reports_its_choice_and_draws_a_bar_per_image(tiny, tmp_path, capsys):
    """``--precision auto`` prints every path it timed and the chosen one; the tile bar is named after the image."""
    write_image(tmp_path / 'in' / 'a.png', photo(5, 40)[:30])  # 30 x 40, tile 16: 2 x 3 tiles
    arch_yaml, _ = tiny['SRVGGNetCompact']
    assert status(['upscale', '-i', tmp_path / 'in', '-o', tmp_path / 'out', '--arch-yaml', arch_yaml,
                   '--tile', '16', '--tile-overlap', '4', '--precision', 'auto']) == (0, None)
    out, err = capsys.readouterr()
    assert '--precision auto: fp32 + channels_last' in err and '--precision auto: fp32   ' in err
    assert 'a.png: 100%' in err and '6/6' in err
    assert ' in fp32' in out or ' in bf16' in out
    assert read_image(tmp_path / 'out' / 'a_out.png')[0].shape == (120, 160, 3)


def test_bf16_on_a_cpu_without_bf16_instructions_exits_2(tmp_path, capsys, monkeypatch):
    from tta_sr.utils import inference_precision
    monkeypatch.setattr(inference_precision, 'cpu_flags', lambda: {'avx2'})
    write_image(tmp_path / 'x.png', photo(0, 8))
    assert status(['upscale', '-i', tmp_path / 'x.png', '-o', tmp_path / 'out', '--precision', 'bf16',
                   '--device', 'cpu']) == (2, None)
    assert '--precision bf16 needs bf16 instructions (avx512_bf16 / amx_bf16)' in capsys.readouterr().err


def test_strength_blends_the_source_and_the_adapted_weights_and_project_matches_the_lr(tiny, tmp_path):
    """--strength A runs theta_0 + A (theta - theta_0) (the source from --arch-yaml); --project makes the output's
    antialiased bicubic downscale close to the LR."""
    from basicsr.archs import build_network
    from tta_helpers import TINY_ARCHS
    from tta_sr.ops.downscalers import downscale
    from tta_sr.utils.tiling import upscale_image
    arch_yaml, source_file = tiny['SRVGGNetCompact']
    source = torch.load(source_file)['params']
    torch.manual_seed(1)
    adapted = {k: v + 0.05 * torch.randn_like(v) for k, v in source.items()}
    torch.save({'params': adapted}, tmp_path / 'adapted.pth')
    img = photo(2, 16)
    write_image(tmp_path / 'in' / 'x.png', img)
    net = build_network(dict(TINY_ARCHS['SRVGGNetCompact'])).eval()
    for strength in (0.0, 0.5, 1.0):
        out = tmp_path / f's{strength}'
        assert _upscale(tiny, 'SRVGGNetCompact', tmp_path / 'in' / 'x.png', out, '--weights', tmp_path / 'adapted.pth',
                        '--strength', str(strength), '--fp32') == (0, None)
        net.load_state_dict({k: source[k] + strength * (adapted[k] - source[k]) for k in source})
        expected = upscale_image(net, img, 4, tile=0)
        assert np.abs(read_image(out / 'x_out.png')[0] - expected).max() <= 0.5 / 255 + 1e-5, strength
    dark = {k: v.clone() for k, v in source.items()}  # the nearest upscale, 0.1 too dark: far from the LR
    last = [k for k in dark if k.startswith('body.') and k.endswith('.weight')][-1]
    dark[last].zero_()
    dark[last.replace('weight', 'bias')].fill_(-0.1)
    torch.save({'params': dark}, tmp_path / 'dark.pth')
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]

    def lr_error(folder):
        sr = torch.from_numpy(read_image(folder / 'x_out.png')[0].transpose(2, 0, 1).copy())[None]
        return float((downscale(sr, 4, 'bicubic_aa') - x).abs().mean())
    for name, extra in (('plain', []), ('projected', ['--project', '10'])):
        assert _upscale(tiny, 'SRVGGNetCompact', tmp_path / 'in' / 'x.png', tmp_path / name, '--weights',
                        tmp_path / 'dark.pth', '--fp32', *extra) == (0, None)
    assert lr_error(tmp_path / 'plain') > 0.05 and lr_error(tmp_path / 'projected') < 0.01
