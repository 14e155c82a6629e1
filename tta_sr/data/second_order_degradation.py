"""Real-ESRGAN's second-order degradation, as one function on tensors (CPU or GPU).

X_s = D2(D1(Y)), each D = blur (kernel from the dataset) -> random resize -> Gaussian or Poisson noise
-> JPEG; the second stage ends, in random order, with the final sinc filter and JPEG, at size H/a x W/a.
Kernels come from realesrgan's ``RealESRGANDataset``; noise, resize, JPEG and ``filter2D`` are
basicsr's. The randomness is Python's ``random`` and NumPy's global generators, as in Real-ESRGAN;
wrap calls in :func:`seeded` for reproducible pairs.
"""
import contextlib
import copy
import random

import numpy as np
import torch
from torch.nn import functional as F

from basicsr.data.degradations import random_add_gaussian_noise_pt, random_add_poisson_noise_pt
from basicsr.utils import DiffJPEG
from basicsr.utils.img_process_util import filter2D

# Real-ESRGAN's published x4plus training settings (options/train_realesrgan_x4plus.yml).
DEFAULT_DEGRADATION = {
    'resize_prob': [0.2, 0.7, 0.1], 'resize_range': [0.15, 1.5], 'gaussian_noise_prob': 0.5,
    'noise_range': [1, 30], 'poisson_scale_range': [0.05, 3], 'gray_noise_prob': 0.4, 'jpeg_range': [30, 95],
    'second_blur_prob': 0.8, 'resize_prob2': [0.3, 0.4, 0.3], 'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5, 'noise_range2': [1, 25], 'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4, 'jpeg_range2': [30, 95],
}


def degradation_options(opt):
    """The degradation settings in ``opt`` (Real-ESRGAN's key names), defaults filled in."""
    return {key: opt.get(key, value) for key, value in DEFAULT_DEGRADATION.items()}


@contextlib.contextmanager
def seeded(seed):
    """Run the block with ``random``, NumPy and torch seeded by ``seed``; restore their states after."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _random_resize(img, prob, scale_range, size=None, min_side=1):
    """Resize by a random factor ('up' in [1, max], 'down' in [min, 1], 'keep'), or to ``size`` scaled by it.

    Without ``size``, each side is kept at least ``min_side`` (the next blur's reflect padding needs
    more than ``kernel_size // 2`` pixels; only small HR patches ever hit this).
    """
    kind = random.choices(['up', 'down', 'keep'], prob)[0]
    factor = {'up': lambda: np.random.uniform(1, scale_range[1]),
              'down': lambda: np.random.uniform(scale_range[0], 1), 'keep': lambda: 1.0}[kind]()
    mode = random.choice(['area', 'bilinear', 'bicubic'])
    if size is None:
        h, w = img.shape[2:]
        if int(min(h, w) * factor) < min_side:
            return F.interpolate(img, size=(max(min_side, int(h * factor)), max(min_side, int(w * factor))), mode=mode)
        return F.interpolate(img, scale_factor=factor, mode=mode)
    return F.interpolate(img, size=(int(size[0] * factor), int(size[1] * factor)), mode=mode)


def _random_noise(img, opt, suffix):
    """Gaussian noise with probability ``gaussian_noise_prob{suffix}``, Poisson noise otherwise."""
    gray_prob = opt[f'gray_noise_prob{suffix}']
    if np.random.uniform() < opt[f'gaussian_noise_prob{suffix}']:
        return random_add_gaussian_noise_pt(img, sigma_range=opt[f'noise_range{suffix}'], clip=True, rounds=False,
                                            gray_prob=gray_prob)
    return random_add_poisson_noise_pt(img, scale_range=opt[f'poisson_scale_range{suffix}'], gray_prob=gray_prob,
                                       clip=True, rounds=False)


def make_jpeger(device='cpu'):
    """basicsr's non-differentiable ``DiffJPEG`` on ``device``, with quantisation tables of its own.

    basicsr's DiffJPEG modules all share two module-level ``nn.Parameter`` tables, so moving one instance to
    the GPU moves the tables of every other instance too (a CPU dataset's JPEG then fails with a device
    mismatch once the model's copy is on CUDA); a deep copy owns its tables.
    """
    return copy.deepcopy(DiffJPEG(differentiable=False)).to(device)


def quantize(img):
    """Clamp to [0, 1] and round to 8 bits."""
    return torch.clamp((img * 255.0).round(), 0, 255) / 255.0


def _jpeg(img, jpeger, quality_range):
    quality = img.new_zeros(img.size(0)).uniform_(*quality_range)
    return jpeger(torch.clamp(img, 0, 1), quality=quality).contiguous()  # filter2D needs .view()


def degrade_second_order(hr, kernel1, kernel2, sinc_kernel, scale, opt, jpeger):
    """(B, 3, aH, aW) HR in [0, 1] -> (B, 3, H, W) LR in [0, 1], quantised to 8 bits.

    ``kernel1``, ``kernel2``, ``sinc_kernel``: (B, 21, 21) from the dataset; ``opt``: degradation
    settings (:func:`degradation_options`); ``jpeger``: basicsr ``DiffJPEG`` on the same device.
    """
    ori_h, ori_w = hr.shape[2:4]
    out = filter2D(hr, kernel1)
    out = _random_resize(out, opt['resize_prob'], opt['resize_range'], min_side=kernel2.shape[-1] // 2 + 1)
    out = _random_noise(out, opt, '')
    out = _jpeg(out, jpeger, opt['jpeg_range'])

    if np.random.uniform() < opt['second_blur_prob']:
        out = filter2D(out, kernel2)
    out = _random_resize(out, opt['resize_prob2'], opt['resize_range2'], size=(ori_h / scale, ori_w / scale))
    out = _random_noise(out, opt, '2')

    lr_size = (ori_h // scale, ori_w // scale)
    if np.random.uniform() < 0.5:  # resize + sinc, then JPEG
        out = F.interpolate(out, size=lr_size, mode=random.choice(['area', 'bilinear', 'bicubic']))
        out = filter2D(out, sinc_kernel)
        out = _jpeg(out, jpeger, opt['jpeg_range2'])
    else:  # JPEG, then resize + sinc
        out = _jpeg(out, jpeger, opt['jpeg_range2'])
        out = F.interpolate(out, size=lr_size, mode=random.choice(['area', 'bilinear', 'bicubic']))
        out = filter2D(out, sinc_kernel)
    return quantize(out)
