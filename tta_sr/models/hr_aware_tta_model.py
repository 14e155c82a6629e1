"""Stage 2: test-time adaptation of any registered SR network M on real LR images alone.

Modes (``train.mode``), with X_r an LR crop, e_d = E_deg(X_r) and R, E_img, E_deg, E_clip, T_a, T_m frozen:
- ``hr_aware`` (default): L_ft = L_rec(R(s * e_d, E_img(M(X_r))), X_r) + lambda_ft * L_far(E_img(M(X_r)),
  E_clip(M(X_r))), s = n + HQI(X_r, M(X_r)) (``train.controller``; ``flip_sign`` for the ablation
  s = n + 1 - HQI; ``enabled: false`` for s = 1). FAR is on when ``network_far`` and ``train.far_opt`` are set.
- ``lway``: L = L1(W * X_hat, W * X_r) + LPIPS(W * X_hat, W * X_r), X_hat = R(e_d, E_img(M(X_r))),
  W the DWT high-frequency weight of X_r.
- ``rec_only``: L_rec(R(e_d, E_img(M(X_r))), X_r).
- ``fixed``: L_rec(D(M(X_r)), X_r) with a known degradation D instead of the branch
  (``train.fixed_degradation``: a downscaler name of ``tta_sr.ops.downscalers``, default ``area``).
Anchors, each an option added to any mode: ``train.source_opt`` (the low frequencies of M(X_r), and with
``detail_weight`` the detail above them, to those of the frozen source model), ``train.color_opt`` (low
frequencies of down_aa(M(X_r)) to X_r), see ``tta_sr.losses.low_pass_loss``, or any loss such as
``ReconstructionLoss`` for a perceptual anchor);
``train.trainable`` (a subset of M); ``train.fisher_opt: {ratio, max_size}`` (SRTTA's parameter preservation,
``tta_sr.models.fisher_restoration``: after each step the ``ratio`` most important entries of every trainable
tensor go back to the source values; off by default).
Only M (or the subset ``train.trainable``) is optimised. e_d of each image is computed once, on the
whole image (``train.degradation_embedding: image``, default) or per crop (``crop``).
What the run hands back (``gate``, on by default): a family of candidates (``tta_sr.models.candidates``: the
source model, the weights at every validation, weight-space blends of the last weights with the source, each also
with an LR-consistency projection of its output) is scored on a bounded set of held-out LR crops by downscaled
self-validation, and the GT-free selector (``tta_sr.models.selector``) hands back the best, or the source model
when none beats it by a margin; the log, ``metrics.json`` (``gate``) and ``report.html`` show every candidate's
scores. ``models/net_g_latest.pth`` holds the chosen weights and ``models/net_g_adapted_latest.pth`` the last adapted ones
(for ``tta-sr upscale --strength``).
Outputs, in the experiment folder: ``results/base`` (M before adaptation, written at start),
``results/adapted`` (after), and ``report.html``/``metrics.json``/``metrics.csv`` (see ``eval``; ``gate`` in
``metrics.json``).
"""
import functools
import math
import os
import time
from collections import OrderedDict, defaultdict

import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.data.crop_budget import crop, crop_boxes, round_robin
from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_sr.models.candidates import Candidate, blend_state, candidate_family
from tta_sr.models.branch_components import Controller, build_far
from tta_sr.models.model_base import TTASRModelMixin, load_weights_into
from tta_sr.models.selector import (Selection, choose, degradation_estimate, distrust_reason, mean_psnr_y,
                                    projected, reference_pair, self_validation_scores)
from tta_sr.models.source_weights import SourceWeights
from tta_sr.models.sr_adaptation import SRAdaptationMixin, lr_image_tensor, select_trainable  # noqa: F401 (re-exported)
from tta_sr.ops.back_projection import BackProjected, branch_degrader
from tta_sr.ops.downscalers import downscale, parse_downscaler
from tta_sr.options.stage2 import VAL, controller_options
from tta_sr.utils.freeze import freeze
from tta_sr.utils.image_io import pad_to_min_size, read_image, to_tensor
from tta_sr.weights.branches import branch_source
from tta_sr.weights.resolver import load_state_dict


@MODEL_REGISTRY.register()
class HRAwareTTAModel(SRAdaptationMixin, TTASRModelMixin, SRModel):
    """``network_g``: any ARCH_REGISTRY network, ``path.pretrain_network_g``: a file or manifest name."""

    # ------------------------------------------------------------------ set-up
    def init_training_settings(self):
        train_opt = self.opt['train']
        self.mode = train_opt['mode']
        self.net_g.train()
        self._build_branch()
        self.cri_rec = build_loss(train_opt['rec_opt']).to(self.device)
        self.cri_source, self.cri_color = (build_loss(train_opt[key]).to(self.device) if train_opt[key] else None
                                           for key in ('source_opt', 'color_opt'))
        resumed = bool(self.opt['path']['resume_state'])
        self.source = SourceWeights(self.get_bare_model(self.net_g), self.opt['path'])
        self.net_source = (self.source.copy(self.get_bare_model(self.net_g), self.device)
                           if self.cri_source is not None else None)
        self.gate_opt = self.opt['gate']
        self.gate_result, self.projection, self.checkpoints, self.last_iter = None, None, {}, 0
        self.embedding_source = train_opt['degradation_embedding']
        self.embedding_max_size = train_opt['degradation_embedding_max_size']
        self._embeddings = {}
        self.history = defaultdict(list)
        self._init_ema()
        self._init_early_stopping(train_opt['early_stopping'])
        self.setup_optimizers()
        self.setup_schedulers()
        fisher_opt = train_opt['fisher_opt']
        self.build_fisher_restoration(fisher_opt['ratio'], fisher_opt['max_size'], self.source.state)
        self.announce_hand_back()
        if not resumed:
            if self.opt['eval']['export']:
                self.export_outputs('base')

    def _build_branch(self):
        """Frozen R, E_deg, E_img (LRReconNet) and, in hr_aware mode, E_clip, T_a, T_m and the controller;
        in fixed mode, the known downscaler D instead."""
        self.net_recon, self.far_encoder, self.cri_far, self.controller = None, None, None, None
        if self.mode == 'fixed':
            self.fixed_degradation = self.opt['train']['fixed_degradation']
            parse_downscaler(self.fixed_degradation)
            return
        path, shipped = branch_source(self.opt['path']['pretrain_network_recon'])
        recon_opt = self.opt.get('network_recon') or shipped['network_recon']
        self.net_recon = build_network(recon_opt).to(self.device)
        load_weights_into(self.net_recon, path, param_key=self.opt['path']['param_key_recon'])
        freeze(self.net_recon)
        if self.mode != 'hr_aware':
            return
        far_opt = dict(shipped.get('far_opt') or {}, **(self.opt['train']['far_opt'] or {}))
        far_opts = dict(self.opt, network_far=self.opt.get('network_far') or shipped.get('network_far'),
                        train=dict(self.opt['train'], far_opt=far_opt))
        if self.opt['train']['use_far']:
            self.far_encoder, self.cri_far = build_far(far_opts, self.device)
        if self.cri_far is not None:
            self.cri_far.load_state_dict(load_state_dict(path, param_key='params_far'))
            freeze(self.cri_far)
        controller_opt = controller_options(shipped.get('controller'), self.opt['train']['controller'])
        self.controller = Controller(controller_opt, 'finetune', recon_opt.get('emb_dim', 512), self.device)

    def _init_ema(self):
        """EMA of M starts from M's weights (or from the checkpoint's ``params_ema`` on resume)."""
        self.ema_decay = self.opt['train']['ema_decay']
        if self.ema_decay <= 0:
            return
        self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
        if self.opt['path']['resume_state']:
            self.load_network(self.net_g_ema, self.opt['path']['pretrain_network_g'], True, 'params_ema')
        else:
            self.model_ema(0)
        self.net_g_ema.eval()

    def _init_early_stopping(self, opt):
        """``train.early_stopping: {patience: N}``: stop after N validations without a lower ``val.monitor``."""
        self.patience = opt['patience']
        self.monitor = self.opt['val']['monitor'] if self.opt.get('val') else VAL.default('monitor')
        self.best_value, self.best_iter, self.best_state, self.bad_checks, self.stopped = math.inf, 0, None, 0, False
        self.finished = False  # set by the end-of-training save: the weights are decided

    # ------------------------------------------------------------------ training
    def feed_data(self, data):
        self.lq = data['lq'].to(self.device)
        self.lq_paths = data.get('lq_path')
        self.hf_weight = data['hf_weight'].to(self.device) if 'hf_weight' in data else None

    @torch.no_grad()
    def degradation_embedding(self, lq, paths):
        """e_d (B, C_d): per whole image (cached by path) or per crop."""
        if self.embedding_source == 'crop' or paths is None:
            return self.net_recon.encode_degradation(lq)
        for path in set(paths) - set(self._embeddings):
            image = lr_image_tensor(path, self.embedding_max_size, self.device)
            self._embeddings[path] = self.net_recon.encode_degradation(image)[0]
        return torch.stack([self._embeddings[p] for p in paths])

    def adaptation_loss(self, lq, sr, paths, hf_weight=None, noise=True):
        """The mode's loss and the anchors for LR ``lq`` (B, 3, H, W) and M's output ``sr`` (B, 3, aH, aW);
        (total, parts)."""
        parts = self.branch_loss(lq, sr, paths, hf_weight, noise) if self.mode != 'fixed' else OrderedDict(
            l_rec=self.cri_rec(downscale(sr, self.opt['scale'], self.fixed_degradation), lq))
        if self.cri_source is not None:
            with torch.no_grad():
                source_sr = self.net_source(lq)
            parts['l_source'] = self.cri_source(sr, source_sr)
        if self.cri_color is not None:
            parts['l_color'] = self.cri_color(downscale(sr, self.opt['scale'], 'bicubic_aa'), lq)
        return sum(parts.values()), parts

    def branch_loss(self, lq, sr, paths, hf_weight=None, noise=True):
        """The terms of the branch modes (hr_aware, lway, rec_only): OrderedDict(l_rec[, l_far])."""
        parts = OrderedDict()
        e_d = self.degradation_embedding(lq, paths)
        s = self.controller(lq, sr.detach(), noise=noise) if self.controller is not None else None
        e_im = self.net_recon.encode_image(sr)
        x_hat = self.net_recon.reconstruct(e_d, e_im, sr, s)
        weight = None
        if self.mode == 'lway':
            if hf_weight is None:
                raise ValueError("train.mode 'lway' needs the dataset option return_hf_weight: true")
            weight = hf_weight
        parts['l_rec'] = self.cri_rec(x_hat, lq, weight=weight)
        if self.cri_far is not None:
            parts['l_far'] = self.cri_far(e_im, self.far_encoder(sr))
        return parts

    def optimize_parameters(self, current_iter):
        if self.stopped:
            return
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        l_total, parts = self.adaptation_loss(self.lq, self.output, self.lq_paths, self.hf_weight)
        self.log_dict = self.reduce_loss_dict(parts)
        self.last_iter = current_iter
        for key, value in self.log_dict.items():
            self.history[key].append((current_iter, value))
        if self.guarded_step(l_total, current_iter) and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    # ------------------------------------------------------------------ validation, early stopping
    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Self-supervised loss (noise-free) of the validation split; drives early stopping."""
        net = self._eval_net()
        was_training = net.training
        net.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for data in dataloader:
                self.feed_data(data)
                loss, _ = self.adaptation_loss(self.lq, net(self.lq), self.lq_paths, self.hf_weight, noise=False)
                total, count = total + loss.item() * self.lq.size(0), count + self.lq.size(0)
        net.train(was_training)
        self.metric_results = {'ssl_loss': total / max(count, 1)}
        self.history['val_ssl_loss'].append((current_iter, self.metric_results['ssl_loss']))
        get_root_logger().info(f'Validation @ iter {current_iter}: ssl_loss {self.metric_results["ssl_loss"]:.5f}')
        if tb_logger:
            tb_logger.add_scalar('metrics/ssl_loss', self.metric_results['ssl_loss'], current_iter)
        if self.finished:  # BasicSR validates once more after the final save: report, decide nothing
            return
        self.record_candidate(current_iter)
        self._early_stopping_check(current_iter)

    def _early_stopping_check(self, current_iter):
        """A validation with a lower monitor value becomes the best state."""
        value = self.metric_results[self.monitor]
        if value < self.best_value:
            self.best_value, self.best_iter, self.bad_checks = value, current_iter, 0
            self.best_state = [{k: v.detach().clone() for k, v in self.get_bare_model(n).state_dict().items()}
                               for n in self._adapted_nets()]
            return
        self.bad_checks += 1
        if self.patience and self.bad_checks >= self.patience and not self.stopped and self.best_state is not None:
            for net, state in zip(self._adapted_nets(), self.best_state):
                self.get_bare_model(net).load_state_dict(state)
            self.stopped = True
            get_root_logger().info(f'Early stopping at iter {current_iter}: {self.monitor} did not improve for '
                                   f'{self.patience} validations; restored the best weights (iter {self.best_iter}). '
                                   'Remaining iterations are skipped.')

    def restore_best(self):
        """With early stopping on, end on the weights of the best validation (not the last iteration)."""
        if not self.patience or self.best_state is None or self.stopped:
            return
        for net, state in zip(self._adapted_nets(), self.best_state):
            self.get_bare_model(net).load_state_dict(state)
        get_root_logger().info(f'End of training: restored the weights of the best validation '
                               f'({self.monitor} {self.best_value:.5f} at iter {self.best_iter}).')

    _EARLY_STOPPING_STATE = ('best_value', 'best_iter', 'bad_checks', 'stopped', 'best_state')

    def extra_training_state(self):
        """Early-stopping state, the candidates' checkpoints and the loss/validation curves survive a resume."""
        return {'early_stopping': {k: getattr(self, k) for k in self._EARLY_STOPPING_STATE},
                'checkpoints': self.checkpoints, 'last_iter': self.last_iter,
                'history': {k: [list(p) for p in v] for k, v in self.history.items()}}

    def load_extra_training_state(self, state):
        for key, value in (state.get('early_stopping') or {}).items():
            setattr(self, key, value)
        self.checkpoints = dict(state.get('checkpoints') or {})
        self.last_iter = state.get('last_iter') or 0
        for key, points in (state.get('history') or {}).items():
            self.history[key] = [tuple(p) for p in points]

    def _adapted_nets(self):
        return [self.net_g] + ([self.net_g_ema] if hasattr(self, 'net_g_ema') else [])

    # ------------------------------------------------------------------ what the run hands back
    @functools.cached_property
    def gate_images(self):
        """The LR images the selector judges on: the validation split, or all adapted images when there is none or
        it holds fewer than ``gate.min_images`` (a mean over one or two images decides on too little; the
        self-validation scores are not the training loss, so the training images are fair, if optimistic,
        witnesses)."""
        val_opt = self.opt['datasets'].get('val')
        if val_opt and val_opt['type'] == 'LRImageDataset':
            paths = LRImageDataset(dict(val_opt, phase='val')).paths
            if len(paths) >= self.gate_opt['min_images']:
                return paths
        return self.adapted_images

    @functools.cached_property
    def gate_crops(self):
        """The LR crops (H, W, 3) judged, read once: ``tta_sr.data.crop_budget`` over the gate images
        (``gate.crop_size``, ``crops_per_image``, ``max_crops``); images no larger than the crop size are whole."""
        crops = {}
        for path in self.gate_images:  # one whole photo in memory at a time
            rgb = read_image(path)[0]
            crops[path] = [crop(rgb, box).copy() for box in crop_boxes(
                *rgb.shape[:2], self.gate_opt['crop_size'], self.gate_opt['crops_per_image'], self.opt['manual_seed'],
                os.path.basename(path))]
        return [rgb for _, rgb in round_robin(crops, self.gate_opt['max_crops'])]

    @functools.cached_property
    def reference_pairs(self):
        """[(X_d, X)] of the judged crops (``tta_sr.models.selector.reference_pair``), computed once; a crop smaller
        than 4 x scale is reflect-padded to that size first (X_d of at least 4 pixels)."""
        reference = self.gate_opt['reference']
        if reference == 'branch' and self.net_recon is None:
            raise ValueError("gate.reference 'branch' needs a reconstruction branch; train.mode 'fixed' has none")
        return self._pairs(reference)

    @functools.cached_property
    def noise_matched_pairs(self):
        """[(X_d', X)] of the judged crops with the noise-matched input (``gate.max_noise_matched_loss_db``'s check),
        computed once (the reference pairs themselves when ``gate.reference`` is ``noise_matched``); None when the
        check is off."""
        if self.gate_opt['max_noise_matched_loss_db'] is None:
            return None
        return self.reference_pairs if self.gate_opt['reference'] == 'noise_matched' else self._pairs('noise_matched')

    def _pairs(self, reference):
        side = 4 * self.opt['scale']
        source = self.candidate_net(Candidate()) if reference == 'noise_matched' else None
        return [reference_pair(to_tensor(pad_to_min_size(rgb, side, side), self.device)[0][None], self.opt['scale'],
                               reference, self.net_recon, source) for rgb in self.gate_crops]

    def degrader(self, kind):
        """The D of a projection kind: None (neutral, antialiased bicubic) or the branch's ``branch_degrader``."""
        if kind == 'branch':
            if self.net_recon is None:
                raise ValueError("gate.projection 'branch' needs a reconstruction branch; train.mode 'fixed' has none")
            return branch_degrader(self.net_recon)
        return None

    def record_candidate(self, current_iter):
        """Keep the adapted weights of this iteration (of the net the outputs come from) as a candidate; without
        ``gate.checkpoints`` only the latest are kept."""
        if not self.gate_opt['enabled']:
            return
        if not self.gate_opt['checkpoints']:
            self.checkpoints.clear()
        self.checkpoints[current_iter] = {k: v.detach().to('cpu', copy=True)
                                          for k, v in self.get_bare_model(self._eval_net()).state_dict().items()}

    def save_adapted(self):
        """``models/net_g_adapted_latest.pth``: the adapted weights before the selector chooses (the end of
        ``tta-sr upscale --strength``'s line from the source)."""
        if self.gate_opt['enabled']:
            self.save_network(self._eval_net(), 'net_g_adapted', -1)

    def candidate_state(self, candidate):
        """The weights of a candidate (``tta_sr.models.candidates.Candidate``)."""
        if candidate.iteration is None:
            return self.source.state
        return blend_state(self.source.state, self.checkpoints[candidate.iteration], candidate.alpha)

    def candidate_net(self, candidate, net=None):
        """A frozen network with the candidate's weights (``net``, reused, when given), wrapped in its projection."""
        net = net or self.source.copy(self.get_bare_model(self.net_g), self.device)
        net.load_state_dict(self.candidate_state(candidate))
        return self.projected_net(net, candidate.projection)

    def projected_net(self, net, kind):
        """``net`` followed by the LR-consistency projection of ``kind`` (None: ``net`` itself)."""
        return BackProjected(net, self.opt['scale'], self.gate_opt['projection_steps'], self.degrader(kind)) \
            if kind else net

    @torch.no_grad()
    def score_candidates(self, family):
        """Every candidate's dict (``Candidate.as_dict``) with its self-validation scores on the reference pairs, and
        ``nm_psnr_y`` on the noise-matched pairs when that check is on; the net runs once per weights and pairs, each
        projection is applied to those outputs."""
        from tta_sr.archs.lpips_arch import build_lpips
        lpips, scale, steps = build_lpips(device=self.device), self.opt['scale'], self.gate_opt['projection_steps']
        pair_sets = {'': self.reference_pairs, 'nm': self.noise_matched_pairs}
        net, rows, outputs = self.source.copy(self.get_bare_model(self.net_g), self.device), [], {}
        for candidate in family:
            key = (candidate.iteration, candidate.alpha)
            if key not in outputs:  # the crops are small: every weights' outputs are kept for their projections
                net.load_state_dict(self.candidate_state(candidate))
                outputs[key] = {'': [net(x_d) for x_d, _ in pair_sets['']]}
                if pair_sets['nm']:  # the reference pairs themselves with reference noise_matched: run once
                    outputs[key]['nm'] = (outputs[key][''] if pair_sets['nm'] is pair_sets[''] else
                                          [net(x_d) for x_d, _ in pair_sets['nm']])
            outs = outputs[key]
            if candidate.projection:
                degrader = self.degrader(candidate.projection)
                outs = {k: projected(out, pair_sets[k], scale, steps, degrader) for k, out in outs.items()}
            row = dict(candidate.as_dict(), **self_validation_scores(outs[''], pair_sets[''], lpips))
            if 'nm' in outs:
                row['nm_psnr_y'] = mean_psnr_y(outs['nm'], pair_sets['nm'])
            rows.append(row)
        return rows

    @functools.cached_property
    def degradation(self):
        """The branch's estimate of the judged crops' degradation (``selector.degradation_estimate``), or None;
        computed once (R and the crops are fixed); None without a branch, and then no crop is read for it."""
        if self.net_recon is None:
            return None
        return degradation_estimate(self.net_recon, [x for _, x in self.reference_pairs])

    def announce_hand_back(self):
        """Before training: warn when the LR alone already rules out every adapted candidate
        (``selector.distrust_reason``), so that a user need not wait for the end to learn it."""
        distrust = distrust_reason(self.degradation, self.gate_opt) if self.gate_opt['enabled'] else None
        if distrust:
            get_root_logger().warning(f'Hand-back: {distrust}, so this run will keep the source model. The adapted '
                                      'weights still go to models/net_g_adapted_latest.pth, for tta-sr upscale '
                                      '--strength.')

    def candidate_family(self):
        """The candidates of this run (``tta_sr.models.candidates.candidate_family``), the source first."""
        return candidate_family(list(self.checkpoints), self.gate_opt['alphas'], self.gate_opt['projection'])

    def select_hand_back(self):
        """End of training: score the candidates, load the chosen weights (and projection), record the decision."""
        if not self.gate_opt['enabled']:
            return
        start = time.perf_counter()
        self.record_candidate(self.best_iter if self.best_state is not None and self.patience else self.last_iter)
        family = self.candidate_family()
        rows = self.score_candidates(family)
        degradation = self.degradation
        chosen, reason = choose(rows, self.gate_opt, degradation)
        selection = Selection(rows, chosen, reason, degradation, time.perf_counter() - start)
        state, self.projection = self.candidate_state(family[chosen]), family[chosen].projection
        for net in self._adapted_nets():
            self.get_bare_model(net).load_state_dict(state)
        self.gate_result = selection.as_dict()
        logger = get_root_logger()
        for row in rows:
            noise_matched = f', noise-matched {row["nm_psnr_y"]:.3f} dB' if 'nm_psnr_y' in row else ''
            logger.info(f'candidate {row["name"]:<40} self-validation PSNR-Y {row["sv_psnr_y"]:.3f} dB, '
                        f'LPIPS {row["sv_lpips"]:.4f}{noise_matched}')
        seen = ('no branch to estimate the degradation' if degradation is None else
                f'the branch sees blur sigma {degradation["blur_sigma"]:.2f}, residual gate '
                f'{degradation["residual_gate"]:.3f}')
        logger.info(f'Hand-back: {selection.summary()}; {seen}; {len(rows)} candidates scored in '
                    f'{selection.seconds:.1f} s ({selection.seconds / len(rows):.2f} s each)')

    def output_net(self):
        return self.projected_net(self._eval_net(), self.projection)

    # ------------------------------------------------------------------ outputs
    def save(self, epoch, current_iter):
        if current_iter == -1:  # end of training: the weights saved, exported and reported are the selector's choice
            self.restore_best()
            self.save_adapted()
            self.select_hand_back()
            self.finished = True
        super().save(epoch, current_iter)
        if current_iter == -1:
            if self.opt['eval']['export']:
                self.export_outputs('adapted')
            self.write_run_report()

    def report_extra(self):
        return {'mode': self.mode, 'network_g': self.opt['network_g']['type'],
                'lpips_in_loss': getattr(self.cri_rec, 'lpips_name', None), 'stopped_early': self.stopped,
                'best_iter': self.best_iter if self.best_state is not None else None}

    def report_gate(self):
        return self.gate_result
