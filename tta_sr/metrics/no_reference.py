"""No-reference metrics that work offline.

* NIQE (Mittal et al. 2013) through ``basicsr.metrics.calculate_niqe``: distance between a
  multivariate Gaussian fitted to the image's natural-scene-statistics features (96 x 96 blocks,
  Y channel) and the pristine model shipped in BasicSR (``basicsr/metrics/niqe_pris_params.npz``):
  ``NIQE = sqrt((mu_p - mu)^T ((Sigma_p + Sigma) / 2)^-1 (mu_p - mu))``; lower is better.
* NRQM (Ma et al. 2017) through pyiqa, *only* when its model file ``NRQM_model.mat`` is already in
  pyiqa's cache (``<torch.hub.get_dir()>/pyiqa/``); pyiqa would otherwise download it, which tta_sr
  never does at run time. Higher is better.
"""
import os

import numpy as np

from tta_sr.metrics.fidelity import to_basicsr_image

NRQM_FILE = 'NRQM_model.mat'
NRQM_URL = 'https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/NRQM_model.mat'


def niqe_params_path():
    """Path of the pristine NIQE parameters that ship with BasicSR."""
    import basicsr.metrics.niqe as niqe_module
    return os.path.join(os.path.dirname(os.path.abspath(niqe_module.__file__)), 'niqe_pris_params.npz')


def niqe(sr, crop_border=0, quantize=True):
    """NIQE of ``sr`` (float32 RGB ``(H, W, 3)`` in [0, 1]) on the Y channel; lower is better.

    NIQE fits a Gaussian to the features of non-overlapping 96 x 96 blocks, so it needs at least
    two blocks after cropping (e.g. 96 x 192); smaller images raise ``ValueError`` (BasicSR would
    return NaN).
    """
    from basicsr.metrics import calculate_niqe
    h, w = sr.shape[0] - 2 * crop_border, sr.shape[1] - 2 * crop_border
    if (h // 96) * (w // 96) < 2:
        raise ValueError(f'niqe: needs at least two 96 x 96 blocks (e.g. 96 x 192) after cropping {crop_border} px '
                         f'per edge, got {h} x {w}; score a larger image')
    return float(calculate_niqe(to_basicsr_image(sr, quantize), crop_border, input_order='HWC', convert_to='y'))


def pyiqa_cache_dir():
    """Folder where pyiqa looks for (and would download) its weights: ``<torch.hub.get_dir()>/pyiqa``."""
    import torch.hub
    return os.path.join(torch.hub.get_dir(), 'pyiqa')


def nrqm_weights_path():
    """Expected path of pyiqa's NRQM model file (it may not exist)."""
    return os.path.join(pyiqa_cache_dir(), NRQM_FILE)


def nrqm_missing_reason():
    """``None`` when NRQM can run offline, else a sentence naming the missing file and how to get it."""
    path = nrqm_weights_path()
    if os.path.isfile(path):
        return None
    return (f'nrqm needs pyiqa\'s model file {NRQM_FILE}, expected at {path}, which does not exist; nothing is '
            f'downloaded at run time: fetch {NRQM_URL} on a machine with internet and copy it there '
            '(or set TORCH_HOME so that <TORCH_HOME>/hub/pyiqa holds it), or use niqe instead')


class NRQMScorer:
    """Callable ``sr -> float`` around pyiqa's NRQM built from the cached model file only."""

    def __init__(self, crop_border=0, device='cpu'):
        reason = nrqm_missing_reason()
        if reason is not None:
            raise FileNotFoundError(reason)
        import pyiqa
        import torch
        self.device = torch.device(device)
        self.path = nrqm_weights_path()
        self.model = pyiqa.create_metric('nrqm', device=self.device, crop_border=crop_border,
                                         pretrained_model_path=self.path)

    def __call__(self, sr):
        import torch
        from tta_sr.utils.image_io import to_tensor
        with torch.inference_mode():
            return float(np.asarray(self.model(to_tensor(sr, self.device)).detach().cpu()).reshape(-1)[0])
