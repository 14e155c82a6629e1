"""Direct supervision of R's physical prior in stage 1: which downscaler of the bank explains X best.

For a pair (X, Y) and the bank's candidates D_k(Y), k = 1..K, with P_k = PSNR(D_k(Y), X) in dB:

    q = softmax(P / T)                       # the target: the best-explaining downscalers, temperature T dB
    L_prior = loss_weight * CE(logits, q)    # logits = P e_d, the prior head of R (before its softmax)

The reconstruction loss reaches the bank weights only through the mixture, and the learnt residual can
absorb what a wrong mixture misses; this loss tells E_deg directly how wide a blur the pair went through,
which is what stage 2 needs it to say about a real photo.
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


@LOSS_REGISTRY.register()
class PriorSelectionLoss(nn.Module):
    """forward(logits (B, K), candidates (B, K, C, H, W), x (B, C, H, W)) -> scalar.

    Args:
        temperature: T, in dB of PSNR.
        loss_weight: the loss's weight in L_pt.
    """

    def __init__(self, temperature=0.5, loss_weight=1.0):
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight

    @staticmethod
    @torch.no_grad()
    def target(candidates, x, temperature):
        """q (B, K): softmax over k of PSNR(D_k(Y), X) / T."""
        mse = (candidates.clamp(0, 1) - x[:, None]).pow(2).flatten(2).mean(dim=2)
        return F.softmax(-10 * torch.log10(mse.clamp_min(1e-10)) / temperature, dim=1)

    def forward(self, logits, candidates, x):
        if candidates.shape[:2] != logits.shape or candidates.shape[2:] != x.shape[1:]:
            raise ValueError(f'PriorSelectionLoss: logits {tuple(logits.shape)}, candidates {tuple(candidates.shape)} '
                             f'and x {tuple(x.shape)} do not match')
        q = self.target(candidates, x, self.temperature)
        return self.loss_weight * -(q * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


__all__ = ['PriorSelectionLoss']
