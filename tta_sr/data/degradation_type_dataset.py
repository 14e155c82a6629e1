"""HR photos with random degradation types: the degradation classifier's data (generated on the fly).

Each item draws every type of ``TYPES`` = (blur, noise, jpeg) independently, applied with probability
``type_prob`` (one number, or one per type), an SRTTA blur kernel when blur is applied and a noise level
when noise is. The labels say what the LR image shows: blur counts as present when the kernel's width
(``kernel_width``, HR pixels) is at least ``blur_min_width`` and the noise, if any, is weaker than
``blur_max_noise`` (defaults 0 and infinity: any kernel). Measured with classifiers trained to flag every
kernel: a kernel narrower than about 1.2 HR pixels does not show after the x4 downscale (12% of sigma-0.5
and 25% of sigma-1.0 blurs flagged, about as often as no blur), and noise of sigma 15-30 (0-255) hides even
the wider ones (blur accuracy 0.62 there, 0.85 without noise). Such items are degraded as drawn but
labelled blur-free.
Training items are random HR crops ``{'gt': (3, gt_size, gt_size), 'kernel': (21, 21), 'applied': (3,) bool,
'label': (3,), 'noise_sigma': float}`` (:func:`draw_types`)
(flipped / transposed); the model degrades the batch (``tta_sr.data.degradation_types.apply_types``, with
the x``scale`` downscale). Validation items (``fixed_seed`` set) are degraded here, reproducibly:
item ``i`` is image ``i // draws_per_image`` (its centre crop of at most ``max_size`` HR pixels; 0: whole,
cut to a multiple of ``scale``) under the seed ``fixed_seed + i``:
``{'lq': (3, h, w), 'label': (3,), 'lq_path': path}``.
"""
import math
import random

import numpy as np
import torch

from basicsr.utils.registry import DATASET_REGISTRY

from tta_sr.data.degradation_types import (TYPES, apply_types, degradation_settings, identity_kernel, kernel_width,
                                           random_kernel)
from tta_sr.data.second_order_degradation import make_jpeger, seeded
from tta_sr.data.transforms import center_crop, random_crop, random_flip
from tta_sr.utils.image_io import pad_to_min_size, read_image, scan_images, to_tensor


def draw_types(opt, type_prob=0.5, blur_min_width=0.0, blur_max_noise=math.inf):
    """One draw: {'applied': (3,) bool, 'label': (3,) float, 'kernel': (21, 21), 'noise_sigma': float (0-255)}.

    Type j is applied with probability ``type_prob`` (or ``type_prob[j]``), the kernel and the noise level
    drawn in ``opt``'s ranges. Labels are as applied, except blur: present only when its kernel is at least
    ``blur_min_width`` wide and the noise, if applied, is weaker than ``blur_max_noise``.
    """
    probs = type_prob if isinstance(type_prob, (list, tuple)) else [type_prob] * len(TYPES)
    applied = torch.tensor([random.random() < p for p in probs])
    kernel = random_kernel(opt) if applied[0] else identity_kernel()
    sigma = random.uniform(*opt['noise_range']) if applied[1] else 0.0
    label = applied.float()
    label[0] = float(bool(applied[0]) and kernel_width(kernel) >= blur_min_width and sigma < blur_max_noise)
    return {'applied': applied, 'label': label, 'kernel': torch.from_numpy(kernel), 'noise_sigma': sigma}


@DATASET_REGISTRY.register()
class DegradationTypeDataset(torch.utils.data.Dataset):
    """Options: ``dataroot_gt`` (a folder) and ``extra_dataroots_gt`` (more folders), ``gt_size``, ``scale``, ``type_prob``,
    ``blur_min_width``, ``blur_max_noise``, ``degradation`` (overrides of SRTTA's ranges), ``use_hflip``, ``use_rot``; validation:
    ``fixed_seed``, ``draws_per_image`` (default 1), ``max_size`` (default 0)."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        roots = [opt['dataroot_gt']] + list(opt.get('extra_dataroots_gt') or [])
        self.paths = [p for root in roots for p in scan_images(root, on_error=opt.get('on_bad_image', 'warn'))]
        self.degradation = degradation_settings(opt.get('degradation'))
        self.fixed_seed = opt.get('fixed_seed')
        self.draws = opt.get('draws_per_image', 1) if self.fixed_seed is not None else 1
        self._images = {}
        self._jpeger = make_jpeger() if self.fixed_seed is not None else None

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
        return dict(self._draw(), gt=gt.contiguous())

    def _draw(self):
        return draw_types(self.degradation, self.opt.get('type_prob', 0.5), self.opt.get('blur_min_width', 0.0),
                          self.opt.get('blur_max_noise', math.inf))

    def _validation_item(self, index):
        image_index = index // self.draws
        scale = self.opt['scale']
        gt = center_crop(self.image(image_index), self.opt.get('max_size', 0))
        gt = gt[:, :gt.shape[1] // scale * scale, :gt.shape[2] // scale * scale]
        with seeded(self.fixed_seed + index), torch.no_grad():
            draw = self._draw()
            lq = apply_types(gt[None], draw['applied'][None], draw['kernel'][None], self.degradation, self._jpeger,
                             scale, torch.tensor([draw['noise_sigma']]))[0]
        return {'lq': lq, 'label': draw['label'], 'lq_path': self.paths[image_index]}
