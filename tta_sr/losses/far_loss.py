"""FAR, the Feature-Alignment Regularizer of the HR-aware method.

For a feature map e in R^{C x H x W}, F = flatten(e) in R^{C x HW} and

    G(e)     = F F^T / (H W)                   (C x C; scale-free across image sizes)
    S_avg(e) = mean over the last axis of G(e) in R^C
    S_max(e) = max  over the last axis of G(e) in R^C
    L_far(e_im, e_cl) = || T_a S_avg(e_im) - S_avg(e_cl) ||_2 + || T_m S_max(e_im) - S_max(e_cl) ||_2
    Phi_far(Y) = mean over the batch of L_far(E_img(Y), E_clip(Y))

T_a, T_m: Linear(C_im -> C_cl), trained only in stage 1 (freeze the loss module in stage 2).
The norms are Euclidean norms of C_cl-vectors (the paper's Frobenius norm).
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


def gram_matrix(e):
    """e (B, C, H, W) (or (B, C, N)) -> G (B, C, C) = F F^T / N, F = e.flatten(2), N = H W."""
    feat = e.flatten(2)
    return torch.bmm(feat, feat.transpose(1, 2)) / feat.shape[-1]


def gram_descriptors(e):
    """e (B, C, H, W) -> (S_avg (B, C), S_max (B, C)): mean and max over the last axis of G(e)."""
    gram = gram_matrix(e)
    return gram.mean(dim=-1), gram.amax(dim=-1)


@LOSS_REGISTRY.register()
class FARLoss(nn.Module):
    """Phi_far as a BasicSR loss.

    Args:
        in_channels: channels of e_im (E_img's num_feat).
        target_channels: channels of e_cl (the frozen encoder's ``out_channels``).
        loss_weight: lambda (lambda_pt / lambda_ft).

    forward(e_im (B, in_channels, H, W), e_cl (B, target_channels, H_c, W_c)) -> scalar
    """

    def __init__(self, in_channels=64, target_channels=256, loss_weight=1.0):
        super().__init__()
        self.in_channels = in_channels
        self.target_channels = target_channels
        self.loss_weight = loss_weight
        self.T_a = nn.Linear(in_channels, target_channels)
        self.T_m = nn.Linear(in_channels, target_channels)

    def forward(self, e_im, e_cl):
        if e_im.shape[1] != self.in_channels or e_cl.shape[1] != self.target_channels:
            raise ValueError(f'FARLoss(in_channels={self.in_channels}, target_channels={self.target_channels}) got '
                             f'e_im {tuple(e_im.shape)} and e_cl {tuple(e_cl.shape)}; set target_channels to the '
                             f'encoder\'s out_channels.')
        if e_im.shape[0] != e_cl.shape[0]:
            raise ValueError(f'FARLoss: batch sizes differ ({e_im.shape[0]} vs {e_cl.shape[0]})')
        s_avg_im, s_max_im = gram_descriptors(e_im)
        s_avg_cl, s_max_cl = gram_descriptors(e_cl.to(e_im.dtype))
        dist = (torch.linalg.vector_norm(self.T_a(s_avg_im) - s_avg_cl, dim=1) +
                torch.linalg.vector_norm(self.T_m(s_max_im) - s_max_cl, dim=1))
        return self.loss_weight * dist.mean()


__all__ = ['gram_matrix', 'gram_descriptors', 'FARLoss']
