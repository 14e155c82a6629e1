"""FAR, the Feature-Alignment Regularizer of the HR-aware method.

For a feature map e in R^{C x H x W}, F = flatten(e) in R^{C x HW} and

    G(e)     = F F^T / (H W)                   (C x C; scale-free across image sizes)
    with ``normalize``: G(e) = F_n F_n^T, F_n = F with each channel (row) divided by its L2 norm (entries are
    cosine similarities in [-1, 1])
    S_avg(e) = mean over the last axis of G(e) in R^C
    S_max(e) = max  over the last axis of G(e) in R^C
    L_far(e_im, e_cl) = || T_a S_avg(e_im) - S_avg(e_cl) ||_2 + || T_m S_max(e_im) - S_max(e_cl) ||_2
    Phi_far(Y) = mean over the batch of L_far(E_img(Y), E_clip(Y))

T_a, T_m: Linear(C_im -> C_cl), trained only in stage 1 (freeze the loss module in stage 2).
The norms are Euclidean norms of C_cl-vectors (the paper's Frobenius norm).

Plain Gram entries grow with the square of the feature scale, and so, roughly, with the square of the
image's intensity: in stage 2 FAR could be lowered by darkening M's output (measured: the mean red of
City100 outputs fell from 107 to 94). The normalised descriptors depend on the feature directions only,
so a brightness change alone no longer moves them. The choice is made in stage 1 (T_a, T_m learn against
it) and travels with the branch's ``far_opt``.
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn


def gram_matrix(e, normalize=False):
    """e (B, C, H, W) (or (B, C, N)) -> G (B, C, C) = F F^T / N, F = e.flatten(2), N = H W; with ``normalize``,
    the Gram matrix of the channels scaled to unit L2 norm (cosine similarities)."""
    feat = e.flatten(2)
    if normalize:
        feat = torch.nn.functional.normalize(feat, dim=2, eps=1e-6)
        return torch.bmm(feat, feat.transpose(1, 2))
    return torch.bmm(feat, feat.transpose(1, 2)) / feat.shape[-1]


def gram_descriptors(e, normalize=False):
    """e (B, C, H, W) -> (S_avg (B, C), S_max (B, C)): mean and max over the last axis of G(e)."""
    gram = gram_matrix(e, normalize)
    return gram.mean(dim=-1), gram.amax(dim=-1)


@LOSS_REGISTRY.register()
class FARLoss(nn.Module):
    """Phi_far as a BasicSR loss.

    Args:
        in_channels: channels of e_im (E_img's num_feat).
        target_channels: channels of e_cl (the frozen encoder's ``out_channels``).
        loss_weight: lambda (lambda_pt / lambda_ft).
        normalize: Gram matrices of channel-normalised features (intensity-scale invariant), see above.

    forward(e_im (B, in_channels, H, W), e_cl (B, target_channels, H_c, W_c)) -> scalar
    """

    def __init__(self, in_channels=64, target_channels=256, loss_weight=1.0, normalize=False):
        super().__init__()
        self.normalize = normalize
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
        s_avg_im, s_max_im = gram_descriptors(e_im, self.normalize)
        s_avg_cl, s_max_cl = gram_descriptors(e_cl.to(e_im.dtype), self.normalize)
        dist = (torch.linalg.vector_norm(self.T_a(s_avg_im) - s_avg_cl, dim=1) +
                torch.linalg.vector_norm(self.T_m(s_max_im) - s_max_cl, dim=1))
        return self.loss_weight * dist.mean()


__all__ = ['gram_matrix', 'gram_descriptors', 'FARLoss']
