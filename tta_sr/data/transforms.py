"""Crops and flips on (C, H, W) tensors, applied identically to every plane of a sample."""
import random

from tta_sr.data.crop_budget import centre_box


def center_crop(img, size):
    """(C, H, W) -> central (C, min(H, size), min(W, size)); ``size`` 0 keeps the whole image."""
    if not size:
        return img
    top, left, h, w = centre_box(*img.shape[1:], size)
    return img[:, top:top + h, left:left + w]


def random_crop(planes, size, rng=None):
    """The same random (size x size) window of every (C, H, W) plane; drawn from ``rng`` (a ``random.Random``;
    default: the global ``random``): top, then left."""
    rng = rng or random
    h, w = planes[0].shape[1:]
    top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    return [p[:, top:top + size, left:left + size] for p in planes]


def random_flip(planes, hflip, rot, rng=None):
    """The same random horizontal flip, vertical flip and transpose of every plane; drawn from ``rng`` (a
    ``random.Random``; default: the global ``random``), one draw per enabled flip, in that order."""
    rng = rng or random
    if hflip and rng.random() < 0.5:
        planes = [p.flip(2) for p in planes]
    if rot and rng.random() < 0.5:
        planes = [p.flip(1) for p in planes]
    if rot and rng.random() < 0.5:
        planes = [p.transpose(1, 2) for p in planes]
    return planes
