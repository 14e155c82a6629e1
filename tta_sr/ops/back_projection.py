"""LR-consistency projection of an SR output: iterative back-projection (Irani & Peleg, 1991).

With X the LR image (B, 3, H, W), S_0 the SR output (B, 3, aH, aW), U bicubic upsampling by a and D a downscaler
(B, 3, aH, aW) -> (B, 3, H, W):

    S_{k+1} = S_k + U(X - D(S_k)),   k = 0 .. steps - 1.

For a linear D the LR residual obeys r_{k+1} = (I - D U) r_k, so it goes to 0 when the spectrum of D U lies in
(0, 2) (antialiased bicubic or area D with bicubic U: a low-pass near the identity). D is a neutral downscaler of
``tta_sr.ops.downscalers`` or any callable, e.g. the frozen reconstruction branch R with the image's own degradation
embedding. The projection pulls S towards outputs whose downscale is X: it removes colour and tone drift and
restores detail the LR holds, but it also copies the LR's noise and artefacts into S (harmful on noisy LR).

:class:`BackProjected` wraps a network so that every call is projected onto its own input, tile by tile under
``tta_sr.utils.tiling`` (the projection is local: each step spreads a pixel's residual by a few LR pixels).
"""
import torch
from torch import nn
from torch.nn import functional as F

from tta_sr.ops.downscalers import downscale

NEUTRAL = 'bicubic_aa'


def back_project(sr, lr, scale, steps, degrade=None):
    """S_steps of the iteration above (float, not clamped: a clamp would undo the consistency the iteration reaches
    where S leaves [0, 1]; tiled inference clamps its output); ``degrade``: D as a callable, or None for the
    antialiased bicubic downscaler."""
    degrade = degrade or (lambda s: downscale(s, scale, NEUTRAL))
    s = sr.float()
    for _ in range(steps):
        s = s + F.interpolate(lr - degrade(s), scale_factor=scale, mode='bicubic', align_corners=False)
    return s


def branch_degrader(recon):
    """``degrader(lr)`` -> D: the frozen branch R with lr's own degradation embedding, D(S) = R(E_deg(X), E_img(S), S)."""
    def degrader(lr):
        e_d = recon.encode_degradation(lr)
        return lambda s: recon.reconstruct(e_d, recon.encode_image(s), s)
    return degrader


class BackProjected(nn.Module):
    """``net`` (a module, or any callable such as ``tta_sr.utils.inference_precision.PreparedNet``) followed by
    :func:`back_project` onto the net's own input: forward(x) = BP(net(x), x), in float32.

    ``degrader``: None (neutral D) or a callable lr -> D (e.g. :func:`branch_degrader`)."""

    def __init__(self, net, scale, steps, degrader=None):
        super().__init__()
        self.net, self.scale, self.steps, self.degrader = net, scale, steps, degrader
        self.train(getattr(net, 'training', False))

    @torch.no_grad()
    def forward(self, x):
        degrade = self.degrader(x) if self.degrader is not None else None
        return back_project(self.net(x).float(), x.float(), self.scale, self.steps, degrade)


__all__ = ['NEUTRAL', 'back_project', 'branch_degrader', 'BackProjected']
