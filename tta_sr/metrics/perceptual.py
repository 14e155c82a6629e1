"""LPIPS (Zhang et al. 2018) as an evaluation metric: ``d(sr, gt) = sum_l mean_hw || w_l . (phi_l(sr) - phi_l(gt)) ||^2``
with unit-normalised AlexNet features ``phi_l``; lower is better.

The network comes from ``tta_sr.archs.lpips_arch.build_lpips(kind, net)`` (the same module the
reconstruction loss and the HQI use), so its ``name`` (for example ``'LPIPS-alex (lpips)'`` or the
offline fallback ``'ST-LPIPS-alex (stlpips-pytorch)'``) is recorded as the metric's weights.
"""
import torch

from tta_sr.utils.image_io import to_tensor  # noqa: F401  (also used by no_reference)


class LPIPSScorer:
    """Callable ``(sr, gt) -> float`` around a frozen ``build_lpips`` network; ``weights`` names the backend."""

    def __init__(self, kind='auto', net='alex', device='cpu'):
        from tta_sr.archs.lpips_arch import build_lpips
        self.device = torch.device(device)
        self.net = build_lpips(kind=kind, net=net, device=self.device)
        self.weights = self.net.name + (' [offline fallback]' if getattr(self.net, 'is_fallback', False) else '')

    def __call__(self, sr, gt):
        with torch.inference_mode():
            return float(self.net(to_tensor(sr, self.device), to_tensor(gt, self.device)).reshape(-1)[0])
