"""Benchmark test sets for test-time adaptation, written as LR/GT PNG folders.

Two builders (importable, and a CLI: ``python benchmarks/datasets.py --help``):

* :func:`build_city100` -- City100 iPhoneX real camera pairs (``/work/shared/data/City100/iPhoneX``).
  LR (short focal length) and HR (long focal length) are registered at the SAME pixel size (840 x 600).
  For x4: optionally centre-crop BOTH images with the same window (``crop``, a multiple of 4, in HR
  pixels; default 480), crop the HR to a multiple of 4, then downscale the LR by 4 with OpenCV
  ``INTER_AREA`` (area averaging; sizes match exactly 4x). The LR thus keeps the real camera's optics,
  noise and ISP, plus an area x4 reduction.
* :func:`build_synthetic` -- an "unknown but consistent degradation" set (like NTIRE20 track 1): Set14
  HR colour images (``bridge.png`` is grayscale and is skipped), each centre-cropped to the same
  ``hr_size`` (default 240, the largest square that every colour Set14 image holds), degraded ONCE by
  Real-ESRGAN's second-order pipeline with ONE fixed-seed draw of kernels and parameters: the kernels
  are sampled once, and every image is degraded under ``seeded(seed)`` at the same size, so every
  random draw (resize factors and modes, noise type and level, JPEG qualities, the order of the final
  sinc/JPEG) is the same for all images. LR = HR / 4. The settings go to ``degradation.json`` (and the
  kernels to ``kernels.npz``) next to the set; the model never sees them.

* :func:`build_families` -- held-out pairs for ``benchmarks/branch_fidelity.py``: HR crops of photos that
  stage 1 never trains on (default Set14, colour images), each degraded in every family of
  ``tta_sr.data.degradation_families`` with seeds that training never uses: ``second_order`` (Real-ESRGAN's
  kernels and pipeline, seed 7000 + i), ``mild`` (the camera-like family, seed 17000 + i) and ``bicubic``
  (MATLAB-style antialiased bicubic, basicsr's ``imresize``: an implementation independent of the torch
  one the branch's bank holds). The same crop i is in every family, so swapping E_deg between families
  changes the degradation and nothing else.
* :func:`build_mild` -- a stage-2 benchmark set with ONE mild, camera-like degradation shared by all images
  (one draw of the mild family's parameters, fixed seed), like a single camera; default source Urban100
  (never used by stage-1 training or by tuning).

Output layout (default root ``benchmarks/data/``, git-ignored)::

    <root>/city100_x4[_c<crop>]/{lr,gt}/NNN.png, info.json
    <root>/set14_synth_x4/{lr,gt}/<name>.png, degradation.json, kernels.npz
    <root>/families_x4/<family>/{lr,gt}/<name>_<k>.png, info.json
    <root>/urban100_mild_x4/{lr,gt}/<name>.png, degradation.json
"""
import argparse
import glob
import json
import math
import os
import random
import sys

import numpy as np

DATA_ROOT = '/work/shared/data'
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def _hr_paths(src):
    """Sorted PNG and JPEG images of ``src`` (BSDS500 ships JPEGs)."""
    return sorted(p for ext in ('png', 'jpg', 'jpeg') for p in glob.glob(os.path.join(src, f'*.{ext}')))


def _read_rgb(path):
    """(H, W, 3) uint8 RGB (grayscale kept as 2-D)."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path}')
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return img


def _write_rgb(path, img):
    import cv2
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {path}')


def _centre(img, h, w):
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top:top + h, left:left + w]


def build_city100(out_root=DEFAULT_OUT, src=os.path.join(DATA_ROOT, 'City100', 'iPhoneX'), scale=4, crop=480,
                  names=None, name=None):
    """City100 iPhoneX x``scale`` pairs; ``crop`` (HR pixels, multiple of ``scale``; 0 = whole image).

    ``names``: the stems kept (default all); ``name``: the folder name (default ``city100_x<scale>[_c<crop>]``).
    Returns the output folder (``lr/`` and ``gt/`` with the same stems, GT exactly ``scale`` x LR).
    """
    import cv2
    if crop and crop % scale:
        raise ValueError(f'crop must be a multiple of the scale {scale}, got {crop}')
    hr_paths = sorted(glob.glob(os.path.join(src, 'HR', '*.png')))
    if not hr_paths:
        raise FileNotFoundError(f'no City100 HR images in {src}/HR; see /work/shared/data/MANIFEST.md')
    out = os.path.join(out_root, name or f'city100_x{scale}' + (f'_c{crop}' if crop else ''))
    written = []
    for hr_path in hr_paths:
        stem = os.path.splitext(os.path.basename(hr_path))[0]
        if names and stem not in names:
            continue
        lr_path = os.path.join(src, 'LR', os.path.basename(hr_path))
        hr, lr = _read_rgb(hr_path), _read_rgb(lr_path)
        if hr.shape != lr.shape:
            raise ValueError(f'City100 pair {stem}: HR {hr.shape} and LR {lr.shape} should be registered at the '
                             'same size')
        h, w = hr.shape[:2]
        if crop:
            h, w = min(h, crop), min(w, crop)
        h, w = h - h % scale, w - w % scale
        hr, lr = _centre(hr, h, w), _centre(lr, h, w)  # the same window of both (they are registered)
        lr = cv2.resize(lr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
        _write_rgb(os.path.join(out, 'gt', f'{stem}.png'), hr)
        _write_rgb(os.path.join(out, 'lr', f'{stem}.png'), lr)
        written.append(stem)
    info = {'source': src, 'scale': scale, 'crop_hr': crop, 'lr_downscale': 'cv2.INTER_AREA by scale',
            'images': written, 'gt_size': [h, w], 'lr_size': [h // scale, w // scale]}
    with open(os.path.join(out, 'info.json'), 'w') as f:
        json.dump(info, f, indent=2)
    return out


def sample_kernels(seed, kernel_opt=None):
    """One draw of Real-ESRGAN's (kernel1, kernel2, sinc_kernel), each (21, 21) float32, as its dataset does.

    Returns (kernels dict of np arrays, description dict).
    """
    import tta_sr  # noqa: F401  (torchvision shim before basicsr)
    from basicsr.data.degradations import circular_lowpass_kernel, random_mixed_kernels
    from tta_sr.data.hr_degradation_dataset import DEFAULT_KERNELS
    from tta_sr.data.second_order_degradation import seeded
    opt = {**DEFAULT_KERNELS, **(kernel_opt or {})}
    kernel_range = [2 * v + 1 for v in range(3, 11)]  # 7 .. 21, as RealESRGANDataset
    desc = {}

    def blur(suffix, key):
        size = random.choice(kernel_range)
        if np.random.uniform() < opt[f'sinc_prob{suffix}']:
            omega = np.random.uniform(np.pi / 3, np.pi) if size < 13 else np.random.uniform(np.pi / 5, np.pi)
            kernel = circular_lowpass_kernel(omega, size, pad_to=False)
            desc[key] = {'type': 'sinc', 'size': size, 'omega_c': float(omega)}
        else:
            kernel = random_mixed_kernels(opt[f'kernel_list{suffix}'], opt[f'kernel_prob{suffix}'], size,
                                          opt[f'blur_sigma{suffix}'], opt[f'blur_sigma{suffix}'], [-math.pi, math.pi],
                                          opt[f'betag_range{suffix}'], opt[f'betap_range{suffix}'], noise_range=None)
            desc[key] = {'type': 'mixed', 'size': size}
        pad = (21 - size) // 2
        return np.pad(kernel, ((pad, pad), (pad, pad))).astype(np.float32)

    with seeded(seed):
        k1 = blur('', 'kernel1')
        k2 = blur('2', 'kernel2')
        if np.random.uniform() < opt['final_sinc_prob']:
            size = random.choice(kernel_range)
            omega = np.random.uniform(np.pi / 3, np.pi)
            sinc = circular_lowpass_kernel(omega, size, pad_to=21).astype(np.float32)
            desc['sinc_kernel'] = {'type': 'sinc', 'size': size, 'omega_c': float(omega)}
        else:
            sinc = np.zeros((21, 21), np.float32)
            sinc[10, 10] = 1
            desc['sinc_kernel'] = {'type': 'pulse (identity)'}
    for name, k in (('kernel1', k1), ('kernel2', k2)):
        yy, xx = np.mgrid[-10:11, -10:11]
        desc[name]['std_x'] = float(np.sqrt((k * xx ** 2).sum() / k.sum()))
        desc[name]['std_y'] = float(np.sqrt((k * yy ** 2).sum() / k.sum()))
    return {'kernel1': k1, 'kernel2': k2, 'sinc_kernel': sinc}, {**desc, 'kernel_options': opt}


def build_synthetic(out_root=DEFAULT_OUT, src=os.path.join(DATA_ROOT, 'Set14', 'HR'), scale=4, hr_size=240, seed=2024,
                    name='set14_synth_x4'):
    """Set14 colour images, one fixed-seed second-order degradation shared by all; returns the folder."""
    import tta_sr  # noqa: F401
    import torch
    from tta_sr.data.second_order_degradation import DEFAULT_DEGRADATION, degrade_second_order, make_jpeger, seeded
    if hr_size % scale:
        raise ValueError(f'hr_size must be a multiple of the scale {scale}, got {hr_size}')
    out = os.path.join(out_root, name)
    kernels, desc = sample_kernels(seed)
    kt = [torch.from_numpy(kernels[k])[None] for k in ('kernel1', 'kernel2', 'sinc_kernel')]
    jpeger = make_jpeger()
    written, skipped = [], {}
    for path in _hr_paths(src):
        stem = os.path.splitext(os.path.basename(path))[0]
        img = _read_rgb(path)
        if img.ndim != 3:
            skipped[stem] = 'grayscale'
            continue
        if min(img.shape[:2]) < hr_size:
            skipped[stem] = f'smaller than {hr_size}'
            continue
        hr = _centre(img, hr_size, hr_size)
        x = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1))).float()[None] / 255.0
        with seeded(seed + 1), torch.no_grad():  # same size + same seed: every random draw is identical
            lr = degrade_second_order(x, *kt, scale, dict(DEFAULT_DEGRADATION), jpeger)
        lr = (lr[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
        _write_rgb(os.path.join(out, 'gt', f'{stem}.png'), hr)
        _write_rgb(os.path.join(out, 'lr', f'{stem}.png'), lr)
        written.append(stem)
    np.savez(os.path.join(out, 'kernels.npz'), **kernels)
    settings = {
        'note': 'Benchmark settings only: never given to the model.',
        'source': src, 'scale': scale, 'hr_size': hr_size, 'kernel_seed': seed, 'degradation_seed': seed + 1,
        'pipeline': 'tta_sr.data.second_order_degradation.degrade_second_order, one image at a time, each under '
                    'seeded(degradation_seed) at the same size, so every random draw is shared',
        'kernels': desc, 'degradation_options': DEFAULT_DEGRADATION, 'images': written, 'skipped': skipped,
    }
    with open(os.path.join(out, 'degradation.json'), 'w') as f:
        json.dump(settings, f, indent=2, default=str)
    return out


def _hr_crops(src, size, per_image):
    """[(stem, (size, size, 3) uint8 RGB)]: up to ``per_image`` non-overlapping crops along the longer side,
    centred, of every colour image in ``src`` at least ``size`` on both sides."""
    crops = []
    for path in _hr_paths(src):
        img = _read_rgb(path)
        if img.ndim != 3 or min(img.shape[:2]) < size:
            continue
        h, w = img.shape[:2]
        n = max(1, min(per_image, max(h, w) // size))
        img = _centre(img, size if h <= w else n * size, n * size if h <= w else size)
        for k in range(n):
            crop = img[:, k * size:(k + 1) * size] if h <= w else img[k * size:(k + 1) * size]
            crops.append((f'{os.path.splitext(os.path.basename(path))[0]}_{k}', crop))
    return crops


def _to_tensor(img):
    import torch
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None] / 255.0


def _to_uint8(t):
    return (t[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)


FAMILY_SEEDS = {'second_order': 7000, 'mild': 17000}


def build_families(out_root=DEFAULT_OUT, src=os.path.join(DATA_ROOT, 'Set14', 'HR'), scale=4, hr_size=256,
                   per_image=2, name='families_x4'):
    """Every held-out HR crop degraded in each family (see the module docstring); returns the folder."""
    import tta_sr  # noqa: F401
    import torch
    from basicsr.utils.matlab_functions import imresize
    from tta_sr.data.degradation_families import DEFAULT_MILD, degrade_mild, sample_mild
    from tta_sr.data.second_order_degradation import DEFAULT_DEGRADATION, degrade_second_order, make_jpeger, seeded
    out = os.path.join(out_root, name)
    crops = _hr_crops(src, hr_size, per_image)
    if not crops:
        raise FileNotFoundError(f'no colour image of at least {hr_size} px in {src}')
    jpeger = make_jpeger()
    info = {'source': src, 'scale': scale, 'hr_size': hr_size, 'seeds': FAMILY_SEEDS, 'images': [c[0] for c in crops],
            'bicubic': 'basicsr.utils.matlab_functions.imresize (antialiased bicubic), 8 bits', 'mild': {}}
    for i, (stem, hr) in enumerate(crops):
        x = _to_tensor(hr)
        with torch.no_grad():
            kernels, _ = sample_kernels(FAMILY_SEEDS['second_order'] + i)
            kt = [torch.from_numpy(kernels[k])[None] for k in ('kernel1', 'kernel2', 'sinc_kernel')]
            with seeded(FAMILY_SEEDS['second_order'] + i + 1):
                second = degrade_second_order(x, *kt, scale, dict(DEFAULT_DEGRADATION), jpeger)
            with seeded(FAMILY_SEEDS['mild'] + i):
                params = sample_mild(DEFAULT_MILD)
                mild = degrade_mild(x, scale, params, jpeger)
        info['mild'][stem] = {k: v for k, v in params.items() if k != 'kernel'}
        bicubic = imresize(hr.astype(np.float64) / 255.0, 1 / scale)
        lrs = {'second_order': _to_uint8(second), 'mild': _to_uint8(mild),
               'bicubic': (bicubic * 255.0).round().clip(0, 255).astype(np.uint8)}
        for family, lr in lrs.items():
            _write_rgb(os.path.join(out, family, 'gt', f'{stem}.png'), hr)
            _write_rgb(os.path.join(out, family, 'lr', f'{stem}.png'), lr)
    with open(os.path.join(out, 'info.json'), 'w') as f:
        json.dump(info, f, indent=2, default=str)
    return out


def build_mild(out_root=DEFAULT_OUT, src=os.path.join(DATA_ROOT, 'Urban100', 'HR'), scale=4, hr_size=240,
               seed=31, name='urban100_mild_x4'):
    """Centre crops of ``src``, all degraded by ONE draw of the mild family (same params, same seed)."""
    import tta_sr  # noqa: F401
    import torch
    from tta_sr.data.degradation_families import DEFAULT_MILD, degrade_mild, sample_mild
    from tta_sr.data.second_order_degradation import make_jpeger, seeded
    out = os.path.join(out_root, name)
    jpeger = make_jpeger()
    with seeded(seed):
        params = sample_mild(DEFAULT_MILD)
    written = []
    for path in _hr_paths(src):
        img = _read_rgb(path)
        if img.ndim != 3 or min(img.shape[:2]) < hr_size:
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        hr = _centre(img, hr_size, hr_size)
        with seeded(seed + 1), torch.no_grad():  # the same noise field and JPEG for every image
            lr = degrade_mild(_to_tensor(hr), scale, params, jpeger)
        _write_rgb(os.path.join(out, 'gt', f'{stem}.png'), hr)
        _write_rgb(os.path.join(out, 'lr', f'{stem}.png'), _to_uint8(lr))
        written.append(stem)
    settings = {'note': 'Benchmark settings only: never given to the model.', 'source': src, 'scale': scale,
                'hr_size': hr_size, 'seed': seed, 'mild_params': {k: v for k, v in params.items() if k != 'kernel'},
                'mild_options': DEFAULT_MILD, 'images': written}
    with open(os.path.join(out, 'degradation.json'), 'w') as f:
        json.dump(settings, f, indent=2, default=str)
    return out


BUILDERS = ('city100', 'synthetic', 'families', 'mild')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('which', nargs='*', help=f'any of {", ".join(BUILDERS)} (default: city100 and synthetic)')
    parser.add_argument('--out', default=DEFAULT_OUT, help='output root (default benchmarks/data)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--city100-crop', type=int, default=480,
                        help='centre crop of City100 in HR pixels (LR = crop / scale); 0 = whole 840x600 image')
    parser.add_argument('--synthetic-hr-size', type=int, default=240, help='HR centre-crop size of the Set14 images')
    parser.add_argument('--seed', type=int, default=2024, help='seed of the one synthetic degradation')
    parser.add_argument('--synthetic-src', default=os.path.join(DATA_ROOT, 'Set14', 'HR'),
                        help='HR folder of the synthetic set (e.g. /work/shared/data/BSD68/HR for a held-out set)')
    parser.add_argument('--synthetic-name', default='set14_synth_x4', help='folder name of the synthetic set')
    parser.add_argument('--mild-src', default=os.path.join(DATA_ROOT, 'Urban100', 'HR'), help='HR folder of the mild set')
    parser.add_argument('--mild-seed', type=int, default=31, help='seed of the one mild degradation')
    parser.add_argument('--mild-name', default='urban100_mild_x4', help='folder name of the mild set')
    parser.add_argument('--mild-hr-size', type=int, default=240, help='HR centre-crop size of the mild set')
    parser.add_argument('--city100-names', default=None, help='comma list of City100 stems (default: all 15)')
    parser.add_argument('--city100-name', default=None, help='folder name of the City100 set')
    args = parser.parse_args(argv)
    args.which = args.which or ['city100', 'synthetic']
    unknown = set(args.which) - set(BUILDERS)
    if unknown:
        parser.error(f'unknown set(s) {sorted(unknown)}; choose from {", ".join(BUILDERS)}')
    if 'city100' in args.which:
        print('City100:', build_city100(args.out, scale=args.scale, crop=args.city100_crop, name=args.city100_name,
                                        names=args.city100_names.split(',') if args.city100_names else None))
    if 'synthetic' in args.which:
        print('synthetic:', build_synthetic(args.out, src=args.synthetic_src, scale=args.scale,
                                              hr_size=args.synthetic_hr_size, seed=args.seed, name=args.synthetic_name))
    if 'families' in args.which:
        print('families:', build_families(args.out, scale=args.scale))
    if 'mild' in args.which:
        print('mild:', build_mild(args.out, src=args.mild_src, scale=args.scale, hr_size=args.mild_hr_size,
                                  seed=args.mild_seed, name=args.mild_name))
    return 0


if __name__ == '__main__':
    sys.exit(main())
