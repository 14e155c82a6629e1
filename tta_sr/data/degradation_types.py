"""Blur, noise and JPEG as three independent degradation types, on tensors (SRTTA's degradation scheme).

For a batch X (B, 3, H, W) in [0, 1] and a presence matrix P (B, 3) over ``TYPES`` = (blur, noise, jpeg):

    D(X) = Q(J_q(N_sigma(S(X (*) k))))

with each operator applied only to the rows where its type is present: ``X (*) k`` a blur by a random
Gaussian kernel k (SRTTA's: size 7..21, isotropic or anisotropic, sigma in [0.2, 3]), S an optional
x``scale`` bicubic downscale with antialiasing, as MATLAB's imresize (the degradation classifier's data:
blur at HR, then the downscale, then noise and JPEG at LR, the classical order y = (x (*) k)↓ + n; one fixed
downscale, since area or bilinear reductions are softer by about as much as a 1-1.5 HR px blur), N_sigma additive Gaussian noise with sigma in
[1, 30] / 255 (colour, or gray with probability 0.4), J_q JPEG with quality q in [30, 95], Q the 8-bit
quantisation. The ranges are the official SRTTA code's (``main_tta.py``); the kernels are Real-ESRGAN's
(``basicsr.data.degradations.random_mixed_kernels``), the noise basicsr's ``generate_gaussian_noise_pt``,
JPEG basicsr's ``DiffJPEG``.
"""
import math
import random

import numpy as np
import torch
from torch.nn import functional as F

from basicsr.data.degradations import generate_gaussian_noise_pt, random_mixed_kernels
from basicsr.utils.img_process_util import filter2D

TYPES = ('blur', 'noise', 'jpeg')
KERNEL_SIZE = 21  # every kernel is zero-padded to this size, so that a batch stacks

# The official SRTTA settings (src/main_tta.py): kernel sizes 7..21 (odd), iso/aniso Gaussian kernels.
SRTTA_DEGRADATION = {
    'kernel_range': [7, 21], 'kernel_list': ['iso', 'aniso'], 'kernel_prob': [0.5, 0.5], 'blur_sigma': [0.2, 3.0],
    'betag_range': [0.5, 4.0], 'betap_range': [1.0, 2.0], 'noise_range': [1.0, 30.0], 'gray_noise_prob': 0.4,
    'jpeg_range': [30.0, 95.0],
}



def degradation_settings(opt=None):
    """SRTTA's settings with the keys given in ``opt`` overridden."""
    opt = opt or {}
    unknown = set(opt) - set(SRTTA_DEGRADATION)
    if unknown:
        raise ValueError(f'unknown degradation settings {sorted(unknown)}; known: {sorted(SRTTA_DEGRADATION)}')
    return {**SRTTA_DEGRADATION, **opt}


def types_vector(names):
    """(3,) float presence vector of the type names ``names`` (a subset of ``TYPES``)."""
    unknown = set(names) - set(TYPES)
    if unknown:
        raise ValueError(f'unknown degradation types {sorted(unknown)}; known: {list(TYPES)}')
    return torch.tensor([float(t in names) for t in TYPES])


def types_of(vector):
    """The type names present in a (3,) presence vector."""
    return [t for t, v in zip(TYPES, vector.tolist()) if v > 0.5]


def random_kernel(opt):
    """One SRTTA blur kernel (numpy ``random`` / NumPy generators), zero-padded to (21, 21); sums to 1."""
    low, high = opt['kernel_range']
    size = random.choice(range(low, high + 1, 2))
    kernel = random_mixed_kernels(opt['kernel_list'], opt['kernel_prob'], size, opt['blur_sigma'],
                                  opt['blur_sigma'], [-math.pi, math.pi], opt['betag_range'], opt['betap_range'],
                                  noise_range=None)
    pad = (KERNEL_SIZE - size) // 2
    return np.pad(kernel, ((pad, pad), (pad, pad))).astype(np.float32)


def kernel_width(kernel):
    """Blur width of a (k, k) kernel summing to 1: sqrt of the largest eigenvalue of its covariance (pixels).

    A Gaussian's sigma (its largest sigma when anisotropic), smaller when a small kernel truncates it; 0 for
    the delta kernel.
    """
    kernel = np.asarray(kernel, np.float64)
    grid = np.arange(kernel.shape[0]) - kernel.shape[0] // 2
    y, x = np.meshgrid(grid, grid, indexing='ij')
    my, mx = (kernel * y).sum(), (kernel * x).sum()
    cyy, cxx, cxy = (kernel * (y - my) ** 2).sum(), (kernel * (x - mx) ** 2).sum(), (kernel * (y - my) * (x - mx)).sum()
    return float(np.sqrt(max(np.linalg.eigvalsh([[cyy, cxy], [cxy, cxx]]).max(), 0.0)))


def identity_kernel():
    """(21, 21) delta kernel (no blur)."""
    kernel = np.zeros((KERNEL_SIZE, KERNEL_SIZE), np.float32)
    kernel[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1
    return kernel


def _rows(mask):
    return mask.nonzero(as_tuple=True)[0]


def apply_types(img, present, kernels, opt, jpeger, scale=1, noise_sigma=None):
    """D(X) of the module docstring: (B, 3, H, W) in [0, 1] -> (B, 3, H/scale, W/scale), 8-bit quantised.

    ``present``: (B, 3) bool or 0/1 over ``TYPES``; ``kernels``: (B, 21, 21) (used where blur is present);
    ``opt``: :func:`degradation_settings`; ``jpeger``: basicsr ``DiffJPEG(differentiable=False)`` on the
    same device; ``noise_sigma``: (B,) noise levels on the 0-255 scale (used where noise is present), or None
    to draw them in ``noise_range``. Noise levels, gray noise and JPEG qualities are drawn from torch's
    generator, one per row.
    """
    present = present.bool().to(img.device)
    out = img
    rows = _rows(present[:, 0])
    if len(rows):
        out = out.clone()
        out[rows] = filter2D(img[rows].contiguous(), kernels[rows].to(img))
    if scale != 1:
        h, w = out.shape[2] // scale, out.shape[3] // scale
        out = F.interpolate(out, size=(h, w), mode='bicubic', align_corners=False, antialias=True)
    out = out.clamp(0, 1)
    rows = _rows(present[:, 1])
    if len(rows):
        out = out.clone()
        low, high = opt['noise_range']
        sigma = out.new_empty(len(rows)).uniform_(low, high) if noise_sigma is None else noise_sigma[rows].to(out)
        gray = (torch.rand(len(rows), device=out.device) < opt['gray_noise_prob']).to(out)
        out[rows] = torch.clamp(out[rows] + generate_gaussian_noise_pt(out[rows], sigma, gray), 0, 1)
    rows = _rows(present[:, 2])
    if len(rows):
        out = out.clone()
        quality = out.new_empty(len(rows)).uniform_(*opt['jpeg_range'])
        out[rows] = jpeger(out[rows].contiguous(), quality=quality)
    return torch.clamp((out * 255.0).round(), 0, 255) / 255.0
