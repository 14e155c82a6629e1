"""L_rec, the LR reconstruction loss (LWay): L1 + LPIPS, optionally weighted by the DWT map W.

    L_rec(X_hat, X)    = loss_weight * (l1_weight * L1(X_hat, X) + lpips_weight * LPIPS(X_hat, X))
    L_rec(X_hat, X; W) = loss_weight * (l1_weight * L1(W*X_hat, W*X) + lpips_weight * LPIPS(W*X_hat, W*X))

L1 is the mean absolute error over all elements, LPIPS the batch mean of the per-image distance
(``tta_sr.archs.lpips_arch.build_lpips``; 32 x 32 crops are upsampled inside to 64 x 64).
The LPIPS network is shared per process and not part of this module's state dict.
"""
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F

from tta_sr.archs.lpips_arch import build_lpips


@LOSS_REGISTRY.register()
class ReconstructionLoss(nn.Module):
    """L1 + LPIPS reconstruction loss.

    Args:
        l1_weight, lpips_weight: term weights (lpips_weight 0 skips building LPIPS).
        lpips_kind: 'auto' | 'lpips' | 'stlpips' (see build_lpips).
        lpips_net: 'alex' | 'vgg'.
        loss_weight: overall weight.

    forward(pred (B, 3, H, W), target (B, 3, H, W), weight (B, 1, H, W) in [0, 1] or None) -> scalar.
    Attribute ``lpips_name``: the LPIPS actually used (None if lpips_weight is 0).
    """

    def __init__(self, l1_weight=1.0, lpips_weight=1.0, lpips_kind='auto', lpips_net='alex', loss_weight=1.0):
        super().__init__()
        self.l1_weight = l1_weight
        self.lpips_weight = lpips_weight
        self.lpips_kind = lpips_kind
        self.lpips_net = lpips_net
        self.loss_weight = loss_weight
        self._lpips = [build_lpips(lpips_kind, lpips_net)] if lpips_weight else []  # list: not a submodule
        self.lpips_name = self._lpips[0].name if self._lpips else None
        self.lpips_is_fallback = self._lpips[0].is_fallback if self._lpips else False

    def _lpips_on(self, device):
        metric = self._lpips[0]
        if next(metric.buffers()).device != device:
            metric = build_lpips(self.lpips_kind, self.lpips_net, device=device)
            self._lpips[0] = metric
        return metric

    def forward(self, pred, target, weight=None):
        if pred.shape != target.shape:
            raise ValueError(f'ReconstructionLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ')
        if weight is not None:
            pred, target = weight * pred, weight * target
        loss = self.l1_weight * F.l1_loss(pred, target)
        if self.lpips_weight:
            loss = loss + self.lpips_weight * self._lpips_on(pred.device)(pred, target).mean()
        return self.loss_weight * loss


__all__ = ['ReconstructionLoss']
