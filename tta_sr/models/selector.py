"""The GT-free selector: which candidate (``tta_sr.models.candidates``) an adaptation run hands back.

**Signal: downscaled self-validation** (the ZSSR idea). Each LR crop X (1, 3, H, W) of the judged set is taken as
the ground truth of its own downscale X_d = D_ref(X), D_ref the neutral antialiased bicubic downscaler
(``gate.reference: bicubic_aa``), the frozen branch with X's own degradation embedding, R(E_deg(X), E_img(X), X)
(``branch``), or the neutral one with X's own LR residual added back (``noise_matched``):

    X_d' = D_aa(X) + centre crop of (r - G_3 * r),    r = X - D_aa(M_0(X)),

r being what the source model M_0 removes from X (noise, JPEG; near zero on a clean LR, where X_d' = X_d) and G_3 a
Gaussian blur of 3 LR pixels, which takes out of r what is not noise (a colour cast or a shading of M_0's), so that
the input one scale down is as noisy as X, and a candidate that amplifies noise loses there as on X. A candidate c
upscales X_d (with its projection onto X_d, if it has one) and is scored against X:

    sv_psnr_y(c) = mean over crops of PSNR-Y(c(X_d), X),    sv_lpips(c) = mean of LPIPS(c(X_d), X).

It is a real reference one scale down: a blur gains PSNR there but loses LPIPS, as it would against the GT.

**Rule** (:func:`choose`; thresholds in ``gate``, declared in ``tta_sr.options.stage2.GATE``). First the branch's own
degradation estimate (:func:`degradation_estimate`) must say that its downscaler bank explains the LR: the residual
gate g(E_deg(X)) at most ``max_residual_gate``. Above it (noise, JPEG, heavy blur beyond the bank) the one-scale-down
reference X_d, a clean downscale, is not like X, and self-validation is not trusted: on the development sets it
called weight blends of a heavy-set run +0.27 dB gains that lost 0.21 dB against the GT. The source model is kept.
Otherwise a candidate is eligible when its outputs are finite and, with dP = sv_psnr_y - source's,

    dP >= ``margin_db``   and   sv_lpips <= source's + ``max_lpips_increase`` - ``lpips_per_db`` * dP

(the second term: a blur buys PSNR-Y without lowering LPIPS, so each dB of gain must come with lower LPIPS), and,
with ``max_noise_matched_loss_db`` set (0 by default), its self-validation PSNR-Y on the noise-matched input is no
more than that below the source's,

    nm_psnr_y(c) >= nm_psnr_y(source) - ``max_noise_matched_loss_db``

(X_d is a clean downscale: a candidate that amplifies the LR's own noise gains on it and loses on X; on a noisy
development set whose residual gate read 0.032 the clean reference called such a candidate +0.10 dB that lost 0.41
dB against the GT, and the noise-matched one called it -0.02 dB). The eligible one of highest sv_psnr_y is handed
back; with none, the source.
Projected candidates (none by default, ``gate.projection: []``) need a branch: self-validation cannot judge a
projection on its own (X_d is a clean downscale), and onto a noisy or compressed LR a projection copies the
degradation into the output. Without a branch (``fixed`` mode) the estimate is None: weights are judged by
self-validation alone and no projection is handed back. Every candidate's scores, the estimate, the decision and
its reason go to the log, ``metrics.json`` (``gate``) and ``report.html``.
"""
import math
from dataclasses import dataclass, field

import torch

from tta_sr.ops.back_projection import back_project
from tta_sr.ops.downscalers import downscale, gaussian_blur

Y_WEIGHTS = (65.481 / 255, 128.553 / 255, 24.966 / 255)  # ITU-R BT.601, as tta_sr.metrics.fidelity
NOISE_MATCHED_SIGMA = 3.0  # LR pixels: the residual's slow part (not noise) that the noise-matched input leaves out


def psnr_y(a, b):
    """PSNR of the Y channels of two (B, 3, H, W) images in [0, 1], per image (B,), in dB."""
    w = torch.tensor(Y_WEIGHTS, dtype=a.dtype, device=a.device).view(1, 3, 1, 1)
    mse = (((a - b) * w).sum(1) ** 2).mean(dim=(1, 2)).clamp_min(1e-12)
    return -10 * torch.log10(mse)


@torch.no_grad()
def degradation_estimate(recon, crops):
    """The branch's view of the LR crops [(1, 3, H, W)], averaged: ``blur_sigma`` = sum_k w_k sigma_k over its
    downscaler bank (w = R's prior weights of E_deg(X), sigma_k the Gaussian blur of D_k, 0 for the plain ones) and
    ``residual_gate`` = g(E_deg(X)), how much of the LR the bank leaves to the learnt residual (noise, JPEG,
    other kernels); None without a branch or a bank."""
    from tta_sr.ops.downscalers import parse_downscaler
    bank = getattr(getattr(recon, 'reconstructor', None), 'bank', None)
    if bank is None:
        return None
    sigmas = torch.tensor([parse_downscaler(name)[1] for name in bank.names])
    blur, gate = [], []
    for x in crops:
        e_d = recon.encode_degradation(x)
        blur.append(float((recon.reconstructor.prior_weights(e_d)[0].cpu() * sigmas).sum()))
        gate.append(float(recon.reconstructor.gate(e_d).mean()))
    return {'blur_sigma': sum(blur) / len(blur), 'residual_gate': sum(gate) / len(gate)}


def centre_crop(x, size):
    """The centre (h, w) = ``size`` window of a (B, C, H, W) tensor."""
    top, left = (x.shape[-2] - size[0]) // 2, (x.shape[-1] - size[1]) // 2
    return x[..., top:top + size[0], left:left + size[1]]


@torch.no_grad()
def reference_pair(x, scale, reference, recon=None, source=None):
    """(X_d, X) of one LR crop (1, 3, H, W), X cut to a multiple of ``scale``: X_d = D_ref(X) (module docstring);
    ``recon``: the branch (``branch``), ``source``: the source net M_0 (``noise_matched``)."""
    x = x[..., :x.shape[-2] // scale * scale, :x.shape[-1] // scale * scale]
    if reference == 'branch':
        x_d = recon.reconstruct(recon.encode_degradation(x), recon.encode_image(x), x)
    elif reference == 'noise_matched':
        x_d = downscale(x, scale, 'bicubic_aa')
        r = x - downscale(source(x).float(), scale, 'bicubic_aa')
        x_d = x_d + centre_crop(r - gaussian_blur(r, NOISE_MATCHED_SIGMA), x_d.shape[-2:])
    else:
        x_d = downscale(x, scale, reference)
    return x_d.clamp(0, 1), x


def all_finite(outputs):
    return all(torch.isfinite(o).all() for o in outputs)


@torch.no_grad()
def mean_psnr_y(outputs, pairs):
    """The mean over the crops of PSNR-Y(output, X) of the outputs (upscaled X_d), in dB; NaN if any output is not
    finite."""
    if not all_finite(outputs):
        return math.nan
    return sum(float(psnr_y(o.clamp(0, 1), x)[0]) for o, (_, x) in zip(outputs, pairs)) / len(pairs)


@torch.no_grad()
def self_validation_scores(outputs, pairs, lpips):
    """{'sv_psnr_y', 'sv_lpips'}: the means over the crops of the outputs (upscaled X_d) against X (NaN if any
    output is not finite)."""
    if not all_finite(outputs):
        return {'sv_psnr_y': math.nan, 'sv_lpips': math.nan}
    lpipss = [float(lpips(o.clamp(0, 1), x)[0]) for o, (_, x) in zip(outputs, pairs)]
    return {'sv_psnr_y': mean_psnr_y(outputs, pairs), 'sv_lpips': sum(lpipss) / len(lpipss)}


def projected(outputs, pairs, scale, steps, degraders):
    """The outputs projected onto their inputs X_d; ``degraders``: None (neutral) or a callable lr -> D."""
    return [back_project(o, x_d, scale, steps, degraders(x_d) if degraders else None)
            for o, (x_d, _) in zip(outputs, pairs)]


@dataclass
class Selection:
    candidates: list  # Candidate.as_dict() with its scores, source first
    chosen: int
    reason: str
    degradation: dict = None
    seconds: float = 0.0
    signals: dict = field(default_factory=dict)

    @property
    def decision(self):
        return 'source' if self.chosen == 0 else 'adapted'

    def summary(self):
        """One line for the log and the report."""
        name = self.candidates[self.chosen]['name']
        return (f'kept the source model: {self.reason}' if self.chosen == 0 else
                f'handed back {name} ({self.reason})')

    def as_dict(self):
        return {'decision': self.decision, 'chosen': self.candidates[self.chosen]['name'], 'reason': self.reason,
                'summary': self.summary(), 'candidates': self.candidates, 'degradation': self.degradation,
                'seconds': self.seconds, 'seconds_per_candidate': self.seconds / max(len(self.candidates), 1),
                **self.signals}


def distrust_reason(degradation, opt):
    """Why self-validation is not trusted on the judged crops, or None: the residual gate of ``degradation`` (see
    :func:`degradation_estimate`) above ``opt['max_residual_gate']``. Known before training, from the LR alone."""
    if degradation is None or degradation['residual_gate'] <= opt['max_residual_gate']:
        return None
    return (f'the branch sees a degradation its downscaler bank does not explain (residual gate '
            f'{degradation["residual_gate"]:.3f} > {opt["max_residual_gate"]:g}): self-validation one scale down is '
            'not trusted there')


def choose(candidates, opt, degradation):
    """Index of the candidate to hand back and the reason; ``candidates``: dicts with ``sv_psnr_y``, ``sv_lpips``
    and ``projection``, the source first; ``opt``: the resolved ``gate`` block; ``degradation``: see
    :func:`degradation_estimate` (module docstring)."""
    src = candidates[0]
    if not all(math.isfinite(src[k]) for k in ('sv_psnr_y', 'sv_lpips')):
        return 0, 'the source model\'s own scores are not finite'
    distrust = distrust_reason(degradation, opt)
    if distrust:
        return 0, distrust
    max_nm_loss = opt['max_noise_matched_loss_db']
    best, best_psnr = 0, src['sv_psnr_y'] + opt['margin_db']
    for i, c in enumerate(candidates[1:], start=1):
        finite = all(math.isfinite(c[k]) for k in ('sv_psnr_y', 'sv_lpips'))
        gain = c['sv_psnr_y'] - src['sv_psnr_y']
        lpips_limit = src['sv_lpips'] + opt['max_lpips_increase'] - opt['lpips_per_db'] * gain
        noise_ok = max_nm_loss is None or c['nm_psnr_y'] >= src['nm_psnr_y'] - max_nm_loss  # False if NaN
        if (finite and c['sv_psnr_y'] >= best_psnr and c['sv_lpips'] <= lpips_limit and noise_ok
                and (not c['projection'] or degradation is not None)):
            best, best_psnr = i, c['sv_psnr_y']
    if best == 0:
        per_db = f' and {opt["lpips_per_db"]:g} lower per dB' if opt['lpips_per_db'] else ''
        noise = '' if max_nm_loss is None else f', and no noise-matched loss over {max_nm_loss:g} dB'
        return 0, (f'no candidate gains {opt["margin_db"]:.2f} dB self-validation PSNR-Y with LPIPS within '
                   f'{opt["max_lpips_increase"]:+.3f}{per_db} of the source ({src["sv_psnr_y"]:.2f} dB, '
                   f'{src["sv_lpips"]:.4f}){noise}')
    c = candidates[best]
    noise = '' if max_nm_loss is None else f', noise-matched {c["nm_psnr_y"] - src["nm_psnr_y"]:+.2f} dB'
    return best, (f'self-validation PSNR-Y {c["sv_psnr_y"] - src["sv_psnr_y"]:+.2f} dB, LPIPS '
                  f'{c["sv_lpips"] - src["sv_lpips"]:+.4f}{noise} against the source')


__all__ = ['psnr_y', 'degradation_estimate', 'centre_crop', 'reference_pair', 'mean_psnr_y', 'self_validation_scores',
           'projected', 'Selection', 'distrust_reason', 'choose']
