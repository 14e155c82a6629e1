"""Stage 1: pretrain the LR reconstruction branch on HR images degraded on the fly.

L_pt = L_rec(R(s * E_deg(X_s), E_img(Y_gt)), X_s) + lambda_pt * Phi_far(Y_gt),
s = n + (1 - HQI(X_s, Y_gt)), Phi_far(Y) = L_far(E_img(Y), E_clip(Y)).
Trained: E_deg, E_img, R (``network_g``: LRReconNet) and FAR's T_a, T_m. Frozen: E_clip (``network_far``).
Without ``train.controller`` and ``train.far_opt`` this is LWay's branch: R(E_deg(X), E_img(Y)), L1 + LPIPS.
Checkpoints hold ``params`` (and ``params_ema``) for LRReconNet and ``params_far`` for T_a, T_m.
"""
from collections import OrderedDict

import torch
from torch.nn import functional as F

from basicsr.metrics import calculate_psnr
from basicsr.models.sr_model import SRModel
from basicsr.utils import DiffJPEG, get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.archs.reconstructor_arch import bicubic_downscale
from tta_sr.data.second_order_degradation import degradation_options, degrade_second_order
from tta_sr.losses.lpips_metric import build_lpips
from tta_sr.models.branch_components import Controller, build_far
from tta_sr.models.model_base import TTASRModelMixin
from tta_sr.weights.resolver import load_state_dict


@MODEL_REGISTRY.register()
class LRReconPretrainModel(TTASRModelMixin, SRModel):
    """``network_g`` is the LRReconNet; ``train.pixel_opt`` is L_rec (a ReconstructionLoss)."""

    def init_training_settings(self):
        self.far_encoder, self.cri_far = build_far(self.opt, self.device)
        self.controller = Controller(self.opt['train'].get('controller', {'enabled': False}), 'pretrain',
                                     self.opt['network_g'].get('emb_dim', 512), self.device)
        self._load_far_heads(self.opt['path'].get('pretrain_network_g'))
        self.jpeger = DiffJPEG(differentiable=False).to(self.device)
        self.degradation = degradation_options(self.opt)
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
        """Train: degrade ``gt`` into ``lq``. Val: take both.

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
        self.gt = _random_crop_pair(self.gt, gt_size)
        self.lq = degrade_second_order(self.gt, *kernels, scale, self.degradation, self.jpeger).contiguous()

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        s = self.controller(self.lq, self.gt)
        self.output, e_im = self.net_g(self.lq, self.gt, s, return_features=True)
        loss_dict = OrderedDict()
        l_total = loss_dict['l_rec'] = self.cri_pix(self.output, self.lq)
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
        """Reconstruction PSNR (RGB, 8-bit) and LPIPS of X_hat vs X_s, and two baselines: the plain and the
        antialiased bicubic downscale of Y_gt (``psnr_bicubic``, ``psnr_bicubic_aa``)."""
        name = dataloader.dataset.opt['name']
        lpips = build_lpips(device=self.device)
        sums = {'psnr_rec': 0.0, 'lpips_rec': 0.0, 'psnr_bicubic': 0.0, 'psnr_bicubic_aa': 0.0}
        for data in dataloader:
            self.feed_data(data)
            self.test()
            baselines = {'psnr_bicubic': F.interpolate(self.gt, size=self.lq.shape[2:], mode='bicubic',
                                                       align_corners=False),
                         'psnr_bicubic_aa': bicubic_downscale(self.gt, self.opt['scale'])}
            for i in range(self.lq.size(0)):
                target = tensor2img(self.lq[i])
                sums['psnr_rec'] += calculate_psnr(tensor2img(self.output[i]), target, 0)
                for key, image in baselines.items():
                    sums[key] += calculate_psnr(tensor2img(image[i].clamp(0, 1)), target, 0)
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
