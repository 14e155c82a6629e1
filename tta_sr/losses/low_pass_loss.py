"""L1 between the low frequencies of two images, and optionally between their details: the anchors of stage 2.

    L_lp(P, T) = loss_weight * mean | G_sigma(P) - G_sigma(T) |
               + detail_weight * mean | (P - G_sigma(P)) - (T - G_sigma(T)) |     (G: Gaussian blur, std sigma pixels)

Two uses in HRAwareTTAModel, each an option:
- ``train.source_opt``: P = M(X_r), T = M_src(X_r), the frozen source model's output (sigma in HR pixels). The
  low-frequency term keeps the content and tones the source model already got right (SRTTA's consistency to
  the source); with ``detail_weight`` = 0 the detail is free, and over long runs it drifts into sharpening that
  the photos do not support, so the shipped templates hold it too (``detail_weight: 1``, docs/adaptation.md).
- ``train.color_opt``: P = down_aa(M(X_r)), T = X_r (sigma in LR pixels): a brightness and colour anchor to the
  real LR photo, which neither FAR nor LPIPS constrains.
"""
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F

from tta_sr.ops.downscalers import gaussian_blur


@LOSS_REGISTRY.register()
class LowPassL1Loss(nn.Module):
    """forward(pred (B, C, H, W), target (B, C, H, W)) -> scalar.

    Args:
        sigma: std of the Gaussian low-pass, in pixels of the compared images.
        loss_weight: the weight of the low-frequency term.
        detail_weight: the weight of the detail term (the band above the low-pass); 0 (default) leaves it free.
    """

    def __init__(self, sigma=2.0, loss_weight=1.0, detail_weight=0.0):
        super().__init__()
        self.sigma = sigma
        self.loss_weight = loss_weight
        self.detail_weight = detail_weight

    def forward(self, pred, target):
        if pred.shape != target.shape:
            raise ValueError(f'LowPassL1Loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ')
        pred_low, target_low = gaussian_blur(pred, self.sigma), gaussian_blur(target, self.sigma)
        loss = self.loss_weight * F.l1_loss(pred_low, target_low)
        if self.detail_weight:
            loss = loss + self.detail_weight * F.l1_loss(pred - pred_low, target - target_low)
        return loss


__all__ = ['LowPassL1Loss']
