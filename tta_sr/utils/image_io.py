"""Robust image reading and writing for datasets, adaptation inputs and result folders.

Reading (``read_image``) always returns ``(rgb, alpha)``:

- ``rgb``: ``np.float32`` array ``(H, W, 3)`` in ``[0, 1]``, **RGB** channel order;
- ``alpha``: ``np.float32`` array ``(H, W)`` in ``[0, 1]``, or ``None`` when the file has no
  transparency.

Per input:

=========================  ==================================================================
missing file               ``ImageReadError`` (``reason``: ``file not found``)
not an image / text file   ``ImageReadError`` (``reason``: Pillow's identification error)
truncated PNG / JPEG       ``ImageReadError`` (never a partially decoded image)
grayscale (8/16-bit)       replicated to 3 channels
RGBA, LA, tRNS             colour to ``rgb``, transparency to ``alpha``
palette (P / PA)           converted through RGB(A); a transparent palette gives ``alpha``
16-bit PNG / TIFF          decoded at full precision and divided by 65535
EXIF orientation           applied (the array is what a viewer shows)
=========================  ==================================================================

The file is read once into memory; Pillow decodes it completely with
``ImageFile.LOAD_TRUNCATED_IMAGES`` off (so a short file raises). Pillow reduces 16-bit colour PNGs
(and TIFFs) to 8 bits, so those (already validated by Pillow) are decoded again from the same bytes by OpenCV with
``IMREAD_UNCHANGED``. EXIF orientation is applied by our own ``apply_exif_orientation`` on both paths
(OpenCV's ``IMREAD_COLOR`` applies it for JPEG, ``IMREAD_UNCHANGED`` does not, so we never rely on it).

Writing (``write_image``) encodes with OpenCV (gray + alpha with Pillow) and writes atomically
(temporary file in the same folder, then ``os.replace``), creating parent folders. ``image_format``
tells how a file stores its pixels (channels, bit depth), so that an output can keep the input's form.
"""
import io
import os
import threading

import cv2
import numpy as np
import torch
from PIL import Image, ImageFile

from tta_sr.utils.atomic import atomic_write_bytes
from tta_sr.utils.errors import UserInputError
from tta_sr.utils.log import basicsr_logger

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')

_EXIF_ORIENTATION_TAG = 0x0112
_PIL_LOCK = threading.Lock()  # guards the temporary reset of Pillow's global LOAD_TRUNCATED_IMAGES


class ImageReadError(UserInputError, ValueError):
    """An image file that cannot be used: missing, not an image, truncated or of an unsupported kind.

    Attributes ``path`` and ``reason``; ``str(err)`` names both and says what to do.
    """

    def __init__(self, path, reason):
        super().__init__(os.fspath(path), reason)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self):
        if os.path.isdir(self.path):  # scan_images: a folder without any readable image
            return (f'no usable image in the folder {self.path!r}: {self.reason}; '
                    'put complete PNG, JPEG, BMP, TIFF or WebP images in it or fix the path')
        return (f'cannot read image {self.path!r}: {self.reason}; '
                'replace or remove the file (expected a complete PNG, JPEG, BMP, TIFF or WebP image)')


def apply_exif_orientation(arr, orientation):
    """Return ``arr`` ``(H, W[, C])`` as displayed for EXIF ``orientation`` 1..8 (others: unchanged).

    1 normal, 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose,
    6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
    """
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, k=-1)
    elif orientation == 7:
        arr = np.swapaxes(arr[::-1, ::-1], 0, 1)  # transverse: mirror across the anti-diagonal
    elif orientation == 8:
        arr = np.rot90(arr, k=1)
    return np.ascontiguousarray(arr)


def _png_bit_depth(data):
    """Bit depth from a PNG's IHDR chunk (byte 24), or ``None`` when ``data`` is not a PNG."""
    if len(data) > 24 and data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR':
        return data[24]
    return None


def _sixteen_bit(img, data):
    """True for 16-bit samples: a PNG's IHDR bit depth or a TIFF's BitsPerSample (``img``: the opened Pillow image)."""
    bits = getattr(img, 'tag_v2', {}).get(258, (8,))  # TIFF BitsPerSample
    return _png_bit_depth(data) == 16 or (max(bits) if isinstance(bits, tuple) else bits) == 16


def _open_and_load(data):
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _decode_with_pillow(path, data):
    """Fully decode ``data`` with Pillow; return ``(PIL.Image, exif_orientation)``."""
    try:
        if not ImageFile.LOAD_TRUNCATED_IMAGES:  # the normal case: no lock, decoding threads run in parallel
            img = _open_and_load(data)
        else:  # someone enabled partial decoding globally: switch it off for this decode only
            with _PIL_LOCK:
                previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
                try:
                    img = _open_and_load(data)
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = previous
    except Image.DecompressionBombError as err:
        raise ImageReadError(path, f'image too large ({err})') from err
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as err:
        # UnidentifiedImageError is an OSError; truncation is 'image file is truncated' (OSError)
        reason = 'not a recognised image file' if isinstance(err, Image.UnidentifiedImageError) else \
            f'corrupt or truncated image data ({type(err).__name__}: {err})'
        raise ImageReadError(path, reason) from err
    try:
        orientation = int(img.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a malformed EXIF block must not make a good image unreadable
        orientation = 1
    return img, orientation


def _pillow_to_arrays(path, img):
    """Pillow image -> (rgb float32 (H,W,3), alpha float32 (H,W) or None), before orientation."""
    mode = img.mode
    if mode.startswith('I;16') or mode == 'I':
        arr = np.asarray(img).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageReadError(path, f'32-bit integer image (mode {mode}) outside the 16-bit range')
        gray = (arr / 65535.0).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == 'F':
        arr = np.asarray(img, dtype=np.float32)
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
            raise ImageReadError(path, 'floating-point image (mode F) with values outside [0, 1]')
        return np.repeat(arr[..., None], 3, axis=2), None
    has_alpha = mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or 'transparency' in img.info
    if has_alpha:
        rgba = np.asarray(img.convert('RGBA'), dtype=np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3]
    return np.asarray(img.convert('RGB'), dtype=np.float32) / 255.0, None


def _cv2_to_arrays(path, data):
    """Decode ``data`` with OpenCV at full bit depth -> (rgb, alpha or None), before orientation."""
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(path, 'OpenCV could not decode the 16-bit data')
    scale = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2), None
    channels = arr.shape[2]
    if channels == 1:
        return np.repeat(arr, 3, axis=2), None
    if channels == 2:  # gray + alpha
        return np.repeat(arr[..., :1], 3, axis=2), np.ascontiguousarray(arr[..., 1])
    if channels == 3:
        return np.ascontiguousarray(arr[..., ::-1]), None
    if channels == 4:
        return np.ascontiguousarray(arr[..., 2::-1]), np.ascontiguousarray(arr[..., 3])
    raise ImageReadError(path, f'unsupported number of channels ({channels})')


def read_image(path):
    """Read an image file as ``(rgb, alpha)``.

    Args:
        path (str | os.PathLike): image file.

    Returns:
        rgb (np.ndarray): float32 ``(H, W, 3)`` in ``[0, 1]``, RGB order, EXIF orientation applied.
        alpha (np.ndarray | None): float32 ``(H, W)`` in ``[0, 1]``, or ``None`` without transparency.

    Raises:
        ImageReadError: missing file, not an image, truncated/corrupt data or an unsupported kind.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageReadError(path, 'file not found' if not os.path.exists(path) else 'not a regular file')
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise ImageReadError(path, f'cannot open the file ({err})') from err
    if not data:
        raise ImageReadError(path, 'empty file (0 bytes)')

    img, orientation = _decode_with_pillow(path, data)
    if _sixteen_bit(img, data) and img.mode not in ('I;16', 'I;16B', 'I;16L', 'I'):
        rgb, alpha = _cv2_to_arrays(path, data)  # Pillow reduced 16-bit colour to 8 bits
    else:
        rgb, alpha = _pillow_to_arrays(path, img)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageReadError(path, f'image has no pixels (size {rgb.shape[1]}x{rgb.shape[0]})')
    rgb = apply_exif_orientation(rgb, orientation)
    if alpha is not None:
        alpha = apply_exif_orientation(alpha, orientation)
    return rgb, alpha


def write_image(path, img, bit_depth=8):
    """Write ``img`` to ``path`` atomically, creating parent folders; the format comes from the suffix.

    Args:
        path (str | os.PathLike): target file (``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.tif``/``.tiff``, ``.webp``).
        img (np.ndarray): float ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA in ``[0, 1]``, or ``(H, W, 1)`` gray,
            or ``(H, W, 2)`` gray + alpha (8-bit PNG only) (values are clipped to ``[0, 1]`` and rounded;
            NaN/inf raise ``ValueError``).
        bit_depth (int): 8 or 16 (16 only for PNG and TIFF).

    Returns:
        str: ``path``.
    """
    path = os.fspath(path)
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f'write_image({path!r}): expected a (H, W, C) array with C = 3 (RGB), 4 (RGBA), 1 (gray) '
                         f'or 2 (gray + alpha), got shape {img.shape}')
    if bit_depth not in (8, 16):
        raise ValueError(f'write_image({path!r}): bit_depth must be 8 or 16, got {bit_depth!r}')
    ext = os.path.splitext(path)[1].lower()
    if ext not in ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'):
        raise ValueError(f'write_image({path!r}): unsupported suffix {ext!r}; use .png, .jpg, .bmp, .tif or .webp')
    if bit_depth == 16 and ext not in ('.png', '.tif', '.tiff'):
        raise ValueError(f'write_image({path!r}): 16-bit output needs .png or .tif, not {ext!r}')
    if img.shape[2] in (2, 4) and ext in ('.jpg', '.jpeg', '.bmp'):
        raise ValueError(f'write_image({path!r}): {ext} cannot store alpha; drop the alpha channel or use .png')
    if img.shape[2] == 2 and (ext != '.png' or bit_depth != 8):
        raise ValueError(f'write_image({path!r}): gray + alpha is written as 8-bit PNG only; write RGBA instead')
    channels = img.shape[2]
    order = {3: [2, 1, 0], 4: [2, 1, 0, 3]}.get(channels, list(range(channels)))  # RGB(A) -> BGR(A) for OpenCV
    q = _quantize(path, img, 65535 if bit_depth == 16 else 255, np.uint16 if bit_depth == 16 else np.uint8, order)
    if channels == 2:  # OpenCV encodes 1, 3 or 4 channels only
        buf = io.BytesIO()
        Image.fromarray(q, 'LA').save(buf, format='PNG')
        return atomic_write_bytes(path, buf.getvalue())
    ok, buf = cv2.imencode(ext, q)
    if not ok:
        raise OSError(f'write_image({path!r}): OpenCV failed to encode the image as {ext}')
    return atomic_write_bytes(path, buf.reshape(-1))


def _quantize(path, img, peak, dtype, order, rows=256):
    """``round(clip(img, 0, 1) * peak)`` as ``dtype`` with the channels in ``order``, computed in float64 a band of
    ``rows`` rows at a time, so that a large image needs one extra ``dtype`` copy only; NaN/inf raise."""
    q = np.empty(img.shape, dtype)
    for top in range(0, img.shape[0], rows):
        band = img[top:top + rows][..., order].astype(np.float64)
        if not np.isfinite(band).all():
            raise ValueError(f'write_image({path!r}): the image contains NaN or inf values')
        q[top:top + rows] = np.round(np.clip(band, 0.0, 1.0) * peak)
    return q


_GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'F')  # and every 'I;16*' mode


def image_format(path):
    """How the file at ``path`` stores its pixels, from its header (nothing is decoded).

    Returns:
        (channels, bit_depth): ``channels`` 1 gray, 2 gray + alpha, 3 colour, 4 colour + alpha (a palette or
        ``tRNS`` transparency counts as alpha); ``bit_depth`` 16 for 16-bit PNG / TIFF samples (and 32-bit
        integer or float gray), else 8.

    Raises:
        ImageReadError: the file cannot be opened as an image.
    """
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            head = f.read(32)
        with Image.open(path) as img:
            mode, info, deep = img.mode, img.info, _sixteen_bit(img, head)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(path, f'not a recognised image file ({err})') from err
    gray = mode in _GRAY_MODES or mode.startswith('I;16')
    alpha = mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or 'transparency' in info
    deep = deep or mode.startswith('I;16') or mode in ('I', 'F')
    return (1 if gray else 3) + (1 if alpha else 0), 16 if deep else 8


def list_image_files(folder, recursive=False, extensions=IMAGE_EXTENSIONS):
    """Sorted paths of the files in ``folder`` with an image suffix (case-insensitive), hidden ones skipped.

    Nothing is decoded (``scan_images`` does). Raises ``FileNotFoundError`` when ``folder`` is not a directory.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'image folder {folder!r} not found; check the dataroot/path option')
    extensions = tuple(e.lower() for e in extensions)
    candidates = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in files:
            if not name.startswith('.') and name.lower().endswith(extensions):
                candidates.append(os.path.join(root, name))
        if not recursive:
            break
    return sorted(candidates)


def scan_images(folder, on_error='warn', recursive=False, extensions=IMAGE_EXTENSIONS):
    """Return the sorted paths of the readable images in ``folder`` (each checked by a full decode).

    Files whose suffix is not in ``extensions`` and hidden files (``.name``) are ignored. A file with an
    image suffix that ``read_image`` rejects is a bad file:

    - ``on_error='warn'``: skipped, and named in a warning on BasicSR's root logger;
    - ``on_error='raise'``: ``ImageReadError`` for the first bad file.

    Raises:
        FileNotFoundError: ``folder`` does not exist or is not a directory.
        ImageReadError: no readable image is left (the error names the folder and the bad-file count).
    """
    if on_error not in ('warn', 'raise'):
        raise ValueError(f"scan_images: on_error must be 'warn' or 'raise', got {on_error!r}")
    folder = os.fspath(folder)
    extensions = tuple(e.lower() for e in extensions)
    good, bad = [], []
    for path in list_image_files(folder, recursive, extensions):
        try:
            read_image(path)
        except ImageReadError as err:
            if on_error == 'raise':
                raise
            bad.append(path)
            basicsr_logger().warning(f'Skipping bad image file: {err}')
            continue
        good.append(path)
    if not good:
        detail = f'{len(bad)} bad image file(s) skipped' if bad else \
            f'no file with suffix {"/".join(extensions)}'
        raise ImageReadError(folder, f'no readable image in the folder ({detail})')
    return good


def pad_to_min_size(img, min_h, min_w, mode='reflect'):
    """Pad ``img`` ``(H, W[, C])`` at the bottom and right so that ``H >= min_h`` and ``W >= min_w``.

    Images already large enough are returned unchanged (the same object). Rule per axis, for
    ``mode='reflect'``: mirror without repeating the border pixel (numpy ``reflect`` = OpenCV
    ``BORDER_REFLECT_101``, what Real-ESRGAN's dataset uses) when the padding is smaller than that
    axis (``pad < size``); otherwise (image too small to mirror once) repeat the edge pixel
    (``edge`` = ``BORDER_REPLICATE``). ``mode='edge'`` always replicates, ``mode='constant'`` pads zeros.
    For an LR/GT pair pad the GT with ``(min_h, min_w)`` and the LR with ``(min_h // scale, min_w // scale)``.
    """
    if mode not in ('reflect', 'edge', 'constant'):
        raise ValueError(f"pad_to_min_size: mode must be 'reflect', 'edge' or 'constant', got {mode!r}")
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f'pad_to_min_size: expected (H, W) or (H, W, C), got shape {img.shape}')
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f'pad_to_min_size: cannot pad an empty image of shape {img.shape}')
    pad_h, pad_w = max(0, int(min_h) - h), max(0, int(min_w) - w)
    if pad_h == 0 and pad_w == 0:
        return img
    extra = [(0, 0)] * (img.ndim - 2)
    for axis, pad in ((0, pad_h), (1, pad_w)):
        if pad == 0:
            continue
        widths = [(0, 0), (0, 0)] + extra
        widths[axis] = (0, pad)
        if mode == 'constant':
            img = np.pad(img, widths, mode='constant')
        else:
            axis_mode = 'reflect' if mode == 'reflect' and pad < img.shape[axis] else 'edge'
            img = np.pad(img, widths, mode=axis_mode)
    return img


def to_tensor(img, device='cpu'):
    """float32 ``(H, W, C)`` in [0, 1] -> ``(1, C, H, W)`` tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1)))[None].to(device)
