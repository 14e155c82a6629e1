"""Write a tiny paired data set (smooth random HR images and their bicubic x4 LR) for the examples.

``python examples/custom_arch/make_tiny_data.py [OUT_DIR]`` (default ``datasets/example_tiny``) writes
``OUT_DIR/hr/*.png`` (64 x 64) and ``OUT_DIR/lr/*.png`` (16 x 16) with the same file names.
"""
import os
import sys

import cv2
import numpy as np


def make_tiny_pairs(out_dir='datasets/example_tiny', num_images=4, size=64, scale=4, seed=0):
    """Write ``num_images`` HR/LR pairs under ``out_dir``; return ``(hr_dir, lr_dir)``."""
    rng = np.random.default_rng(seed)
    hr_dir, lr_dir = os.path.join(out_dir, 'hr'), os.path.join(out_dir, 'lr')
    os.makedirs(hr_dir, exist_ok=True)
    os.makedirs(lr_dir, exist_ok=True)
    for i in range(num_images):
        coarse = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
        hr = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        hr = np.clip(hr + rng.normal(0, 8, hr.shape), 0, 255).astype(np.uint8)
        lr = cv2.resize(hr, (size // scale, size // scale), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(os.path.join(hr_dir, f'{i:04d}.png'), hr)
        cv2.imwrite(os.path.join(lr_dir, f'{i:04d}.png'), lr)
    return hr_dir, lr_dir


if __name__ == '__main__':
    print(make_tiny_pairs(*(sys.argv[1:2] or [])))
