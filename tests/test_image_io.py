"""Tests for tta_sr/utils/image_io.py: every bad or unusual input gets its documented outcome."""
import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.image_io import (ImageReadError, apply_exif_orientation, image_format, pad_to_min_size,
                                   read_image, scan_images, write_image)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def basicsr_warnings():
    """Collect the warnings logged on BasicSR's root logger (it does not propagate, so caplog misses them)."""
    from basicsr.utils import get_root_logger
    logger = get_root_logger()
    records = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = _Collect(level=logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _save_rgb8(path, rng, h=12, w=20):
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _truncate(path, fraction=0.5):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])


# ---------------------------------------------------------------- read_image: good inputs

def test_rgb8_png_exact(tmp_path, rng):
    p = tmp_path / 'rgb.png'
    arr = _save_rgb8(p, rng)
    rgb, alpha = read_image(p)
    assert rgb.dtype == np.float32 and rgb.shape == (12, 20, 3)
    assert alpha is None
    np.testing.assert_array_equal(rgb, arr.astype(np.float32) / 255)  # RGB order, not BGR


def test_grayscale_replicated_to_three_channels(tmp_path, rng):
    p = tmp_path / 'gray.png'
    gray = rng.integers(0, 256, (10, 14), dtype=np.uint8)
    Image.fromarray(gray, mode='L').save(p)
    rgb, alpha = read_image(p)
    assert rgb.shape == (10, 14, 3) and alpha is None
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray / np.float32(255))


def test_rgba_alpha_split_off(tmp_path, rng):
    p = tmp_path / 'rgba.png'
    arr = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    Image.fromarray(arr, mode='RGBA').save(p)
    rgb, alpha = read_image(p)
    assert rgb.shape == (9, 11, 3) and alpha.shape == (9, 11) and alpha.dtype == np.float32
    np.testing.assert_array_equal(rgb, arr[..., :3] / np.float32(255))
    np.testing.assert_array_equal(alpha, arr[..., 3] / np.float32(255))


def test_16bit_colour_png_full_precision(tmp_path, rng):
    p = tmp_path / 'c16.png'
    arr = rng.integers(0, 65536, (8, 13, 3), dtype=np.uint16)
    assert cv2.imwrite(str(p), arr[..., ::-1])  # OpenCV writes BGR
    rgb, alpha = read_image(p)
    assert alpha is None and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb * 65535, arr, atol=1e-2)  # not reduced to 8 bits
    assert np.unique(np.round(rgb * 65535) % 257).size > 1


def test_16bit_rgba_png(tmp_path, rng):
    p = tmp_path / 'c16a.png'
    arr = rng.integers(0, 65536, (6, 7, 4), dtype=np.uint16)
    assert cv2.imwrite(str(p), arr[..., [2, 1, 0, 3]])
    rgb, alpha = read_image(p)
    np.testing.assert_allclose(rgb * 65535, arr[..., :3], atol=1e-2)
    np.testing.assert_allclose(alpha * 65535, arr[..., 3], atol=1e-2)


def test_16bit_grayscale_png(tmp_path, rng):
    p = tmp_path / 'g16.png'
    gray = rng.integers(0, 65536, (8, 5), dtype=np.uint16)
    assert cv2.imwrite(str(p), gray)
    rgb, alpha = read_image(p)
    assert rgb.shape == (8, 5, 3) and alpha is None
    for c in range(3):
        np.testing.assert_allclose(rgb[..., c] * 65535, gray, atol=1e-2)


def test_palette_png_converted(tmp_path, rng):
    p = tmp_path / 'pal.png'
    src = Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).convert('P', palette=Image.ADAPTIVE)
    src.save(p)
    assert Image.open(p).mode == 'P'
    rgb, alpha = read_image(p)
    assert rgb.shape == (10, 10, 3) and alpha is None
    np.testing.assert_array_equal(rgb, np.asarray(src.convert('RGB')) / np.float32(255))


def test_palette_png_with_transparency_gives_alpha(tmp_path, rng):
    p = tmp_path / 'pal_t.png'
    src = Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).convert('P', palette=Image.ADAPTIVE)
    index = np.asarray(src)[0, 0]
    src.save(p, transparency=int(index))
    rgb, alpha = read_image(p)
    assert alpha is not None and alpha[0, 0] == 0.0 and alpha.max() == 1.0


def test_exif_rotated_jpeg_applied(tmp_path):
    # 16 high x 32 wide; left half red, right half blue; EXIF 6 = rotate 90 clockwise for display
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :16, 0] = 255
    arr[:, 16:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / 'rot.jpg'
    Image.fromarray(arr).save(p, exif=exif, quality=95)
    rgb, alpha = read_image(p)
    assert rgb.shape == (32, 16, 3) and alpha is None
    assert rgb[:12, :, 0].mean() > 0.9 and rgb[:12, :, 2].mean() < 0.1  # left (red) is now on top
    assert rgb[20:, :, 2].mean() > 0.9 and rgb[20:, :, 0].mean() < 0.1
    # OpenCV's IMREAD_COLOR applies the same orientation for JPEG; IMREAD_UNCHANGED does not
    assert cv2.imread(str(p), cv2.IMREAD_COLOR).shape == (32, 16, 3)
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape == (16, 32, 3)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path, rng, orientation):
    arr = rng.integers(0, 256, (5, 8, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f'o{orientation}.png'
    Image.fromarray(arr).save(p, exif=exif)
    rgb, _ = read_image(p)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert('RGB')) / np.float32(255)
    np.testing.assert_array_equal(rgb, expected)
    np.testing.assert_array_equal(apply_exif_orientation(arr, orientation),
                                  np.asarray(ImageOps.exif_transpose(Image.open(p)).convert('RGB')))


# ---------------------------------------------------------------- read_image: bad inputs

def test_missing_file_raises_naming_it(tmp_path):
    p = tmp_path / 'nope.png'
    with pytest.raises(ImageReadError, match='nope.png') as info:
        read_image(p)
    assert info.value.path == str(p) and 'not found' in info.value.reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize('suffix', ['.png', '.jpg'])
def test_truncated_image_raises_not_partial(tmp_path, rng, suffix):
    p = tmp_path / f'trunc{suffix}'
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    read_image(p)  # the complete file is fine
    _truncate(p)
    with pytest.raises(ImageReadError, match=f'trunc\\{suffix}') as info:
        read_image(p)
    assert 'truncated' in info.value.reason


def test_truncated_image_raises_even_if_pillow_global_allows_it(tmp_path, rng, monkeypatch):
    from PIL import ImageFile
    p = tmp_path / 'trunc.jpg'
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    _truncate(p)
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    with pytest.raises(ImageReadError):
        read_image(p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_text_file_named_png_raises(tmp_path):
    p = tmp_path / 'notes.png'
    p.write_text('this is not an image\n')
    with pytest.raises(ImageReadError, match='notes.png') as info:
        read_image(p)
    assert 'not a recognised image' in info.value.reason


def test_empty_file_and_directory_raise(tmp_path):
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageReadError, match='empty'):
        read_image(tmp_path / 'empty.png')
    (tmp_path / 'dir.png').mkdir()
    with pytest.raises(ImageReadError, match='not a regular file'):
        read_image(tmp_path / 'dir.png')


def test_error_pickles(tmp_path):
    import pickle
    err = pickle.loads(pickle.dumps(ImageReadError('/x/a.png', 'file not found')))
    assert err.path == '/x/a.png' and err.reason == 'file not found' and 'a.png' in str(err)


# ---------------------------------------------------------------- write_image

def test_16bit_write_read_round_trip_exact(tmp_path, rng):
    arr = rng.integers(0, 65536, (9, 10, 3), dtype=np.uint16)
    img = arr.astype(np.float64) / 65535
    p = tmp_path / 'deep' / 'nested' / 'out16.png'
    write_image(p, img, bit_depth=16)
    rgb, alpha = read_image(p)
    assert alpha is None
    assert np.abs(rgb.astype(np.float64) - img).max() <= 1 / 65535 / 2
    np.testing.assert_array_equal(np.round(rgb.astype(np.float64) * 65535).astype(np.uint16), arr)


def test_8bit_rgba_round_trip_and_no_temp_left(tmp_path, rng):
    arr = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    p = tmp_path / 'out' / 'a.png'
    write_image(p, arr / 255.0)
    rgb, alpha = read_image(p)
    np.testing.assert_array_equal(np.round(rgb * 255), arr[..., :3])
    np.testing.assert_array_equal(np.round(alpha * 255), arr[..., 3])
    assert os.listdir(p.parent) == ['a.png']


def test_write_replaces_atomically_and_keeps_old_file_on_failure(tmp_path, rng, monkeypatch):
    p = tmp_path / 'keep.png'
    write_image(p, np.zeros((4, 4, 3)))
    old = p.read_bytes()

    def broken_replace(src, dst):
        raise OSError('simulated crash before rename')

    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError, match='simulated'):
        write_image(p, np.ones((4, 4, 3)))
    assert p.read_bytes() == old
    assert os.listdir(tmp_path) == ['keep.png']


@pytest.mark.parametrize('img, kwargs, match', [
    (np.zeros((4, 4)), {}, 'shape'),
    (np.zeros((4, 4, 3)), {'bit_depth': 12}, 'bit_depth'),
    (np.full((4, 4, 3), np.nan), {}, 'NaN'),
])
def test_write_rejects_bad_input(tmp_path, img, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_image(tmp_path / 'x.png', img, **kwargs)


def test_write_rejects_16bit_jpeg_and_alpha_jpeg(tmp_path):
    with pytest.raises(ValueError, match='16-bit'):
        write_image(tmp_path / 'x.jpg', np.zeros((4, 4, 3)), bit_depth=16)
    with pytest.raises(ValueError, match='alpha'):
        write_image(tmp_path / 'x.jpg', np.zeros((4, 4, 4)))


@pytest.mark.parametrize('channels, bit_depth, suffix', [
    (1, 8, '.png'), (1, 16, '.png'), (2, 8, '.png'), (3, 8, '.jpg'), (3, 16, '.tif'), (4, 16, '.png'), (1, 8, '.jpg')])
def test_gray_and_gray_alpha_written_and_recognised(tmp_path, rng, channels, bit_depth, suffix):
    """write_image keeps 1 (gray) and 2 (gray + alpha) channels; image_format reads the form back from the header."""
    peak = 65535 if bit_depth == 16 else 255
    img = rng.integers(0, peak + 1, (7, 9, channels)) / peak
    path = write_image(tmp_path / f'x{suffix}', img, bit_depth=bit_depth)
    assert image_format(path) == (channels, bit_depth)
    rgb, alpha = read_image(path)
    if suffix != '.jpg':
        np.testing.assert_allclose(rgb[..., 0], img[..., 0], atol=0.5 / peak)
        if channels in (1, 2):
            assert (rgb == rgb[..., :1]).all()  # gray comes back replicated to 3 channels
        if channels in (2, 4):
            np.testing.assert_allclose(alpha, img[..., -1], atol=0.5 / peak)


def test_image_format_of_palette_and_unreadable_files(tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).quantize(8).save(tmp_path / 'p.png')
    assert image_format(tmp_path / 'p.png') == (3, 8)
    (tmp_path / 't.png').write_text('not an image')
    with pytest.raises(ImageReadError, match='t.png'):
        image_format(tmp_path / 't.png')


def test_gray_alpha_only_as_8bit_png(tmp_path):
    with pytest.raises(ValueError, match='gray \\+ alpha'):
        write_image(tmp_path / 'x.png', np.zeros((4, 4, 2)), bit_depth=16)
    with pytest.raises(ValueError, match='alpha'):
        write_image(tmp_path / 'x.jpg', np.zeros((4, 4, 2)))


def test_write_quantises_in_bands_like_the_whole_image(tmp_path, rng):
    """Banded quantisation (bounded memory) gives the bytes of the one-shot formula, NaN in a late band raises."""
    img = rng.random((600, 5, 3))
    img[0, 0] = [0.5 / 255, 1.5 / 255, 2.0]  # halfway values and a value to clip
    write_image(tmp_path / 'x.png', img)
    expected = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)[..., ::-1]
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'x.png'), cv2.IMREAD_UNCHANGED), expected)
    img[550, 2, 1] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        write_image(tmp_path / 'y.png', img)
    assert not (tmp_path / 'y.png').exists()


# ---------------------------------------------------------------- scan_images

def _mixed_folder(folder, rng):
    folder.mkdir()
    _save_rgb8(folder / 'a.png', rng)
    _save_rgb8(folder / 'b.jpg', rng)
    _save_rgb8(folder / 'c_trunc.png', rng, 64, 64)
    _truncate(folder / 'c_trunc.png')
    (folder / 'd_text.png').write_text('not an image')
    (folder / 'README.txt').write_text('ignored: not an image suffix')
    (folder / '.hidden.png').write_text('ignored: hidden')
    return folder


def test_scan_images_warns_and_skips_bad_files(tmp_path, rng, basicsr_warnings):
    folder = _mixed_folder(tmp_path / 'imgs', rng)
    paths = scan_images(folder)
    assert [os.path.basename(p) for p in paths] == ['a.png', 'b.jpg']
    assert len(basicsr_warnings) == 2
    assert any('c_trunc.png' in m for m in basicsr_warnings)
    assert any('d_text.png' in m for m in basicsr_warnings)


def test_scan_images_raise_mode(tmp_path, rng):
    folder = _mixed_folder(tmp_path / 'imgs', rng)
    with pytest.raises(ImageReadError, match='c_trunc.png'):
        scan_images(folder, on_error='raise')


def test_scan_images_empty_or_all_bad_or_missing(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ImageReadError, match='no readable image'):
        scan_images(tmp_path / 'empty')
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'x.png').write_text('nope')
    with pytest.raises(ImageReadError, match='1 bad image file'):
        scan_images(tmp_path / 'bad')
    with pytest.raises(FileNotFoundError, match='missing'):
        scan_images(tmp_path / 'missing')
    with pytest.raises(ValueError, match='on_error'):
        scan_images(tmp_path / 'empty', on_error='ignore')


def test_scan_images_recursive(tmp_path, rng):
    (tmp_path / 'sub').mkdir()
    _save_rgb8(tmp_path / 'top.png', rng)
    _save_rgb8(tmp_path / 'sub' / 'deep.png', rng)
    assert [os.path.basename(p) for p in scan_images(tmp_path)] == ['top.png']
    assert sorted(os.path.basename(p) for p in scan_images(tmp_path, recursive=True)) == ['deep.png', 'top.png']


# ---------------------------------------------------------------- pad_to_min_size

def test_image_smaller_than_crop_is_reflect_padded(tmp_path, rng):
    p = tmp_path / 'small.png'
    _save_rgb8(p, rng, h=20, w=30)
    rgb, _ = read_image(p)
    out = pad_to_min_size(rgb, 32, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:20, :30], rgb)                  # content stays top-left
    np.testing.assert_array_equal(out[20:32, :30], rgb[18:6:-1])       # reflect without repeating row 19
    np.testing.assert_array_equal(out[:20, 30:32], rgb[:, 28:26:-1])
    np.testing.assert_array_equal(out, cv2.copyMakeBorder(rgb, 0, 12, 0, 2, cv2.BORDER_REFLECT_101))


def test_too_small_for_reflect_falls_back_to_edge():
    img = np.arange(2 * 3, dtype=np.float32).reshape(2, 3)
    out = pad_to_min_size(img, 5, 4)  # pad 3 rows >= 2 rows -> edge; pad 1 col < 3 cols -> reflect
    assert out.shape == (5, 4)
    np.testing.assert_array_equal(out[2:, :3], np.repeat(img[1:2], 3, axis=0))
    np.testing.assert_array_equal(out[:2, 3], img[:, 1])
    one = pad_to_min_size(np.ones((1, 1, 3), np.float32) * 0.5, 4, 4)
    assert one.shape == (4, 4, 3) and np.all(one == 0.5)


def test_pad_modes_and_no_op():
    img = np.ones((8, 8, 3), np.float32)
    assert pad_to_min_size(img, 8, 4) is img
    const = pad_to_min_size(img, 10, 8, mode='constant')
    assert const.shape == (10, 8, 3) and np.all(const[8:] == 0)
    edge = pad_to_min_size(np.arange(4.0).reshape(2, 2), 2, 5, mode='edge')
    np.testing.assert_array_equal(edge[:, 2:], [[1, 1, 1], [3, 3, 3]])
    with pytest.raises(ValueError, match='mode'):
        pad_to_min_size(img, 10, 10, mode='wrap')


def test_scan_images_does_not_initialise_basicsr_logger(tmp_path, rng, monkeypatch):
    # BasicSR's first get_root_logger call attaches the run's log file; a dataset warning must not take it
    import basicsr.utils.logger as logger_module
    monkeypatch.setattr(logger_module, 'initialized_logger', {})
    folder = _mixed_folder(tmp_path / 'imgs', rng)
    assert len(scan_images(folder)) == 2
    assert 'basicsr' not in logger_module.initialized_logger
