"""HR images from a folder, with Real-ESRGAN's random degradation kernels (stage-1 data).

Training: exactly realesrgan's ``RealESRGANDataset`` (augment, crop/pad to 400, sample ``kernel1``,
``kernel2``, ``sinc_kernel``); the model degrades the batch on its device. ``meta_info`` is optional:
without it, the folder ``dataroot_gt`` (and the list ``extra_dataroots_gt``) is listed: every readable image.
Validation (``fixed_seed`` set): item ``i`` is a reproducible pair, degraded here with seed
``fixed_seed + i``: {'lq': (3, gt_size/a, gt_size/a), 'gt': (3, gt_size, gt_size), 'family': name}, the
top-left crop (Real-ESRGAN pads images under 400 px at the bottom and right, so that crop is never
padding), in a degradation family drawn with ``family_prob`` (default: second_order alone; see
``tta_sr.data.degradation_families``).
With ``consistent_degradation: true`` every item uses the seed ``fixed_seed`` itself: one unknown but
consistent degradation (same kernels and parameters) for the whole set, like a single camera.
"""
import os
import tempfile

import torch

from basicsr.utils.registry import DATASET_REGISTRY
from realesrgan.data.realesrgan_dataset import RealESRGANDataset

from tta_sr.data.degradation_families import degrade, draw_family, family_options, family_probabilities
from tta_sr.data.second_order_degradation import make_jpeger, seeded
from tta_sr.utils.image_io import scan_images


# Real-ESRGAN's published x4plus kernel settings (options/train_realesrgan_x4plus.yml); any can be overridden.
DEFAULT_KERNELS = {
    'blur_kernel_size': 21, 'kernel_list': ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso',
                                            'plateau_aniso'],
    'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], 'sinc_prob': 0.1, 'blur_sigma': [0.2, 3],
    'betag_range': [0.5, 4], 'betap_range': [1, 2],
    'blur_kernel_size2': 21, 'kernel_list2': ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso',
                                              'plateau_aniso'],
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], 'sinc_prob2': 0.1, 'blur_sigma2': [0.2, 1.5],
    'betag_range2': [0.5, 4], 'betap_range2': [1, 2], 'final_sinc_prob': 0.8,
}


@DATASET_REGISTRY.register()
class HRDegradationDataset(RealESRGANDataset):
    """Options: Real-ESRGAN's dataset options, plus ``gt_size``, ``scale``, optional ``fixed_seed``, and for
    validation ``family_prob`` and ``mild``."""

    def __init__(self, opt):
        opt = {**DEFAULT_KERNELS, **opt}
        opt.setdefault('io_backend', {'type': 'disk'})
        opt.setdefault('use_hflip', opt.get('fixed_seed') is None)
        opt.setdefault('use_rot', False)
        if opt.get('meta_info'):
            super().__init__(opt)
        else:
            self._init_from_folder(opt)
        self.fixed_seed = opt.get('fixed_seed')
        if self.fixed_seed is not None:
            self._jpeger = make_jpeger()
            self._degradation = family_options(opt)
            self._family_prob = family_probabilities(opt)

    def _init_from_folder(self, opt):
        """``RealESRGANDataset.__init__`` with ``meta_info`` listing ``dataroot_gt`` and ``extra_dataroots_gt``."""
        roots = [opt['dataroot_gt']] + list(opt.get('extra_dataroots_gt') or [])
        paths = [os.path.abspath(p) for root in roots for p in scan_images(root, on_error=opt.get('on_bad_image', 'warn'))]
        with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
            f.write('\n'.join(paths))
        try:
            super().__init__(dict(opt, meta_info=f.name, dataroot_gt=''))  # absolute paths in meta_info
        finally:
            os.remove(f.name)

    def __getitem__(self, index):
        if self.fixed_seed is None:
            return super().__getitem__(index)
        with seeded(self.fixed_seed + (0 if self.opt.get('consistent_degradation') else index)):
            item = super().__getitem__(index)
            gt = item['gt'][None, :, :self.opt['gt_size'], :self.opt['gt_size']]
            kernels = [item[k][None] for k in ('kernel1', 'kernel2', 'sinc_kernel')]
            family = draw_family(self._family_prob)
            with torch.no_grad():
                lq = degrade(family, gt, kernels, self.opt['scale'], self._degradation, self._jpeger)
        return {'lq': lq[0], 'gt': gt[0], 'lq_path': item['gt_path'], 'gt_path': item['gt_path'], 'family': family}

