"""What an adaptation run can hand back: a small family of candidates that always holds the source model M_0.

A candidate is weights and an output stage:
- weights theta_0 + alpha (theta_k - theta_0), theta_0 the source, theta_k the adapted weights at checkpoint k (a
  validation, or the end); alpha = 1 is the checkpoint itself, 0 < alpha < 1 a weight-space blend (WiSE-FT,
  Wortsman et al., CVPR 2022; ESRGAN's network interpolation; Real-ESRGAN's ``--denoise_strength``);
- optionally, the LR-consistency projection of its output (``tta_sr.ops.back_projection``), through a neutral
  downscaler (``bicubic_aa``) or through the frozen branch R (``branch``).

:func:`candidate_family` lists them: the source, every checkpoint, the blends of the last checkpoint, and each of
these again with each projection kind.
"""
from dataclasses import dataclass


def blend_state(source, adapted, alpha):
    """theta_0 + alpha (theta - theta_0) for every floating-point entry of the state dicts; other entries (counters)
    are ``adapted``'s. alpha 0 gives the source, 1 the adapted weights."""
    return {k: source[k] + alpha * (v - source[k]) if v.is_floating_point() else v for k, v in adapted.items()}


@dataclass(frozen=True)
class Candidate:
    iteration: int = None  # the checkpoint blended; None: the source model
    alpha: float = 0.0
    projection: str = None  # None, 'bicubic_aa' or 'branch'

    @property
    def name(self):
        weights = 'source' if self.iteration is None else f'iter {self.iteration}' + (
            '' if self.alpha == 1 else f' x{self.alpha:g}')
        return weights + (f' + projection ({self.projection})' if self.projection else '')

    @property
    def is_source(self):
        return self.iteration is None and not self.projection

    def as_dict(self):
        return {'name': self.name, 'iteration': self.iteration, 'alpha': self.alpha, 'projection': self.projection}


def candidate_family(iterations, alphas, projections=()):
    """[source, each checkpoint of ``iterations`` (alpha 1), the last checkpoint at each alpha of ``alphas`` in
    (0, 1)], then each of them again with each projection kind; the source comes first."""
    weights = [Candidate()] + [Candidate(it, 1.0) for it in sorted(iterations)]
    if iterations:
        weights += [Candidate(max(iterations), float(a)) for a in sorted(alphas) if 0 < a < 1]
    return weights + [Candidate(c.iteration, c.alpha, kind) for kind in projections for c in weights]


__all__ = ['blend_state', 'Candidate', 'candidate_family']
