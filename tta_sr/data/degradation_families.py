"""Degradation families for stage 1: what an LR photo can have been through, from clean to heavy.

| family | X = D(Y), per image |
| --- | --- |
| ``second_order`` | Real-ESRGAN's second-order pipeline (``tta_sr.data.second_order_degradation``) |
| ``mild`` | a camera: light blur (Gaussian, isotropic or not, or a lens disk; or none), area or antialiased bicubic x a, light Gaussian noise, JPEG of high quality |
| ``bicubic`` | the antialiased bicubic downscale alone (the classic benchmark degradation) |

Every family ends quantised to 8 bits. Training draws a family per image with probabilities
``family_prob`` (:func:`draw_family`; without the option, ``second_order`` alone, Real-ESRGAN's training) and degrades each image on its own (:func:`degrade`); all
randomness comes from Python's ``random``, NumPy's and torch's global generators, so that a block
under ``seeded(seed)`` gives the same degradation to any two images of the same size (the positives
of the contrastive loss, and reproducible held-out sets).
"""
import math
import random

import numpy as np
import torch

from basicsr.utils.img_process_util import filter2D

from tta_sr.data.second_order_degradation import degradation_options, degrade_second_order, quantize
from tta_sr.ops.downscalers import downscale

FAMILIES = ('second_order', 'mild', 'bicubic')

# The mild, camera-like family (options ``mild`` in the dataset/model options override any key).
DEFAULT_MILD = {
    'blur_prob': {'gaussian': 0.5, 'disk': 0.25, 'none': 0.25},
    'gaussian_sigma': [0.2, 1.6],          # HR pixels
    'aniso_prob': 0.3,                     # anisotropic Gaussian: second std in [0.5, 1] x the first, any angle
    'disk_radius': [0.5, 2.0],             # HR pixels (defocus)
    'downscalers': ['area', 'bicubic_aa'],
    'noise_sigma': [1.0, 5.0],             # Gaussian, in 8-bit levels: a camera's sensor noise is never zero
    'gray_noise_prob': 0.4,
    'jpeg_range': [85, 95],
}


def family_probabilities(opt):
    """{family: p} from ``opt['family_prob']`` (missing families get 0; no option: second_order alone), normalised;
    errors on unknown names."""
    probs = dict(opt.get('family_prob') or {'second_order': 1.0})
    unknown = set(probs) - set(FAMILIES)
    if unknown:
        raise ValueError(f'family_prob names unknown families {sorted(unknown)}; known: {", ".join(FAMILIES)}')
    total = float(sum(probs.values()))
    if total <= 0 or any(p < 0 for p in probs.values()):
        raise ValueError(f'family_prob must be non-negative with a positive sum, got {probs}')
    return {f: probs.get(f, 0.0) / total for f in FAMILIES}


def draw_family(probs):
    """One family name drawn from ``probs`` ({family: p}) with Python's ``random`` (no draw when one family has
    all the probability, so a single-family stream is Real-ESRGAN's own)."""
    present = [f for f, p in probs.items() if p > 0]
    if len(present) == 1:
        return present[0]
    return random.choices(list(probs), weights=list(probs.values()))[0]


def family_options(opt):
    """What :func:`degrade` needs from an option dict: the second-order settings (Real-ESRGAN's key names)
    and ``mild``, the mild family's settings, defaults filled in."""
    return dict(degradation_options(opt), mild={**DEFAULT_MILD, **(opt.get('mild') or {})})


def gaussian_kernel2d(sigma_x, sigma_y, theta, size):
    """(size, size) normalised anisotropic Gaussian, std sigma_x along angle theta and sigma_y across."""
    r = size // 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return k / k.sum()


def disk_kernel(radius, supersample=8):
    """(2 ceil(r) + 1)^2 normalised pillbox of radius r (a defocused lens), antialiased by supersampling."""
    r = math.ceil(radius)
    n = (2 * r + 1) * supersample
    coords = (np.arange(n) + 0.5) / supersample - (r + 0.5)
    yy, xx = np.meshgrid(coords, coords, indexing='ij')
    inside = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    k = inside.reshape(2 * r + 1, supersample, 2 * r + 1, supersample).mean(axis=(1, 3))
    return k / k.sum()


def sample_mild(opt):
    """One draw of the mild family's parameters (a dict; ``kernel`` is a 2-D array or None)."""
    kinds = opt['blur_prob']
    kind = random.choices(list(kinds), weights=list(kinds.values()))[0]
    params = {'blur': kind, 'kernel': None}
    if kind == 'gaussian':
        sx = np.random.uniform(*opt['gaussian_sigma'])
        sy = sx * np.random.uniform(0.5, 1.0) if np.random.uniform() < opt['aniso_prob'] else sx
        theta = np.random.uniform(0, math.pi)
        params.update(sigma=(float(sx), float(sy)), theta=float(theta))
        params['kernel'] = gaussian_kernel2d(sx, sy, theta, 2 * math.ceil(3 * sx) + 1)
    elif kind == 'disk':
        params['radius'] = float(np.random.uniform(*opt['disk_radius']))
        params['kernel'] = disk_kernel(params['radius'])
    elif kind != 'none':
        raise ValueError(f'mild blur kinds are gaussian, disk and none; got {kind!r}')
    params['downscaler'] = random.choice(opt['downscalers'])
    params['noise_sigma'] = float(np.random.uniform(*opt['noise_sigma']))
    params['gray_noise'] = bool(np.random.uniform() < opt['gray_noise_prob'])
    params['jpeg_quality'] = float(np.random.uniform(*opt['jpeg_range']))
    return params


def degrade_mild(hr, scale, params, jpeger):
    """(B, 3, aH, aW) -> (B, 3, H, W): blur, downscale, Gaussian noise, JPEG, 8 bits (``params`` from sample_mild)."""
    out = hr
    if params['kernel'] is not None:
        out = filter2D(out, torch.as_tensor(params['kernel'], dtype=hr.dtype, device=hr.device)[None])
    out = downscale(out, scale, params['downscaler'])
    if params['noise_sigma'] > 0:
        shape = (out.shape[0], 1, *out.shape[2:]) if params['gray_noise'] else out.shape
        out = out + torch.randn(shape, dtype=out.dtype, device=out.device) * (params['noise_sigma'] / 255.0)
    quality = out.new_full((out.shape[0],), params['jpeg_quality'])
    return quantize(jpeger(torch.clamp(out, 0, 1), quality=quality))


def degrade_bicubic(hr, scale):
    """(B, 3, aH, aW) -> (B, 3, H, W): the antialiased bicubic downscale, 8 bits."""
    return quantize(downscale(hr, scale, 'bicubic_aa'))


def degrade(family, hr, kernels, scale, opt, jpeger):
    """X = D_family(Y) for ``hr`` (B, 3, aH, aW) in [0, 1]; one draw of the family's randomness for the batch.

    ``kernels``: (kernel1, kernel2, sinc_kernel), each (B, 21, 21), used by ``second_order``; ``opt``:
    :func:`family_options`.
    """
    if family == 'second_order':
        return degrade_second_order(hr, *kernels, scale, opt, jpeger)
    if family == 'mild':
        return degrade_mild(hr, scale, sample_mild(opt['mild']), jpeger)
    if family == 'bicubic':
        return degrade_bicubic(hr, scale)
    raise ValueError(f'unknown degradation family {family!r}; known: {", ".join(FAMILIES)}')


__all__ = ['FAMILIES', 'DEFAULT_MILD', 'family_probabilities', 'draw_family', 'family_options',
           'gaussian_kernel2d', 'disk_kernel', 'sample_mild', 'degrade_mild', 'degrade_bicubic', 'degrade']
