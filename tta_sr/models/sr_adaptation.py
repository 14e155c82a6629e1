"""What every stage-2 model shares (a model that adapts an SR network M to LR images, without ground truth).

- ``__init__``: ``path.pretrain_network_g`` may be a manifest name; its ``param_key`` is used (a resumed run
  loads its own checkpoint's ``params``).
- ``model_to_device``: only the parameters chosen by ``train.trainable`` (:func:`select_trainable`) learn.
- outputs: ``results/<variant>/<stem>.png`` (``export_outputs``: ``base`` before adaptation, ``adapted`` after),
  and ``report.html``/``metrics.json``/``metrics.csv`` (``write_run_report``: base vs adapted, vs
  ``eval.dataroot_gt`` when given); a model adds its own fields to the report with ``report_extra``.
Put it first: ``class M(SRAdaptationMixin, TTASRModelMixin, SRModel)``.
"""
import copy
import functools
import os
import re
import time

import numpy as np

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from tta_sr.data.crop_budget import crop, crop_boxes, most_detailed
from tta_sr.data.lr_image_dataset import select_names
from tta_sr.data.transforms import center_crop
from tta_sr.models.fisher_restoration import CHARBONNIER_EPS, FisherRestoration, augmentation_consistency_loss
from tta_sr.options.stage2 import resolve_stage2
from tta_sr.report.writer import write_report
from tta_sr.utils.image_io import read_image, scan_images, to_tensor, write_image
from tta_sr.utils.tiling import upscale_image
from tta_sr.weights.resolver import load_manifest


def select_trainable(net, trainable):
    """Freeze all of ``net`` but the chosen parameters; return the names left trainable.

    ``trainable``: None (all), ``{'patterns': [regex, ...]}`` (names matching any), or
    ``{'fraction': f}`` (the parameters nearest the output holding a fraction f of all weights, as LWay
    tunes about 65% of BSRGAN).
    """
    named = list(net.named_parameters())
    if not trainable:
        return [n for n, _ in named]
    if 'patterns' in trainable:
        keep = {n for n, _ in named if any(re.search(p, n) for p in trainable['patterns'])}
    else:
        budget, keep = trainable['fraction'] * sum(p.numel() for _, p in named), set()
        for name, p in reversed(named):
            if budget <= 0:
                break
            keep.add(name)
            budget -= p.numel()
    if not keep:
        raise ValueError(f'train.trainable {trainable} selects no parameter of {type(net).__name__}')
    for name, p in named:
        p.requires_grad_(name in keep)
    return [n for n, _ in named if n in keep]


def lr_image_tensor(path, max_size, device):
    """The LR image at ``path`` as (1, 3, h, w), centre-cropped to at most max_size per side (0: whole)."""
    return center_crop(to_tensor(read_image(path)[0], device)[0], max_size)[None]


class SRAdaptationMixin:
    """``network_g``: any ARCH_REGISTRY network, ``path.pretrain_network_g``: a file or manifest name."""

    def __init__(self, opt):
        resolve_stage2(opt)  # every key validated, every default filled: the model reads opt[...] directly
        path_opt = opt['path']
        name = path_opt['pretrain_network_g']
        if path_opt['resume_state']:
            path_opt['param_key_g'] = 'params'  # our own checkpoint, not the published file
        elif name in (manifest := load_manifest()):
            path_opt.setdefault('param_key_g', manifest[name].get('param_key'))  # None: whole file
        super().__init__(opt)

    def model_to_device(self, net):
        """Choose the trainable subset before DDP wrapping (DDP records trainable parameters once)."""
        if self.is_train:
            names = select_trainable(net, self.opt['train']['trainable'])
            total = sum(1 for _ in net.parameters())
            get_root_logger().info(f'Adapting {len(names)} of {total} parameter tensors of {type(net).__name__}.')
        return super().model_to_device(net)

    def _eval_net(self):
        return getattr(self, 'net_g_ema', self.net_g)

    def output_net(self):
        """The network the adapted outputs come from (HRAwareTTAModel adds the chosen projection)."""
        return self._eval_net()

    def build_fisher_restoration(self, ratio, max_size, source_state, eps=CHARBONNIER_EPS):
        """``self.fisher``: a FisherRestoration of M's trainable parameters, estimated with the source weights
        ``source_state`` on every adapted LR image (each centre-cropped to at most ``max_size``) and restored
        after each optimizer step; None when ``ratio`` is 0. Sets ``self.fisher_seconds``."""
        self.fisher, self.fisher_seconds = None, 0.0
        if not ratio:
            return
        start = time.perf_counter()
        net = self.get_bare_model(self.net_g)
        current = copy.deepcopy(net.state_dict())
        net.load_state_dict(source_state)  # on resume M holds adapted weights
        self.fisher = FisherRestoration(net, ratio)
        batches = (lr_image_tensor(p, max_size, self.device) for p in self.adapted_images)
        self.fisher.estimate(functools.partial(augmentation_consistency_loss, eps=eps), batches)
        net.load_state_dict(current)
        self.fisher_seconds = time.perf_counter() - start
        get_root_logger().info(f'Fisher restoration: {self.fisher.restored_fraction():.3f} of the trainable entries '
                               f'are kept at the source values (ratio {ratio}; {self.fisher_seconds:.1f} s)')

    def after_optimizer_step(self):
        """Fisher restoration (when built): theta <- m * theta_source + (1 - m) * theta."""
        if getattr(self, 'fisher', None) is not None:
            self.fisher.restore()

    @functools.cached_property
    def adapted_images(self):
        """Every LR image this run adapts to (all splits; ``image_names`` when set); scanned once."""
        train_opt = self.opt['datasets']['train']
        return select_names(scan_images(train_opt['dataroot_lq'], on_error='warn'), train_opt['image_names'])

    @master_only
    def export_outputs(self, variant, paths=None):
        """Upscale the LR images ``paths`` (default: all, tiled, ``eval.tile``) with M now, into
        ``results/<variant>/<stem>.png``."""
        net = self.output_net() if variant == 'adapted' else self.get_bare_model(self.net_g)
        folder = os.path.join(self.opt['path']['experiments_root'], 'results', variant)
        for path in self.adapted_images if paths is None else paths:
            rgb, alpha = read_image(path)
            img = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
            stem = os.path.splitext(os.path.basename(path))[0]
            write_image(os.path.join(folder, f'{stem}.png'), self.upscale(net, img),
                        bit_depth=self.opt['eval']['bit_depth'])
        get_root_logger().info(f'Wrote {variant} outputs to {folder}')

    def report_extra(self):
        """Fields of this model's run for the report (metrics.json ``extra``)."""
        return {'network_g': self.opt['network_g']['type']}

    def report_gate(self):
        """The selector's decision (``tta_sr.models.selector.Selection.as_dict``) for the report, or None (none)."""
        return None

    always_exports = False  # SRTTAModel: True (each photo's adapted model exists only while it adapts it)
    REPORT_CANDIDATES = 8  # seeded crops of a large photo the report chooses the most detailed of

    def report_images(self):
        """The report's images, one dict at a time: the exported whole outputs (``results/base``,
        ``results/adapted``), or, without ``eval.export``, the most detailed of a few seeded crops of each photo
        (``eval.crop_size``; a photo no larger is whole) upscaled now by the source and the adapted model. GT
        (``eval.dataroot_gt``) is cut to match."""
        eval_opt, root, scale = self.opt['eval'], self.opt['path']['experiments_root'], self.opt['scale']
        gt_root = eval_opt['dataroot_gt']
        gt_paths = {os.path.splitext(os.path.basename(p))[0]: p for p in scan_images(gt_root)} if gt_root else {}
        exported = eval_opt['export'] or self.always_exports
        nets = {} if exported else {'base': self.source.copy(self.get_bare_model(self.net_g), self.device),
                                    'adapted': self.output_net()}
        for path in self.adapted_images:
            stem = os.path.splitext(os.path.basename(path))[0]
            lr = read_image(path)[0]
            box = (0, 0) + lr.shape[:2] if exported else most_detailed(lr, crop_boxes(
                *lr.shape[:2], eval_opt['crop_size'], self.REPORT_CANDIDATES, self.opt['manual_seed'],
                os.path.basename(path)))
            item = {'name': stem, 'lr': crop(lr, box)}
            for variant in ('base', 'adapted'):
                item[variant] = (read_image(os.path.join(root, 'results', variant, f'{stem}.png'))[0] if exported else
                                 self.upscale(nets[variant], item['lr']))
            if stem in gt_paths:
                gt = read_image(gt_paths[stem])[0]
                top, left, h, w = box
                item['gt'] = gt if exported else crop(gt, (scale * top, scale * left, scale * h, scale * w))
            yield item

    def upscale(self, net, img):
        """``img`` (H, W, 3 or 4) upscaled by ``net`` in eval mode (its mode restored after), tiled as
        ``eval.tile`` (``tta_sr.utils.tiling.upscale_image``)."""
        was_training = net.training
        net.eval()
        out = upscale_image(net, img, self.opt['scale'], self.opt['eval']['tile'], self.opt['eval']['tile_overlap'],
                            self.device)
        net.train(was_training)
        return out

    @master_only
    def write_run_report(self):
        """report.html, metrics.json, metrics.csv: base vs adapted (vs ``eval.dataroot_gt`` when given), one image
        at a time (:meth:`report_images`)."""
        root = self.opt['path']['experiments_root']
        eval_opt = self.opt['eval']
        result = write_report(root, self.report_images(), metrics=eval_opt['metrics'],
                              curves=dict(self.history), scale=self.opt['scale'], extra=self.report_extra(),
                              title=f'tta_sr: {self.opt["name"]}', device=self.device, gate=self.report_gate())
        logger = get_root_logger()
        for variant, scores in result['mean'].items():
            logger.info(f'{variant}: ' + ', '.join(f'{k} {v:.4f}' for k, v in scores.items() if v is not None))
        logger.info(f'Report: {result["html"]}')
