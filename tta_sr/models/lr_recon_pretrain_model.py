"""Stage 1: pretrain the LR reconstruction branch on HR images degraded on the fly.

L_pt = L_rec(R(E_deg(X_s), E_img(Y_gt), Y_gt, s), X_s) + lambda_pt * Phi_far(Y_gt) [+ L_con(E_deg)] [+ L_prior] [+ L_residual],
s = n + (1 - HQI(X_s, Y_gt)), Phi_far(Y) = L_far(E_img(Y), E_clip(Y)).
Trained: E_deg, E_img, R (``network_g``: LRReconNet) and FAR's T_a, T_m. Frozen: E_clip (``network_far``).
Without ``train.controller`` and ``train.far_opt`` this is LWay's branch: R(E_deg(X), E_img(Y), Y), L1 + LPIPS.

Each HR patch is degraded in a family drawn with ``family_prob`` (``tta_sr.data.degradation_families``:
second_order, mild, bicubic). With ``train.contrastive_opt`` (a DegradationContrastiveLoss), every
degradation draw is applied to two HR windows, of image i and of image i - 1 of the batch (of image i
itself in a batch of one); the batch holds both views, and L_con pulls their E_deg embeddings together
and pushes the other degradations of the batch away. Two windows of one photo would share its colours and
content as well, and the encoder learnt to match those instead of the degradation. With ``train.prior_opt``
(a PriorSelectionLoss) and a branch with a physical prior, E_deg is also told which downscaler of R's bank
explains each pair best; ``train.residual_opt`` (an L1Loss) penalises the gated residual R adds to the
bank, so that R leaves a degradation that the bank explains (the bicubic family) to the bank alone.
Checkpoints hold ``params`` (and ``params_ema``) for LRReconNet and ``params_far`` for T_a, T_m.
"""
import random
from collections import OrderedDict

import torch

from basicsr.losses import build_loss
from basicsr.metrics import calculate_psnr
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.archs.lpips_arch import build_lpips
from tta_sr.data.degradation_families import degrade, draw_family, family_options, family_probabilities
from tta_sr.data.second_order_degradation import make_jpeger, seeded
from tta_sr.models.branch_components import Controller, build_far
from tta_sr.models.model_base import TTASRModelMixin
from tta_sr.ops.downscalers import PLAIN, downscale
from tta_sr.weights.resolver import load_state_dict

PSNR_CAP_DB = 100.0  # the validation PSNR of an exact 8-bit match (whose MSE is 0)


def capped_psnr(image, target):
    """PSNR (dB, RGB, 8-bit) of ``image`` (3, H, W) in [0, 1] against the 8-bit ``target``, at most PSNR_CAP_DB."""
    return min(calculate_psnr(tensor2img(image), target, 0), PSNR_CAP_DB)


@MODEL_REGISTRY.register()
class LRReconPretrainModel(TTASRModelMixin, SRModel):
    """``network_g`` is the LRReconNet; ``train.pixel_opt`` is L_rec (a ReconstructionLoss)."""

    def init_training_settings(self):
        self.far_encoder, self.cri_far = build_far(self.opt, self.device)
        self.controller = Controller(self.opt['train'].get('controller', {'enabled': False}), 'pretrain',
                                     self.opt['network_g'].get('emb_dim', 512), self.device)
        self._load_far_heads(self.opt['path'].get('pretrain_network_g'))
        self.jpeger = make_jpeger(self.device)
        self.degradation = family_options(self.opt)
        self.family_prob = family_probabilities(self.opt)
        self.cri_con, self.cri_prior, self.cri_residual = (
            build_loss(self.opt['train'][key]).to(self.device) if self.opt['train'].get(key) else None
            for key in ('contrastive_opt', 'prior_opt', 'residual_opt'))
        if (self.cri_prior or self.cri_residual) and self.get_bare_model(self.net_g).reconstructor.bank is None:
            raise ValueError('train.prior_opt and train.residual_opt need network_g.prior (a bank of downscalers)')
        super().init_training_settings()

    def _load_far_heads(self, path):
        """T_a, T_m from ``params_far`` of a stage-1 checkpoint (resume or fine-tune from one)."""
        if path is None or self.cri_far is None:
            return
        self.cri_far.load_state_dict(load_state_dict(path, param_key='params_far'))

    def setup_optimizers(self):
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        if self.cri_far is not None:
            params += list(self.cri_far.parameters())
        optim_opt = dict(self.opt['train']['optim_g'])
        self.optimizer_g = self.get_optimizer(optim_opt.pop('type'), params, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    @torch.no_grad()
    def feed_data(self, data):
        """Train: crop ``gt`` (a second view with the contrastive loss, see the module docstring) and degrade each
        image in its family into ``lq``; the batch is (view 1 of every image, then view 2). Val: take both.

        Unlike Real-ESRGAN's training, ``gt`` is not USM-sharpened before the degradation: the branch
        sees (X_s, Y_gt), so X_s must be the degradation of that very Y_gt (as in the validation pairs);
        degrading a sharpened copy taught a branch to sharpen first, and cost it on held-out pairs.
        """
        self.gt = data['gt'].to(self.device)
        if 'lq' in data:
            self.lq = data['lq'].to(self.device)
            return
        kernels = [data[k].to(self.device) for k in ('kernel1', 'kernel2', 'sinc_kernel')]
        gt_size, scale = self.opt['gt_size'], self.opt['scale']
        views = [_random_crop_pair(self.gt, gt_size)]
        if self.cri_con is not None:  # the second view of image i is another image under image i's degradation
            views.append(_random_crop_pair(self.gt.roll(1, dims=0), gt_size))
        lqs = [[] for _ in views]
        for i in range(self.gt.shape[0]):
            family, seed = draw_family(self.family_prob), random.randrange(2 ** 31)
            for view, out in zip(views, lqs):
                with seeded(seed):  # the same draw of the family's randomness for every view of image i
                    out.append(degrade(family, view[i:i + 1], [k[i:i + 1] for k in kernels], scale,
                                       self.degradation, self.jpeger))
        self.gt = torch.cat(views)
        self.lq = torch.cat([x for out in lqs for x in out]).contiguous()

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        s = self.controller(self.lq, self.gt)
        self.output, e_im, e_d = self.net_g(self.lq, self.gt, s, return_features=True)
        loss_dict = OrderedDict()
        l_total = loss_dict['l_rec'] = self.cri_pix(self.output, self.lq)
        if self.cri_con is not None:
            half = e_d.shape[0] // 2
            loss_dict['l_con'] = self.cri_con(e_d[:half], e_d[half:])
            l_total = l_total + loss_dict['l_con']
        reconstructor = self.get_bare_model(self.net_g).reconstructor
        if self.cri_prior is not None:
            with torch.no_grad():
                candidates = reconstructor.bank.all(self.gt)
            loss_dict['l_prior'] = self.cri_prior(reconstructor.prior_head(e_d), candidates, self.lq)
            l_total = l_total + loss_dict['l_prior']
        if self.cri_residual is not None:  # the gated residual, pulled to zero where the bank suffices
            loss_dict['l_residual'] = self.cri_residual(self.output, reconstructor.base(self.gt, e_d).detach())
            l_total = l_total + loss_dict['l_residual']
        if self.cri_far is not None:
            with torch.no_grad():
                e_cl = self.far_encoder(self.gt)
            loss_dict['l_far'] = self.cri_far(e_im, e_cl)
            l_total = l_total + loss_dict['l_far']
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.guarded_step(l_total, current_iter) and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def trained_modules(self):
        return [self.net_g] + ([self.cri_far] if self.cri_far is not None else [])

    @torch.no_grad()
    def test(self):
        """X_hat with the noise-free controller, by the EMA network when there is one."""
        net = getattr(self, 'net_g_ema', self.net_g)
        was_training = net.training
        net.eval()
        self.output = net(self.lq, self.gt, self.controller(self.lq, self.gt, noise=False))
        net.train(was_training)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Reconstruction PSNR (RGB, 8-bit) and LPIPS of X_hat vs X_s, and the fixed downscales of Y_gt as
        baselines: ``psnr_bicubic``, ``psnr_bicubic_aa``, ``psnr_area``. An exact 8-bit match (a bicubic-family
        pair against its own operator) counts as ``PSNR_CAP_DB``, so that one such pair leaves the mean finite."""
        name = dataloader.dataset.opt['name']
        lpips = build_lpips(device=self.device)
        sums = {'psnr_rec': 0.0, 'lpips_rec': 0.0, **{f'psnr_{k}': 0.0 for k in PLAIN}}
        for data in dataloader:
            self.feed_data(data)
            self.test()
            baselines = {f'psnr_{k}': downscale(self.gt, self.opt['scale'], k) for k in PLAIN}
            for i in range(self.lq.size(0)):
                target = tensor2img(self.lq[i])
                sums['psnr_rec'] += capped_psnr(self.output[i], target)
                for key, image in baselines.items():
                    sums[key] += capped_psnr(image[i].clamp(0, 1), target)
            sums['lpips_rec'] += lpips(self.output.clamp(0, 1), self.lq).sum().item()
        count = len(dataloader.dataset)
        self.metric_results = {k: v / count for k, v in sums.items()}
        message = ', '.join(f'{k} {v:.4f}' for k, v in self.metric_results.items())
        get_root_logger().info(f'Validation {name} @ iter {current_iter}: {message} (LPIPS = {lpips.name})')
        if tb_logger:
            for k, v in self.metric_results.items():
                tb_logger.add_scalar(f'metrics/{name}/{k}', v, current_iter)

    def save(self, epoch, current_iter):
        nets, keys = [self.net_g], ['params']
        if hasattr(self, 'net_g_ema'):
            nets, keys = nets + [self.net_g_ema], keys + ['params_ema']
        if self.cri_far is not None:
            nets, keys = nets + [self.cri_far], keys + ['params_far']
        self.save_network(nets, 'net_g', current_iter, param_key=keys)
        self.save_training_state(epoch, current_iter)


def _random_crop_pair(gt, size):
    """(B, 3, H, W) -> the same random (B, 3, size, size) window of every image in the batch."""
    h, w = gt.shape[2:]
    top = torch.randint(0, h - size + 1, ()).item()
    left = torch.randint(0, w - size + 1, ()).item()
    return gt[:, :, top:top + size, left:left + size]
