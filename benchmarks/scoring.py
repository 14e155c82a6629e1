"""Scoring a benchmark run against GT: the LR/GT pairs it uses, the network scored, full-image (tiled)
upscaling and the metrics (PSNR-Y, SSIM, LPIPS, NIQE)."""
import os

import numpy as np

from tta_sr.metrics import create_metric
from tta_sr.utils.image_io import read_image, scan_images, write_image
from tta_sr.utils.tiling import upscale_image

METRICS = ('psnr_y', 'ssim', 'lpips', 'niqe')


def image_pairs(cfg):
    """[(stem, lr_path, gt_path)] of the chosen images, sorted by stem."""
    gts = {os.path.splitext(os.path.basename(p))[0]: p for p in scan_images(cfg['gt_dir'])}
    pairs = []
    for path in scan_images(cfg['lr_dir']):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in gts:
            raise SystemExit(f'LR image {path} has no GT with stem {stem!r} in {cfg["gt_dir"]}')
        pairs.append((stem, path, gts[stem]))
    pairs.sort()
    if cfg.get('images'):
        wanted = [s.strip() for s in cfg['images'].split(',')]
        pairs = [p for p in pairs if p[0] in wanted]
    elif cfg.get('max_images'):
        pairs = pairs[:cfg['max_images']]
    if not pairs:
        raise SystemExit(f'no LR/GT pairs found in {cfg["lr_dir"]} / {cfg["gt_dir"]}')
    return pairs


def eval_net(model, cfg):
    """The network scored: the EMA copy when EMA is on, else the raw adapted net."""
    if cfg['ema_decay'] > 0 and hasattr(model, 'net_g_ema'):
        return model.net_g_ema
    return model.get_bare_model(model.net_g)


class Scorer:
    """PSNR-Y, SSIM, LPIPS (and NIQE) of full-image (tiled) SR outputs against GT."""

    def __init__(self, cfg, scale, metrics=METRICS):
        names = [m for m in metrics if not (cfg.get('no_niqe') and m == 'niqe')]
        self.metrics = {n: create_metric(n, device=cfg['device'], scale=scale) for n in names}
        self.scale, self.cfg = scale, cfg

    def info(self):
        return {n: m.info() for n, m in self.metrics.items()}

    def score_images(self, srs, gts):
        """{metric: {'mean': x, 'per_image': {stem: x}}} for dicts stem -> (H, W, 3) float arrays."""
        out = {}
        for name, metric in self.metrics.items():
            per = {stem: metric(srs[stem], gts[stem]) for stem in srs}
            out[name] = {'mean': float(np.mean(list(per.values()))), 'per_image': per}
        return out

    def upscale_all(self, net, pairs, save_dir=None):
        """{stem: SR output} of ``net`` on each pair's whole LR image (tiled), also written to ``save_dir``."""
        was_training = net.training
        net.eval()
        srs = {}
        for stem, lr_path, _ in pairs:
            lr, _ = read_image(lr_path)
            srs[stem] = upscale_image(net, lr, self.scale, self.cfg['tile'], self.cfg['tile_overlap'],
                                      self.cfg['device'])
            if save_dir:
                write_image(os.path.join(save_dir, f'{stem}.png'), srs[stem])
        net.train(was_training)
        return srs


def read_gts(pairs):
    """{stem: GT image} of the pairs."""
    return {stem: read_image(gt)[0] for stem, _, gt in pairs}


def read_folder(folder, pairs):
    """{stem: image} of ``folder/<stem>.png`` for each pair (a model's exported outputs)."""
    return {stem: read_image(os.path.join(folder, f'{stem}.png'))[0] for stem, _, _ in pairs}
