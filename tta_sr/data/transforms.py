"""Crops and flips on (C, H, W) tensors, applied identically to every plane of a sample."""
import random


def center_crop(img, size):
    """(C, H, W) -> central (C, min(H, size), min(W, size)); ``size`` 0 keeps the whole image."""
    if not size:
        return img
    h, w = img.shape[1:]
    th, tw = min(h, size), min(w, size)
    top, left = (h - th) // 2, (w - tw) // 2
    return img[:, top:top + th, left:left + tw]


def random_crop(planes, size):
    """The same random (size x size) window of every (C, H, W) plane."""
    h, w = planes[0].shape[1:]
    top, left = random.randint(0, h - size), random.randint(0, w - size)
    return [p[:, top:top + size, left:left + size] for p in planes]


def random_flip(planes, hflip, rot):
    """The same random horizontal flip, vertical flip and transpose of every plane."""
    if hflip and random.random() < 0.5:
        planes = [p.flip(2) for p in planes]
    if rot and random.random() < 0.5:
        planes = [p.flip(1) for p in planes]
    if rot and random.random() < 0.5:
        planes = [p.transpose(1, 2) for p in planes]
    return planes
