"""A degradation-contrastive loss on E_deg (InfoNCE, as DASR, Wang et al., CVPR 2021).

Two LR patches that went through the same degradation (the same draw of kernels, noise, JPEG) are a
positive pair; every other patch of the batch is a negative. With z = e_d / ||e_d|| and
S_ij = <z^a_i, z^b_j> / tau (B x B):

    L_con = loss_weight * (CE(S, diag) + CE(S^T, diag)) / 2

so E_deg is taught to say *how* an image was degraded, whatever it shows.
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


@LOSS_REGISTRY.register()
class DegradationContrastiveLoss(nn.Module):
    """forward(e_a (B, C), e_b (B, C)) -> scalar; row i of e_a and of e_b share a degradation.

    Args:
        temperature: tau.
        loss_weight: the loss's weight in L_pt.
    """

    def __init__(self, temperature=0.1, loss_weight=1.0):
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, e_a, e_b):
        if e_a.shape != e_b.shape or e_a.dim() != 2:
            raise ValueError(f'DegradationContrastiveLoss needs two (B, C) embeddings, got {tuple(e_a.shape)} '
                             f'and {tuple(e_b.shape)}')
        logits = F.normalize(e_a, dim=1) @ F.normalize(e_b, dim=1).t() / self.temperature
        target = torch.arange(e_a.shape[0], device=e_a.device)
        return self.loss_weight * 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


__all__ = ['DegradationContrastiveLoss']
