"""HQI (HR-image quality index) and the controller s of the HR-aware method.

    HQI(X, Y) = clamp(1 - LPIPS(f_up(X), Y), 0, 1)          per image, no gradient
    stage 1 (pretrain):  s = n + (1 - HQI(X_s, Y_gt))
    stage 2 (finetune):  s = n + HQI(X_r, M(X_r))            (flip_sign=True: s = n + 1 - HQI, Table 4 ablation)
    n ~ N(0, noise_std^2 I_{C_d})                            (paper: noise_std = 1)

f_up is bicubic upsampling of the LR image to the HR image's size (output clamped to [0, 1]).
s multiplies the degradation embedding: X_hat = R(s * e_d, e_im).
"""
import torch
from torch.nn import functional as F

STAGES = ('pretrain', 'finetune')


@torch.no_grad()
def hqi(x_lr, y_hr, lpips_fn):
    """x_lr (B, 3, H, W), y_hr (B, 3, aH, aW), both in [0, 1]; lpips_fn(a, b) -> (B,). Returns HQI (B,) in [0, 1]."""
    up = F.interpolate(x_lr, size=y_hr.shape[-2:], mode='bicubic', align_corners=False).clamp(0, 1)
    dist = lpips_fn(up, y_hr).reshape(x_lr.shape[0])
    return (1 - dist).clamp(0, 1).detach()


def controller_scale(hqi_values, emb_dim, stage, noise_std=1.0, flip_sign=False, generator=None):
    """Controller s (B, emb_dim) from per-image HQI values (B,).

    Args:
        hqi_values: (B,) in [0, 1] (detached).
        emb_dim: C_d.
        stage: 'pretrain' (s = n + 1 - HQI) or 'finetune' (s = n + HQI).
        noise_std: std of n; 0 gives the deterministic part only.
        flip_sign: finetune only: use n + 1 - HQI instead (ablation). Ignored in 'pretrain'.
        generator: optional torch.Generator for n (on its own device; n is moved to hqi's device).
    """
    if stage not in STAGES:
        raise ValueError(f'controller stage must be one of {STAGES}, got {stage!r}')
    h = hqi_values.detach().reshape(-1, 1)
    if stage == 'pretrain' or flip_sign:
        base = 1 - h
    else:
        base = h
    s = base.expand(h.shape[0], emb_dim)
    if noise_std:
        gen_device = generator.device if generator is not None else h.device
        noise = torch.randn(h.shape[0], emb_dim, generator=generator, device=gen_device, dtype=h.dtype)
        s = s + noise_std * noise.to(h.device)
    else:
        s = s.clone()
    return s


__all__ = ['hqi', 'controller_scale']
