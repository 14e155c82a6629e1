"""HR photos with random degradation types: the degradation classifier's data (generated on the fly).

Each item draws every type of ``TYPES`` = (blur, noise, jpeg) independently, present with probability
``type_prob`` (0.5: the 8 combinations equally often), and an SRTTA blur kernel when blur is present.
Training items are random HR crops ``{'gt': (3, gt_size, gt_size), 'kernel': (21, 21), 'label': (3,)}``
(flipped / transposed); the model degrades the batch (``tta_sr.data.degradation_types.apply_types``, with
the x``scale`` downscale). Validation items (``fixed_seed`` set) are degraded here, reproducibly:
item ``i`` is image ``i // draws_per_image`` (its centre crop of at most ``max_size`` HR pixels; 0: whole,
cut to a multiple of ``scale``) under the seed ``fixed_seed + i``:
``{'lq': (3, h, w), 'label': (3,), 'lq_path': path}``.
"""
import random

import numpy as np
import torch

from basicsr.utils import DiffJPEG
from basicsr.utils.registry import DATASET_REGISTRY

from tta_sr.data.degradation_types import (DOWNSCALE_MODES, TYPES, apply_types, degradation_settings, identity_kernel,
                                           random_kernel)
from tta_sr.data.second_order_degradation import seeded
from tta_sr.data.transforms import center_crop, random_crop, random_flip
from tta_sr.utils.image_io import pad_to_min_size, read_image, scan_images, to_tensor


def draw_types(opt, type_prob=0.5):
    """(label (3,) float tensor, kernel (21, 21) float tensor): each type present with ``type_prob``."""
    label = torch.tensor([float(random.random() < type_prob) for _ in TYPES])
    kernel = random_kernel(opt) if label[0] else identity_kernel()
    return label, torch.from_numpy(kernel)


@DATASET_REGISTRY.register()
class DegradationTypeDataset(torch.utils.data.Dataset):
    """Options: ``dataroot_gt`` (a folder) and ``extra_dataroots_gt`` (more folders), ``gt_size``, ``scale``, ``type_prob``,
    ``degradation`` (overrides of SRTTA's ranges), ``use_hflip``, ``use_rot``; validation: ``fixed_seed``,
    ``draws_per_image`` (default 1), ``max_size`` (default 0)."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        roots = [opt['dataroot_gt']] + list(opt.get('extra_dataroots_gt') or [])
        self.paths = [p for root in roots for p in scan_images(root, on_error=opt.get('on_bad_image', 'warn'))]
        self.degradation = degradation_settings(opt.get('degradation'))
        self.fixed_seed = opt.get('fixed_seed')
        self.draws = opt.get('draws_per_image', 1) if self.fixed_seed is not None else 1
        self._images = {}
        self._jpeger = DiffJPEG(differentiable=False) if self.fixed_seed is not None else None

    def __len__(self):
        return len(self.paths) * self.draws

    def image(self, index):
        """HR image ``index`` as (3, H, W) float tensor; kept in memory as 8-bit after the first read."""
        if index not in self._images:
            rgb = read_image(self.paths[index])[0]
            self._images[index] = torch.from_numpy(np.round(rgb * 255).astype(np.uint8).transpose(2, 0, 1).copy())
        return self._images[index].float() / 255

    def __getitem__(self, index):
        if self.fixed_seed is not None:
            return self._validation_item(index)
        size = self.opt['gt_size']
        img = self.image(index)
        if min(img.shape[1:]) < size:
            img = to_tensor(pad_to_min_size(img.permute(1, 2, 0).numpy(), size, size))[0]
        gt = random_crop([img], size)
        gt = random_flip(gt, self.opt.get('use_hflip', True), self.opt.get('use_rot', True))[0]
        label, kernel = draw_types(self.degradation, self.opt.get('type_prob', 0.5))
        return {'gt': gt.contiguous(), 'kernel': kernel, 'label': label}

    def _validation_item(self, index):
        image_index = index // self.draws
        scale = self.opt['scale']
        gt = center_crop(self.image(image_index), self.opt.get('max_size', 0))
        gt = gt[:, :gt.shape[1] // scale * scale, :gt.shape[2] // scale * scale]
        with seeded(self.fixed_seed + index), torch.no_grad():
            label, kernel = draw_types(self.degradation, self.opt.get('type_prob', 0.5))
            lq = apply_types(gt[None], label[None], kernel[None], self.degradation, self._jpeger, scale,
                             random.choice(DOWNSCALE_MODES))[0]
        return {'lq': lq, 'label': label, 'lq_path': self.paths[image_index]}
