"""A bounded, seeded set of LR crops to judge a model on, whatever the size and number of the photos.

An image whose sides are both at most ``size`` is taken whole (one crop); a larger one gives ``per_image`` crops of
``size x size`` (clipped to the image) at positions drawn from a generator seeded by ``seed`` and the image's file
name, so the same photo gives the same crops in every run and on every rank. Over a folder at most ``total`` crops
are kept, taking the first crop of every image, then the second of every image, and so on. A report shows the
most detailed of a few such crops (:func:`most_detailed`).
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


def centre_box(height, width, size):
    """``(top, left, h, w)`` of the central ``min(size, height) x min(size, width)`` box."""
    h, w = min(size, height), min(size, width)
    return (height - h) // 2, (width - w) // 2, h, w


def round_robin(per_image, total):
    """``[(key, item), ...]`` from ``per_image`` (``{key: [item, ...]}``, in a stable order): the first item of every
    key, then the second of every key, and so on, at most ``total`` in all (0: no limit)."""
    chosen = []
    for k in range(max((len(items) for items in per_image.values()), default=0)):
        chosen += [(key, items[k]) for key, items in per_image.items() if k < len(items)]
    return chosen[:total] if total else chosen


def budget_crops(shapes, size, per_image, total, seed):
    """``[(path, box), ...]`` for ``shapes`` (``{path: (height, width)}``): every image's :func:`crop_boxes`,
    :func:`round_robin` over the images, at most ``total`` in all."""
    return round_robin({path: crop_boxes(h, w, size, per_image, seed, os.path.basename(path))
                        for path, (h, w) in shapes.items()}, total)


def most_detailed(img, boxes):
    """The box of ``boxes`` whose crop of ``img`` (H, W, C) has the most detail: the largest mean absolute
    difference between neighbouring pixels (a flat sky loses to a facade)."""
    def detail(box):
        part = crop(img, box).astype('float32')
        return float(abs(part[1:] - part[:-1]).mean() + abs(part[:, 1:] - part[:, :-1]).mean()) if part.size else 0.0
    return max(boxes, key=detail)


def crop(img, box):
    """The ``box`` ``(top, left, h, w)`` of an ``(H, W[, C])`` array."""
    top, left, h, w = box
    return img[top:top + h, left:left + w]


__all__ = ['crop_boxes', 'centre_box', 'round_robin', 'budget_crops', 'most_detailed', 'crop']
