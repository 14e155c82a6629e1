"""A bounded, seeded set of LR crops to judge a model on, whatever the size and number of the photos.

An image whose sides are both at most ``size`` is taken whole (one crop); a larger one gives ``per_image`` crops of
``size x size`` (clipped to the image) at positions drawn from a generator seeded by ``seed`` and the image's file
name, so the same photo gives the same crops in every run and on every rank. Over a folder at most ``total`` crops
are kept, taking the first crop of every image, then the second of every image, and so on.
"""
import os
import random


def crop_boxes(height, width, size, per_image, seed, name):
    """``[(top, left, h, w), ...]``: the whole image when it fits in ``size x size``, else ``per_image`` seeded
    boxes of ``min(size, height) x min(size, width)``."""
    if height <= size and width <= size:
        return [(0, 0, height, width)]
    h, w = min(size, height), min(size, width)
    rng = random.Random(f'{seed}:{name}')  # a string seed is hashed the same way in every process
    return [(rng.randint(0, height - h), rng.randint(0, width - w), h, w) for _ in range(per_image)]


def budget_crops(shapes, size, per_image, total, seed):
    """``[(path, box), ...]`` for ``shapes`` (``{path: (height, width)}``, in a stable order): every image's
    :func:`crop_boxes`, round-robin over the images, at most ``total`` in all (0: no limit)."""
    boxes = {path: crop_boxes(h, w, size, per_image, seed, os.path.basename(path)) for path, (h, w) in shapes.items()}
    chosen = []
    for k in range(max((len(b) for b in boxes.values()), default=0)):
        chosen += [(path, b[k]) for path, b in boxes.items() if k < len(b)]
    return chosen[:total] if total else chosen


def crop(img, box):
    """The ``box`` ``(top, left, h, w)`` of an ``(H, W[, C])`` array."""
    top, left, h, w = box
    return img[top:top + h, left:left + w]


__all__ = ['crop_boxes', 'budget_crops', 'crop']
