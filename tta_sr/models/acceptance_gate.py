"""The GT-free acceptance gate of stage 2: keep the adapted model only if, on held-out LR photos, it beats the
source model by criteria that the training loss does not optimise directly.

Per image, with X the real LR (1, 3, H, W) and S = M(X) (1, 3, aH, aW), all in [0, 1]:

| criterion | value | the adapted model must |
| --- | --- | --- |
| ``consistency`` | PSNR(D(S), X) in dB, D a neutral downscaler (``downscaler``, default antialiased bicubic) | gain at least ``min_gain_db`` |
| ``halo`` | 255 * mean(relu(S - max_5(U)) + relu(min_5(U) - S)), U the bicubic upscale of X, max_5/min_5 over 5 x 5 windows: what overshoots the local range of a smooth reference (halos, ringing; in the spirit of DeSRA) | stay within (1 + ``max_halo_increase``) x the source's + 0.05; the default -0.05 asks for 5% less overshoot than the source model |
| ``colour`` | 255 * mean_c abs(mean(D(S)_c) - mean(X_c)): a tone or colour cast against the LR | not exceed the source's by more than ``max_colour_increase`` (8-bit levels) |
| ``texture`` | LPIPS(U, S - mean(S) + mean(U)) (means per channel): how far the output is, perceptually, from the plain bicubic upscale U, whatever its tones (those are ``colour``'s) | keep at least ``min_texture_ratio`` of the source's: consistency with the LR can be bought by moving the output towards a blur (PSNR up, LPIPS up), and that is not a gain |

Values are averaged over the images; non-finite outputs fail. :func:`decide` returns the decision with its
reason and figures, which the log, ``metrics.json`` and ``report.html`` repeat. The thresholds' defaults
(declared once, in ``tta_sr.options.stage2.GATE``) were chosen on development sets (BSD68 degraded heavily and mildly), never on a reported set; see
``docs/adaptation.md``. A Laplacian detail ratio was tried first and dropped: on the development sets an
adapted model lost 0.036 LPIPS with 97% of the source's Laplacian energy, while the texture ratio fell to 0.88.
"""
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from tta_sr.ops.downscalers import downscale

CRITERIA = ('consistency', 'halo', 'colour', 'texture')


@torch.no_grad()
def image_criteria(lr, sr, scale, downscaler='bicubic_aa'):
    """{criterion: float} of one LR image (1, 3, H, W) and its SR output (1, 3, aH, aW) in [0, 1].

    LPIPS is ``tta_sr.archs.lpips_arch.build_lpips()`` on the images' device (built once per process).
    """
    from tta_sr.archs.lpips_arch import build_lpips
    sr = sr.float()
    if not torch.isfinite(sr).all():
        return {name: math.nan for name in CRITERIA}
    down = downscale(sr, scale, downscaler)
    mse = torch.mean((down.clamp(0, 1) - lr) ** 2).clamp_min(1e-12)
    ref = F.interpolate(lr, size=sr.shape[-2:], mode='bicubic', align_corners=False).clamp(0, 1)
    hi, lo = F.max_pool2d(ref, 5, 1, 2), -F.max_pool2d(-ref, 5, 1, 2)
    return {'consistency': float(-10 * torch.log10(mse)),
            'halo': float(255 * (F.relu(sr - hi) + F.relu(lo - sr)).mean()),
            'colour': float(255 * (down.mean(dim=(2, 3)) - lr.mean(dim=(2, 3))).abs().mean()),
            'texture': float(build_lpips(device=sr.device)(ref, (sr - sr.mean(dim=(2, 3), keepdim=True) +
                                                                ref.mean(dim=(2, 3), keepdim=True)).clamp(0, 1)))}


def mean_criteria(per_image):
    """Mean of each criterion over a list of :func:`image_criteria` dicts (NaN if any image is NaN)."""
    return {name: float(np.mean([c[name] for c in per_image])) for name in CRITERIA}


@dataclass
class GateDecision:
    accepted: bool
    reason: str
    source: dict
    adapted: dict
    failed: list = field(default_factory=list)

    def summary(self):
        """One line for the log and the report: 'kept the adapted model (...)' or 'kept the source model: ...'."""
        return f'kept the adapted model ({self.reason})' if self.accepted else f'kept the source model: {self.reason}'

    def as_dict(self):
        return {'decision': 'adapted' if self.accepted else 'source', 'reason': self.reason, 'failed': self.failed,
                'summary': self.summary(), 'source': self.source, 'adapted': self.adapted}


def decide(source, adapted, opt):
    """GateDecision from the mean criteria of the source and the adapted model (``opt``: the resolved ``gate`` block, ``tta_sr.options.stage2.GATE``)."""
    if not all(math.isfinite(v) for v in adapted.values()):
        return GateDecision(False, 'the adapted model gives non-finite outputs', source, adapted, ['finite'])
    gain = adapted['consistency'] - source['consistency']
    halo_limit = source['halo'] * (1 + opt['max_halo_increase']) + 0.05
    colour_limit = source['colour'] + opt['max_colour_increase']
    texture_ratio = adapted['texture'] / max(source['texture'], 1e-8)
    checks = [
        ('consistency', gain >= opt['min_gain_db'],
         f'LR consistency {gain:+.3f} dB (needs {opt["min_gain_db"]:+.3f})'),
        ('halo', adapted['halo'] <= halo_limit, f'halo score {adapted["halo"]:.3f} vs {source["halo"]:.3f} '
                                                f'(limit {halo_limit:.3f})'),
        ('colour', adapted['colour'] <= colour_limit, f'colour shift {adapted["colour"]:.2f} vs {source["colour"]:.2f} '
                                                      f'levels (limit {colour_limit:.2f})'),
        ('texture', texture_ratio >= opt['min_texture_ratio'],
         f'texture ratio {texture_ratio:.3f} (needs {opt["min_texture_ratio"]:.2f})'),
    ]
    failed = [name for name, ok, _ in checks if not ok]
    figures = '; '.join(text for _, _, text in checks)
    if failed:
        return GateDecision(False, f'{", ".join(failed)} failed ({figures})', source, adapted, failed)
    return GateDecision(True, figures, source, adapted)


__all__ = ['CRITERIA', 'image_criteria', 'mean_criteria', 'GateDecision', 'decide']
