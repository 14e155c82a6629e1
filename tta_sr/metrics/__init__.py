"""Evaluation metrics with one interface: ``create_metric(name) -> Metric``.

=========  ===============  ==============  ====================================================
name       better           reference       implementation / weights
=========  ===============  ==============  ====================================================
psnr_y     higher (dB)      full            basicsr ``calculate_psnr``, Y of YCbCr, crop = scale
ssim       higher           full            basicsr ``calculate_ssim``, Y of YCbCr, crop = scale
lpips      lower            full            ``tta_sr.archs.lpips_arch.build_lpips`` (AlexNet)
niqe       lower            none            basicsr ``calculate_niqe``, pristine params shipped in basicsr
nrqm       higher           none            pyiqa NRQM, only if ``NRQM_model.mat`` is in pyiqa's cache
=========  ===============  ==============  ====================================================

Inputs: ``np.float32`` RGB ``(H, W, 3)`` in [0, 1], quantised to 8 bits before scoring (BasicSR's
``tensor2img`` convention; ``quantize=False`` scores the floats as they are).
"""
from tta_sr.metrics.base import Metric, check_image, to_uint8_grid
from tta_sr.options.stage2 import DEFAULT_METRICS  # noqa: F401 (re-exported: the one default metric list)

METRIC_NAMES = ('psnr_y', 'ssim', 'lpips', 'niqe', 'nrqm')
_ALIASES = {'psnr': 'psnr_y', 'psnry': 'psnr_y', 'ssim_y': 'ssim', 'lpips_alex': 'lpips'}


def canonical_name(name):
    """Lower-cased metric name with aliases resolved (``'PSNR'`` -> ``'psnr_y'``), or raise listing the names."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METRIC_NAMES:
        raise ValueError(f'unknown metric {name!r}; choose from {", ".join(METRIC_NAMES)}')
    return key


def create_metric(name, device='cpu', scale=4, crop_border=None, quantize=True, lpips_kind='auto', lpips_net='alex'):
    """Build a metric by name.

    Args:
        name (str): one of ``METRIC_NAMES`` (aliases: ``psnr``, ``ssim_y``).
        device (str | torch.device): where network-based metrics run.
        scale (int): SR factor; PSNR-Y, SSIM and NIQE crop ``scale`` pixels per edge (BasicSR's
            ``crop_border: 4`` for x4), LPIPS and NRQM score the full image unless ``crop_border`` is given.
        crop_border (int | None): overrides the per-metric default above.
        quantize (bool): round inputs to the 8-bit grid before scoring.
        lpips_kind, lpips_net: forwarded to ``build_lpips``.

    Returns:
        Metric: ``metric(sr, gt=None) -> float`` with ``name``, ``lower_better``, ``weights``, ``full_reference``.
    """
    name = canonical_name(name)
    if name in ('psnr_y', 'ssim'):
        from tta_sr.metrics import fidelity
        border = scale if crop_border is None else crop_border
        fn = fidelity.psnr_y if name == 'psnr_y' else fidelity.ssim_y
        import basicsr
        weights = f'basicsr {basicsr.__version__} calculate_{"psnr" if name == "psnr_y" else "ssim"} ' \
                  f'(test_y_channel=True, crop_border={border})'
        return Metric(name, lambda sr, gt: fn(sr, gt, border, quantize), lower_better=False, weights=weights,
                      full_reference=True, crop_border=border, quantize=quantize)
    if name == 'lpips':
        from tta_sr.metrics.perceptual import LPIPSScorer
        border = 0 if crop_border is None else crop_border
        scorer = LPIPSScorer(kind=lpips_kind, net=lpips_net, device=device)

        def lpips_fn(sr, gt):
            if border:
                sr, gt = sr[border:-border, border:-border], gt[border:-border, border:-border]
            return scorer(sr, gt)

        return Metric(name, lpips_fn, lower_better=True, weights=scorer.weights, full_reference=True,
                      crop_border=border, quantize=quantize)
    if name == 'niqe':
        from tta_sr.metrics import no_reference
        border = scale if crop_border is None else crop_border
        return Metric(name, lambda sr, gt: no_reference.niqe(sr, border, quantize), lower_better=True,
                      weights=f'basicsr calculate_niqe, pristine params basicsr/metrics/niqe_pris_params.npz '
                              f'(Y channel, crop_border={border})',
                      full_reference=False, crop_border=border, quantize=quantize)
    # nrqm
    from tta_sr.metrics.no_reference import NRQMScorer
    border = 0 if crop_border is None else crop_border
    scorer = NRQMScorer(crop_border=border, device=device)
    return Metric(name, lambda sr, gt: scorer(sr), lower_better=False, weights=f'pyiqa NRQM ({scorer.path})',
                  full_reference=False, crop_border=border, quantize=quantize)


def available_metrics(with_reasons=False, device='cpu'):
    """Which metrics work on this machine (nothing is downloaded to find out).

    Returns:
        list[str] of usable names, or with ``with_reasons=True`` a dict ``name -> None`` (usable) or
        the reason it is not (a missing file and how to obtain it).
    """
    reasons = {}
    for name in METRIC_NAMES:
        try:
            if name == 'nrqm':
                from tta_sr.metrics.no_reference import nrqm_missing_reason
                reasons[name] = nrqm_missing_reason()
                if reasons[name] is None:
                    import pyiqa  # noqa: F401
            elif name == 'niqe':
                import os
                from tta_sr.metrics.no_reference import niqe_params_path
                path = niqe_params_path()
                reasons[name] = None if os.path.isfile(path) else f'NIQE parameters {path} missing; reinstall basicsr'
            else:
                create_metric(name, device=device)
                reasons[name] = None
        except Exception as err:  # report, never raise: this is a capability probe
            reasons[name] = f'{type(err).__name__}: {err}'
    if with_reasons:
        return reasons
    return [name for name, reason in reasons.items() if reason is None]


__all__ = ['Metric', 'create_metric', 'available_metrics', 'canonical_name', 'check_image', 'to_uint8_grid',
           'METRIC_NAMES', 'DEFAULT_METRICS']
