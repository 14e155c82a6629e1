"""Real LR test images from a folder: the only data stage 2 (test-time adaptation) learns from.

Items are random LR crops ``(3, lq_size, lq_size)`` in [0, 1] with flips; images smaller than the crop
are reflect-padded up to it (``tta_sr.utils.image_io.pad_to_min_size``). ``lq_size: 0``: whole images
(SRTTAModel adapts to one whole image per iteration; use batch size 1 when the sizes differ). With ``return_hf_weight``
each crop comes with the matching crop of LWay's DWT weight map W ``(1, lq_size, lq_size)``, computed
once per whole image. No ground truth is ever returned: a GT folder is read only by evaluation.

Split: the images are shuffled once with ``split_seed``; the first ``round(val_fraction * N)`` (at least
one when N >= 2) form ``split: val``, the rest ``split: train``; with one image both use it.
Validation items are centre crops of at most ``val_crop_size`` (whole image when 0), deterministic.
"""
import os
import random

import torch

from basicsr.utils.registry import DATASET_REGISTRY

from tta_sr.data.crop_budget import centre_box, crop, crop_boxes
from tta_sr.data.transforms import center_crop, random_crop, random_flip
from tta_sr.losses.dwt_weight import high_frequency_weight
from tta_sr.options.stage2 import lr_dataset_options
from tta_sr.utils.image_io import pad_to_min_size, read_image, scan_images, to_tensor


def split_images(paths, split, val_fraction=0.2, split_seed=0):
    """The ``split`` ('train', 'val' or 'all') part of ``paths``, reproducibly from ``split_seed``."""
    paths = sorted(paths)
    if split == 'all' or len(paths) < 2:
        return paths
    order = random.Random(split_seed).sample(paths, len(paths))
    n_val = min(len(paths) - 1, max(1, round(val_fraction * len(paths))))
    chosen = order[:n_val] if split == 'val' else order[n_val:]
    return sorted(chosen)


def select_names(paths, names):
    """Keep the paths whose file stem is in ``names`` (all when ``names`` is empty); error on unknown names."""
    if not names:
        return paths
    stems = {os.path.splitext(os.path.basename(p))[0]: p for p in paths}
    missing = [n for n in names if n not in stems]
    if missing:
        raise ValueError(f'image_names {missing} are not among the LR images ({sorted(stems)})')
    return [stems[n] for n in names]


@DATASET_REGISTRY.register()
class LRImageDataset(torch.utils.data.Dataset):
    """Options (declared, with their defaults, in ``tta_sr.options.stage2.LR_DATASET``): ``dataroot_lq``,
    ``lq_size`` (train crop), ``split`` (train|val|all), ``val_fraction``, ``split_seed``, ``val_crop_size``,
    ``use_hflip``, ``use_rot``, ``return_hf_weight``, ``image_names``, ``on_bad_image`` (warn|raise)."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt = lr_dataset_options(opt)
        paths = scan_images(opt['dataroot_lq'], on_error=opt['on_bad_image'])
        paths = select_names(paths, opt['image_names'])
        self.paths = split_images(paths, opt['split'], opt['val_fraction'], opt['split_seed'])
        self.is_train = opt['phase'] == 'train'
        self._windows = {}
        self._hf_weights = {}

    def __len__(self):
        return len(self.paths)

    def windows(self, index):
        """The (3, h, w) tensors the samples of image ``index`` are cut from, read once: the whole image, or, for a
        photo larger than ``region_size`` that is only ever cropped (``lq_size`` / ``val_crop_size`` set),
        ``regions_per_image`` seeded regions of that side (``crop_budget``; validation: its centre region), so that
        memory does not grow with the size of the photos. Each is padded to the training crop size."""
        if index not in self._windows:
            rgb, _ = read_image(self.paths[index])
            cut = self.opt['lq_size'] if self.is_train else self.opt['val_crop_size']  # 0: whole images wanted
            region, (height, width) = max(self.opt['region_size'], cut), rgb.shape[:2]
            if cut and self.opt['region_size'] and max(height, width) > region:
                boxes = (crop_boxes(height, width, region, self.opt['regions_per_image'], self.opt['split_seed'],
                                    os.path.basename(self.paths[index])) if self.is_train else
                         [centre_box(height, width, region)])
                parts = [crop(rgb, box) for box in boxes]
            else:
                parts = [rgb]
            size = self.opt['lq_size'] if self.is_train else 0
            self._windows[index] = [to_tensor(pad_to_min_size(part, size, size))[0] for part in parts]
        return self._windows[index]

    def hf_weight(self, index, window=0):
        """LWay's W of window ``window`` of image ``index``: (1, h, w), computed once."""
        if (index, window) not in self._hf_weights:
            self._hf_weights[index, window] = high_frequency_weight(self.windows(index)[window][None])[0]
        return self._hf_weights[index, window]

    def window_planes(self, index, with_hf, rng=None):
        """``[window]`` or ``[window, W]`` of image ``index``: one of its :meth:`windows`, drawn from ``rng`` (default:
        the global ``random``) when it has several (no draw otherwise)."""
        windows = self.windows(index)
        window = (rng or random).randrange(len(windows)) if len(windows) > 1 else 0
        return [windows[window]] + ([self.hf_weight(index, window)] if with_hf else [])

    def __getitem__(self, index):
        planes = self.window_planes(index, self.opt['return_hf_weight'])
        if self.is_train:
            if self.opt['lq_size']:
                planes = random_crop(planes, self.opt['lq_size'])
            planes = random_flip(planes, self.opt['use_hflip'], self.opt['use_rot'])
        else:
            planes = [center_crop(p, self.opt['val_crop_size']) for p in planes]
        item = {'lq': planes[0].contiguous(), 'lq_path': self.paths[index]}
        if len(planes) > 1:
            item['hf_weight'] = planes[1].contiguous()
        return item

