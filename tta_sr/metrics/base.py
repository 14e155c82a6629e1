"""The one metric interface of tta_sr (after pyiqa's ``create_metric``): a metric knows its name,
its direction and the weights it uses.

Images at the boundary are ``np.float32`` RGB arrays ``(H, W, 3)`` in ``[0, 1]``. By default they
are first quantised to 8 bits (``round(clip(x, 0, 1) * 255)``), exactly what BasicSR's
``tensor2img`` does before its validation metrics and what a saved PNG holds, so a score computed
during a run equals the score of the written files (``tta-sr evaluate``).
"""
import math

import numpy as np


def to_uint8_grid(img):
    """``(H, W, C)`` float in [0, 1] -> float32 array on the 8-bit grid ``{0, ..., 255}``.

    Same arithmetic as BasicSR's ``tensor2img`` (float32 ``(x * 255).round()`` after clamping), so
    halfway cases round the same way.
    """
    return np.round(np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0) * np.float32(255.0))


def check_image(img, what):
    """Return ``img`` as a float32 ``(H, W, 3)`` array, or raise saying what was expected."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'{what}: expected an RGB image (H, W, 3) in [0, 1], got shape {img.shape}; '
                         'drop the alpha channel (read_image returns it separately)')
    if not np.issubdtype(img.dtype, np.floating):
        raise ValueError(f'{what}: expected a float image in [0, 1], got dtype {img.dtype}; divide by 255 '
                         '(or 65535) first')
    return img.astype(np.float32, copy=False)


class Metric:
    """An image-quality metric with a direction and named weights.

    Attributes:
        name (str): the name it was created with (``'psnr_y'``, ``'ssim'``, ``'lpips'``, ``'niqe'``, ``'nrqm'``).
        lower_better (bool): ``True`` when a smaller score is better (LPIPS, NIQE).
        weights (str): which weights / parameters / implementation produce the score.
        full_reference (bool): ``True`` when ``gt`` is required.
        crop_border (int): pixels removed on each edge before scoring (``scale`` for PSNR/SSIM/NIQE).
        quantize (bool): round inputs to the 8-bit grid first (see module docstring).

    ``metric(sr, gt=None) -> float`` scores one image; ``metric.batch(srs, gts=None) -> list[float]``.
    """

    def __init__(self, name, fn, lower_better, weights, full_reference, crop_border=0, quantize=True):
        self.name = name
        self._fn = fn
        self.lower_better = bool(lower_better)
        self.weights = str(weights)
        self.full_reference = bool(full_reference)
        self.crop_border = int(crop_border)
        self.quantize = bool(quantize)

    def __call__(self, sr, gt=None):
        sr = check_image(sr, f'{self.name}: sr')
        if self.full_reference:
            if gt is None:
                raise ValueError(f'{self.name} is a full-reference metric and needs gt; pass the HR image '
                                 'or use a no-reference metric (niqe, nrqm)')
            gt = check_image(gt, f'{self.name}: gt')
            if gt.shape != sr.shape:
                raise ValueError(f'{self.name}: sr {sr.shape} and gt {gt.shape} differ in size; crop the GT to a '
                                 'multiple of the scale (mod-crop) or check that the right files are paired')
        elif gt is not None:
            gt = None  # no-reference metric: a GT is accepted and ignored, so callers can pass rows uniformly
        if self.quantize:
            sr = to_uint8_grid(sr) / np.float32(255.0)
            gt = None if gt is None else to_uint8_grid(gt) / np.float32(255.0)
        return float(self._fn(sr, gt))

    def batch(self, srs, gts=None):
        """Score a sequence of images; ``gts`` is a matching sequence (or ``None`` for no-reference metrics)."""
        gts = [None] * len(srs) if gts is None else gts
        if len(gts) != len(srs):
            raise ValueError(f'{self.name}.batch: {len(srs)} sr images but {len(gts)} gt images')
        return [self(sr, gt) for sr, gt in zip(srs, gts)]

    def better(self, a, b):
        """``True`` when score ``a`` is strictly better than score ``b`` under this metric's direction."""
        if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
            return False
        return a < b if self.lower_better else a > b

    def info(self):
        """JSON-ready description: name, lower_better, weights, full_reference, crop_border, quantize."""
        return {'name': self.name, 'lower_better': self.lower_better, 'weights': self.weights,
                'full_reference': self.full_reference, 'crop_border': self.crop_border, 'quantize': self.quantize}

    def __repr__(self):
        arrow = 'lower is better' if self.lower_better else 'higher is better'
        return f'Metric({self.name!r}, {arrow}, weights={self.weights!r})'
