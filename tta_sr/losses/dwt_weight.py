"""LWay's high-frequency weight map W for the stage-2 loss.

    L = L1(W * X_hat, W * X) + LPIPS(W * X_hat, W * X)

W is computed from the LR input X only (no gradient):

    (LL, (LH, HL, HH)) = DWT_1level(gray(X))        # pywt.dwt2, default wavelet 'haar'
    M = sqrt(LH^2 + HL^2 + HH^2)                     # (ceil(H/2), ceil(W/2)) for 'haar'
    W = up(M) / max(up(M))                           # bilinear back to H x W, per image in [0, 1]

A flat image has no detail coefficients, so W = 0 everywhere (no division by zero, no NaN).

Note on 'haar': it pairs pixels (2k, 2k+1), so a step edge lying exactly between an odd and the
next even pixel gives no detail coefficient; natural images rarely have such perfectly aligned
edges, but synthetic test patterns must put edges inside a pair. Use a longer wavelet (e.g.
'db2') when this matters.
"""
import numpy as np
import pywt
import torch
from torch.nn import functional as F

_GRAY = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma


@torch.no_grad()
def high_frequency_weight(x, wavelet='haar', mode='symmetric', use_gray=True, normalize='max', eps=1e-12):
    """High-frequency weight map of LR images.

    Args:
        x: (B, 3, H, W) (or (B, 1, H, W)) in [0, 1]; any device/dtype.
        wavelet: pywt wavelet name for the one-level ``pywt.dwt2``.
        mode: pywt signal extension mode.
        use_gray: True: DWT of the BT.601 luma; False: DWT per channel, magnitudes averaged.
        normalize: 'max' (W = M / max M, low-frequency areas stay at 0) or 'minmax'
            (W = (M - min M) / (max M - min M)). Both per image; a flat image gives all zeros.
        eps: images whose max magnitude is below this are treated as flat.

    Returns:
        W: (B, 1, H, W) in [0, 1], same device and dtype as ``x``, detached.
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f'high_frequency_weight expects (B, 3, H, W) or (B, 1, H, W), got {tuple(x.shape)}')
    if normalize not in ('max', 'minmax'):
        raise ValueError(f"normalize must be 'max' or 'minmax', got {normalize!r}")
    b, c, h, w = x.shape
    arr = x.detach().to('cpu', torch.float64).numpy()
    if c == 3 and use_gray:
        arr = np.tensordot(np.asarray(_GRAY), arr, axes=([0], [1]))[:, None]  # (B, 1, H, W)
    _, (lh, hl, hh) = pywt.dwt2(arr, wavelet, mode=mode, axes=(-2, -1))
    mag = np.sqrt(lh ** 2 + hl ** 2 + hh ** 2).mean(axis=1, keepdims=True)  # (B, 1, h', w')
    mag = torch.from_numpy(np.ascontiguousarray(mag))
    mag = F.interpolate(mag, size=(h, w), mode='bilinear', align_corners=False).clamp_min_(0)
    flat = mag.flatten(1)
    hi = flat.amax(dim=1).view(b, 1, 1, 1)
    lo = flat.amin(dim=1).view(b, 1, 1, 1) if normalize == 'minmax' else torch.zeros_like(hi)
    span = hi - lo
    weight = torch.where(span > eps, (mag - lo) / span.clamp_min(eps), torch.zeros_like(mag))
    return weight.clamp_(0, 1).to(device=x.device, dtype=x.dtype)


__all__ = ['high_frequency_weight']
