"""SRTTA (Deng et al., NeurIPS 2023): test-time adaptation of any registered SR network M by second-order
degradation and feature reconstruction, with adaptive parameter preservation.

One BasicSR iteration adapts M to one whole LR test image I (``LRImageDataset`` with ``lq_size: 0``):

1. types t = [sigmoid(C(I)) > 0.5] over (blur, noise, jpeg), from the degradation classifier C
   (``path.pretrain_network_classifier``, or fixed by ``train.types``). No type present: I is not adapted
   (its output is M's as it stands), as in the official code.
2. ``train.per_image_reset`` (default true): M and its optimizer are reset to the source M_0 first;
   false is SRTTA's lifelong setting (M keeps adapting from image to image).
3. ``train.iterations_per_image`` steps, each on ``patch_batch`` random patches X (``patch_size`` LR pixels,
   flipped / transposed) of I and their second-order degradation X' = D_t(X) by the predicted types (a fresh
   kernel, noise level and JPEG quality per patch; ``tta_sr.data.degradation_types``):

       L = Charb(f_M(X'), sg[f_M(X)]) + teacher_weight * Charb(f_M(X'), f_M0(X)),

   f the features of ``tta_sr.utils.feature_tap`` (the input of the last nn.Conv2d, or ``train.feature_layer``),
   M_0 the frozen source model, Charbonnier as in ``fisher_restoration``; an Adam step, then the
   ``fisher_opt.ratio`` most important entries of every trainable tensor go back to M_0's values
   (``FisherRestoration``, estimated once at start, GT-free, on the LR images being adapted).
4. I is upscaled by the adapted M into ``results/adapted/<stem>.png``.

Images the run has not reached when training ends (``total_iter`` below the number of images) are adapted
then, so every image has its adapted output; ``report.html``/``metrics.json`` follow (base vs adapted).
"""
import copy
import os
import time
from collections import OrderedDict, defaultdict

import torch

from basicsr.archs import build_network
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.data.degradation_types import (apply_types, degradation_settings, identity_kernel, random_kernel,
                                           types_of, types_vector)
from tta_sr.data.second_order_degradation import make_jpeger
from tta_sr.data.transforms import center_crop, random_crop, random_flip
from tta_sr.models.fisher_restoration import charbonnier
from tta_sr.models.model_base import TTASRModelMixin, load_weights_into
from tta_sr.models.source_weights import SourceWeights
from tta_sr.models.sr_adaptation import SRAdaptationMixin, lr_image_tensor
from tta_sr.utils.feature_tap import FeatureTap
from tta_sr.utils.freeze import freeze
from tta_sr.utils.image_io import pad_to_min_size, to_tensor
from tta_sr.utils.training_health import LossHealthGuard
from tta_sr.weights.branches import classifier_source


def load_classifier(name_or_path, device='cpu', network_opt=None):
    """The frozen degradation classifier: a shipped name (``cpu``) or a checkpoint file with ``network_opt``."""
    path, shipped = classifier_source(name_or_path)
    network_opt = network_opt or shipped.get('network_classifier')
    if not network_opt:
        raise ValueError(f'degradation classifier {path} is a checkpoint file: give its network options as '
                         'train.network_classifier (e.g. {type: DegradationClassifier, num_feat: 24})')
    net = build_network(dict(network_opt)).to(device)
    load_weights_into(net, path, param_key='params')
    return freeze(net)


@MODEL_REGISTRY.register()
class SRTTAModel(SRAdaptationMixin, TTASRModelMixin, SRModel):
    """``network_g``: any ARCH_REGISTRY network; options in ``train`` (see ``docs/srtta.md``)."""

    always_exports = True  # each photo's adapted model exists only while it adapts that photo

    def init_training_settings(self):
        if self.opt.get('dist'):
            raise ValueError('SRTTAModel adapts one image at a time; run it without --launcher')
        train_opt = self.opt['train']
        self.net_g.train()
        self.ema_decay = 0
        self.iterations = train_opt['iterations_per_image']
        self.patch_size, self.patch_batch = train_opt['patch_size'], train_opt['patch_batch']
        self.teacher_weight = train_opt['teacher_weight']
        self.per_image_reset = train_opt['per_image_reset']
        self.eps = train_opt['charbonnier_eps']
        self.classifier_max_size = train_opt['classifier_max_size']
        self.degradation = degradation_settings(train_opt['degradation'])
        self.jpeger = make_jpeger(self.device)
        bare = self.get_bare_model(self.net_g)
        self.teacher = SourceWeights(bare, self.opt['path']).copy(bare, self.device)  # M_0, frozen
        self.student_features = FeatureTap(self.get_bare_model(self.net_g), train_opt['feature_layer'])
        self.teacher_features = FeatureTap(self.teacher, self.student_features.name)
        fixed = train_opt['types']
        self.fixed_types = None if fixed is None else types_vector(fixed).bool().to(self.device)
        self.classifier = None if fixed is not None else load_classifier(
            self.opt['path']['pretrain_network_classifier'], self.device, train_opt['network_classifier'])
        self.history, self.image_log, self.step_times, self.adapted = defaultdict(list), {}, [], []
        self.setup_optimizers()
        self.setup_schedulers()
        self._optimizer_source = copy.deepcopy(self.optimizer_g.state_dict())
        self.build_fisher_restoration(train_opt['fisher_opt']['ratio'], train_opt['fisher_opt']['max_size'],
                                      self.teacher.state_dict(), self.eps)
        if not self.opt['path']['resume_state']:
            self.export_outputs('base')

    # ------------------------------------------------------------------ adaptation
    def feed_data(self, data):
        """``lq``: (B, 3, H, W) whole LR images (usually B = 1), ``lq_path`` their files."""
        self.lq = data['lq'].to(self.device)
        self.lq_paths = data.get('lq_path')

    def optimize_parameters(self, current_iter):
        losses = []
        for image, path in zip(self.lq, self.lq_paths):
            losses += self.adapt_image(image, path, current_iter)
        self.log_dict = OrderedDict(l_srtta=sum(losses) / len(losses)) if losses else OrderedDict()

    def reset_to_source(self):
        """M and its optimizer back to M_0 and the initial optimizer state."""
        self.get_bare_model(self.net_g).load_state_dict(self.teacher.state_dict())
        self.optimizer_g.load_state_dict(copy.deepcopy(self._optimizer_source))
        self.health = LossHealthGuard.from_opt(self.opt)  # its last good copy belonged to the previous image

    @torch.no_grad()
    def predict_types(self, image):
        """(3,) bool: the degradation types of the LR image (3, H, W), centre-cropped to ``classifier_max_size``."""
        if self.fixed_types is not None:
            return self.fixed_types
        logits = self.classifier(center_crop(image, self.classifier_max_size)[None])
        return torch.sigmoid(logits)[0] > 0.5

    def sample_patches(self, image):
        """(patch_batch, 3, p, p): random crops of the LR image (3, H, W), each flipped / transposed at random."""
        return torch.stack([random_flip(random_crop([image], self.patch_size), True, True)[0]
                            for _ in range(self.patch_batch)]).contiguous()

    def adapt_image(self, image, path, current_iter):
        """Adapt M to the LR image (3, H, W) at ``path``, then write its adapted output; returns the step losses."""
        start = time.perf_counter()
        if self.per_image_reset:
            self.reset_to_source()
        present = self.predict_types(image)
        if min(image.shape[1:]) < self.patch_size:
            image = to_tensor(pad_to_min_size(image.permute(1, 2, 0).cpu().numpy(), self.patch_size,
                                              self.patch_size), self.device)[0]
        losses = [self.adapt_step(self.sample_patches(image), present, current_iter)
                  for _ in range(self.iterations if present.any() else 0)]
        adapt_seconds = time.perf_counter() - start
        self.export_outputs('adapted', [path])
        stem = os.path.splitext(os.path.basename(path))[0]
        self.image_log[stem] = {'types': types_of(present), 'losses': losses, 'adapt_s': adapt_seconds,
                                'total_s': time.perf_counter() - start}
        self.adapted.append(stem)
        get_root_logger().info(f'SRTTA {stem}: types {types_of(present) or "none (not adapted)"}, '
                               f'{len(losses)} steps in {adapt_seconds:.1f} s' +
                               (f', loss {losses[0]:.5f} -> {losses[-1]:.5f}' if losses else ''))
        return losses

    def adapt_step(self, patches, present, current_iter):
        """One SRTTA step on LR patches X (B, 3, p, p) with the types ``present`` (3,) bool; returns L."""
        start = time.perf_counter()
        batch = patches.size(0)
        kernels = torch.stack([torch.from_numpy(random_kernel(self.degradation) if present[0] else identity_kernel())
                               for _ in range(batch)])
        with torch.no_grad():
            degraded = apply_types(patches, present.expand(batch, 3), kernels, self.degradation, self.jpeger)
            target = self.student_features(patches)
            target_teacher = self.teacher_features(patches) if self.teacher_weight > 0 else None
        self.optimizer_g.zero_grad()
        features = self.student_features(degraded)
        loss = charbonnier(features, target, self.eps)
        if target_teacher is not None:
            loss = loss + self.teacher_weight * charbonnier(features, target_teacher, self.eps)
        self.guarded_step(loss, current_iter)
        self.step_times.append(time.perf_counter() - start)
        self.history['l_srtta'].append((len(self.step_times), loss.item()))
        return loss.item()

    # ------------------------------------------------------------------ end of run, resume, report
    def save(self, epoch, current_iter):
        if current_iter == -1:  # end of training: every image gets its adapted output
            for path in self.adapted_images:
                if os.path.splitext(os.path.basename(path))[0] not in self.adapted:
                    self.adapt_image(lr_image_tensor(path, 0, self.device)[0], path, current_iter)
        super().save(epoch, current_iter)
        if current_iter == -1:
            self.write_run_report()

    def extra_training_state(self):
        return {'adapted': list(self.adapted), 'image_log': copy.deepcopy(self.image_log),
                'history': {k: [list(p) for p in v] for k, v in self.history.items()}}

    def load_extra_training_state(self, state):
        self.adapted = list(state.get('adapted') or [])
        self.image_log = dict(state.get('image_log') or {})
        for key, points in (state.get('history') or {}).items():
            self.history[key] = [tuple(p) for p in points]

    def report_extra(self):
        train_opt = self.opt['train']
        return {'mode': 'srtta', 'network_g': self.opt['network_g']['type'], 'per_image_reset': self.per_image_reset,
                'iterations_per_image': self.iterations, 'patch_size': self.patch_size,
                'patch_batch': self.patch_batch, 'teacher_weight': self.teacher_weight,
                'fisher_ratio': train_opt['fisher_opt']['ratio'], 'fisher_seconds': self.fisher_seconds,
                'feature_layer': self.student_features.name,
                'classifier': None if self.classifier is None else self.opt['path']['pretrain_network_classifier'],
                'images': self.image_log}
