"""tta_sr metrics in BasicSR's ``METRIC_REGISTRY``, for ``val.metrics`` in option files::

    val:
      metrics:
        lpips: {type: calculate_lpips}            # lower is better
        nrqm:  {type: calculate_nrqm, crop_border: 4}   # only if NRQM_model.mat is cached (pyiqa)

BasicSR passes ``img`` (and ``img2``, the GT) as ``uint8`` BGR ``(H, W, 3)`` arrays (``tensor2img``);
they are converted to RGB in [0, 1] and scored by ``tta_sr.metrics.create_metric``. PSNR, SSIM and
NIQE are BasicSR's own ``calculate_psnr`` / ``calculate_ssim`` / ``calculate_niqe``. Set
``better: lower`` on the LPIPS entry so BasicSR's best-metric tracking uses the right direction.
"""
import functools

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from tta_sr.metrics import create_metric


@functools.lru_cache(maxsize=None)
def _metric(name, crop_border):
    return create_metric(name, crop_border=crop_border)


def _to_rgb01(img, input_order='HWC'):
    img = np.asarray(img)
    if input_order == 'CHW':
        img = img.transpose(1, 2, 0)
    scale = 65535.0 if img.dtype == np.uint16 else (255.0 if img.dtype == np.uint8 or img.max() > 1.0 else 1.0)
    return np.ascontiguousarray(img[..., ::-1].astype(np.float32) / np.float32(scale))


def _register(fn):
    if fn.__name__ not in METRIC_REGISTRY:  # re-import safe
        METRIC_REGISTRY.register()(fn)
    return fn


@_register
def calculate_lpips(img, img2, crop_border=0, input_order='HWC', **kwargs):
    """LPIPS between BasicSR images ``img`` and ``img2`` (BGR, [0, 255]); lower is better."""
    return _metric('lpips', int(crop_border))(_to_rgb01(img, input_order), _to_rgb01(img2, input_order))


@_register
def calculate_nrqm(img, crop_border=0, input_order='HWC', **kwargs):
    """NRQM of the BasicSR image ``img`` (BGR, [0, 255]); higher is better; needs NRQM_model.mat in pyiqa's cache."""
    return _metric('nrqm', int(crop_border))(_to_rgb01(img, input_order))
