"""Side-by-side crops where the base and the adapted outputs differ most."""
import numpy as np


def pick_crop_box(base, adapted, size):
    """Square-ish box where ``|base - adapted|`` (mean over channels) has the largest sum.

    Args:
        base, adapted: ``(H, W, C)`` (or ``(H, W)``) arrays of equal shape.
        size (int): box side in pixels; clipped to the image.

    Returns:
        ``(top, left, height, width)``; the centred box when the images are identical.
    """
    base, adapted = np.asarray(base, dtype=np.float64), np.asarray(adapted, dtype=np.float64)
    if base.shape != adapted.shape:
        raise ValueError(f'pick_crop_box: base {base.shape} and adapted {adapted.shape} differ in shape')
    height, width = base.shape[:2]
    bh, bw = min(int(size), height), min(int(size), width)
    diff = np.abs(base - adapted)
    if diff.ndim == 3:
        diff = diff.mean(axis=2)
    integral = np.zeros((height + 1, width + 1))
    integral[1:, 1:] = diff.cumsum(0).cumsum(1)
    # sums of every bh x bw window, indexed by its top-left corner
    sums = integral[bh:, bw:] - integral[:-bh, bw:] - integral[bh:, :-bw] + integral[:-bh, :-bw]
    if sums.max() <= 0:
        return (height - bh) // 2, (width - bw) // 2, bh, bw
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), bh, bw


def bicubic_upscale(lr, shape):
    """OpenCV bicubic upsampling of ``lr`` ``(h, w, 3)`` to ``shape[:2]``, clipped to [0, 1]."""
    import cv2
    up = cv2.resize(np.asarray(lr, dtype=np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0, 1)


def mod_crop_to(gt, shape, scale):
    """Crop ``gt`` to ``shape[:2]`` when it is larger by less than ``scale`` pixels per axis, else return it."""
    dh, dw = gt.shape[0] - shape[0], gt.shape[1] - shape[1]
    if (dh, dw) != (0, 0) and 0 <= dh < scale and 0 <= dw < scale:
        return gt[:shape[0], :shape[1]]
    return gt


