"""Fixed HR -> LR downscalers D_k: (B, C, aH, aW) -> (B, C, H, W), linear in Y and differentiable.

| name | D(Y) |
| --- | --- |
| ``bicubic`` | bicubic interpolation at the LR sample positions, no antialiasing (torch, align_corners=False) |
| ``bicubic_aa`` | antialiased bicubic: the cubic kernel stretched by a (MATLAB ``imresize``, PIL) |
| ``area`` | mean of each a x a block |
| ``gauss<sigma>`` (e.g. ``gauss1.2``) | Gaussian blur of std sigma HR pixels (reflect padding, support 2 ceil(3 sigma) + 1), then area |

They serve three places: the physical prior of the reconstructor R (a mixture sum_k w_k D_k(Y) whose
weights E_deg predicts, see :class:`DownscalerBank`), the ``fixed`` stage-2 mode (a known degradation),
and the fixed baselines and blur + area oracle of ``benchmarks/branch_fidelity.py``.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

PLAIN = ('bicubic', 'bicubic_aa', 'area')


def gaussian_kernel1d(sigma, dtype=torch.float32, device=None):
    """Normalised 1-D Gaussian of std ``sigma`` on 2 ceil(3 sigma) + 1 taps (sigma > 0)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(y, sigma):
    """Separable Gaussian blur of (B, C, H, W) with std ``sigma`` pixels, reflect padding; sigma 0 is identity."""
    if sigma <= 0:
        return y
    k = gaussian_kernel1d(sigma, y.dtype, y.device)
    r = k.numel() // 2
    c = y.shape[1]
    mode = 'reflect' if min(y.shape[-2:]) > r else 'replicate'
    out = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def parse_downscaler(name):
    """'area' -> ('area', 0.0); 'gauss1.2' -> ('gauss', 1.2); unknown names raise."""
    if name in PLAIN:
        return name, 0.0
    if name.startswith('gauss'):
        try:
            sigma = float(name[len('gauss'):])
        except ValueError:
            sigma = -1.0
        if sigma >= 0:
            return 'gauss', sigma
    raise ValueError(f'unknown downscaler {name!r}: use one of {", ".join(PLAIN)} or gauss<sigma> (e.g. gauss1.2)')


def downscale(y, scale, name):
    """D_name(y): (B, C, aH, aW) -> (B, C, aH // a, aW // a); not clamped."""
    kind, sigma = parse_downscaler(name)
    if scale == 1:
        return gaussian_blur(y, sigma)
    size = (y.shape[-2] // scale, y.shape[-1] // scale)
    if kind in ('bicubic', 'bicubic_aa'):
        return F.interpolate(y, size=size, mode='bicubic', align_corners=False, antialias=kind == 'bicubic_aa')
    y = gaussian_blur(y, sigma)
    return F.avg_pool2d(y[..., :size[0] * scale, :size[1] * scale], scale)


class DownscalerBank(nn.Module):
    """A mixture of fixed downscalers: D_w(Y) = sum_k w_k D_k(Y), w (B, K) on the simplex.

    Args:
        names: the K downscalers (see the module table).
        scale: a.

    forward(y (B, C, aH, aW), weights (B, K)) -> (B, C, H, W)
    """

    def __init__(self, names, scale):
        super().__init__()
        if not names:
            raise ValueError('DownscalerBank needs at least one downscaler name')
        for name in names:
            parse_downscaler(name)
        self.names, self.scale = list(names), int(scale)

    def all(self, y):
        """(B, K, C, H, W): every D_k(y)."""
        return torch.stack([downscale(y, self.scale, name) for name in self.names], dim=1)

    def forward(self, y, weights):
        if weights.shape != (y.shape[0], len(self.names)):
            raise ValueError(f'DownscalerBank: weights must be ({y.shape[0]}, {len(self.names)}), got '
                             f'{tuple(weights.shape)}')
        return (weights[:, :, None, None, None] * self.all(y)).sum(dim=1)

    def extra_repr(self):
        return f'scale={self.scale}, names={self.names}'


__all__ = ['PLAIN', 'gaussian_kernel1d', 'gaussian_blur', 'parse_downscaler', 'downscale', 'DownscalerBank']
