"""benchmarks/sampling.py: the crop sampler every benchmark method trains on (same seed, same crops; global RNG
untouched), on the package's dataset."""
import os
import random
import sys

import torch

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_helpers import REPO_ROOT, write_photos

sys.path.insert(0, os.path.join(REPO_ROOT, 'benchmarks'))
from sampling import CropSampler  # noqa: E402


def test_the_same_seed_gives_the_same_batches_and_leaves_the_global_rng_alone(tmp_path):
    write_photos(tmp_path / 'lr', 3, 24)
    write_photos(tmp_path / 'big', 1, 300)  # larger than a region: its crops come from its regions
    for folder in ('lr', 'big'):
        dataset = LRImageDataset({'name': 'b', 'type': 'LRImageDataset', 'dataroot_lq': str(tmp_path / folder),
                                  'split': 'all', 'lq_size': 16, 'return_hf_weight': True})
        state = random.getstate()
        first, again = CropSampler(dataset, 2, 16, 7, hf_weight=True), CropSampler(dataset, 2, 16, 7, hf_weight=True)
        for _ in range(5):
            a, b = first(), again()
            assert a['lq'].shape == (2, 3, 16, 16) and a['hf_weight'].shape == (2, 1, 16, 16)
            assert torch.equal(a['lq'], b['lq']) and torch.equal(a['hf_weight'], b['hf_weight'])
        assert random.getstate() == state
