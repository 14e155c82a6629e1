"""The benchmarks' training batches: random LR crops with flips (``tta_sr.data.transforms``) drawn from a
private seeded RNG, so that every method sees exactly the same crops in the same order."""
import random

import torch

from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_sr.data.transforms import random_crop, random_flip


class CropSampler:
    """Batches of random LR crops (+ flips), drawn from a private ``random.Random(seed)``.

    The global RNGs (which the controller's noise uses) are never touched. Batch ``k`` is ``{'lq': (B, 3, s, s),
    'lq_path': [...], 'hf_weight': (B, 1, s, s)}`` (the latter for LWay), as BasicSR's collate of
    LRImageDataset items.
    """

    def __init__(self, dataset, batch, size, seed, hf_weight=False):
        self.dataset, self.batch, self.size, self.hf = dataset, batch, size, hf_weight
        self.rng = random.Random(seed)
        self.order = []

    def _next_index(self):
        if not self.order:  # epoch-style: each image once per pass, shuffled
            self.order = self.rng.sample(range(len(self.dataset)), len(self.dataset))
        return self.order.pop()

    def __call__(self):
        lqs, ws, paths = [], [], []
        for _ in range(self.batch):
            i = self._next_index()
            planes = self.dataset.window_planes(i, self.hf, self.rng)
            planes = random_flip(random_crop(planes, self.size, self.rng), True, True, self.rng)
            lqs.append(planes[0].contiguous())
            if self.hf:
                ws.append(planes[1].contiguous())
            paths.append(self.dataset.paths[i])
        out = {'lq': torch.stack(lqs), 'lq_path': paths}
        if self.hf:
            out['hf_weight'] = torch.stack(ws)
        return out


def make_sampler(opt, cfg):
    """The CropSampler of a model option dict's training images, with the run's batch, crop size and seed."""
    dataset = LRImageDataset(dict(opt['datasets']['train'], return_hf_weight=True))
    return CropSampler(dataset, cfg['batch'], cfg['lq_size'], cfg['seed'], hf_weight=opt['train']['mode'] == 'lway')
