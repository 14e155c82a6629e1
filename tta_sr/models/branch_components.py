"""Pieces of the LR reconstruction branch that both stages build the same way."""
import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss

from tta_sr.archs.lpips_arch import build_lpips
from tta_sr.losses.hqi_controller import controller_scale, hqi
from tta_sr.options.stage2 import controller_options


def build_far(opt, device):
    """(frozen encoder E_clip, FARLoss with T_a, T_m) from ``network_far`` and ``train.far_opt``; or (None, None).

    ``far_opt.target_channels`` defaults to the encoder's ``out_channels``; ``far_opt.loss_weight`` is
    lambda (lambda_pt in stage 1, lambda_ft in stage 2).
    """
    far_opt = opt['train'].get('far_opt')
    if not far_opt or not opt.get('network_far'):
        return None, None
    encoder = build_network(opt['network_far']).to(device)  # frozen by its constructor
    far_opt = dict(far_opt)
    far_opt.setdefault('target_channels', encoder.out_channels)
    return encoder, build_loss(far_opt).to(device)


class Controller:
    """s = n + (1 - HQI(X, Y)) in stage 1 ('pretrain'), s = n + HQI(X, M(X)) in stage 2 ('finetune').

    Options (``train.controller``, declared in ``tta_sr.options.stage2.CONTROLLER``): ``enabled``,
    ``noise_std``, ``flip_sign`` (stage-2 ablation), ``lpips_kind``/``lpips_net`` for HQI's LPIPS.
    """

    def __init__(self, opt, stage, emb_dim, device):
        opt = controller_options(None, opt)
        self.enabled = opt['enabled']
        self.stage, self.emb_dim = stage, emb_dim
        self.noise_std = opt['noise_std']
        self.flip_sign = opt['flip_sign']
        self.lpips = build_lpips(opt['lpips_kind'], opt['lpips_net'], device) if self.enabled else None

    @torch.no_grad()
    def __call__(self, lr, hr, noise=True):
        """(B, emb_dim) scale for s * e_d, or None when disabled; ``noise=False`` gives n = 0 (evaluation)."""
        if not self.enabled:
            return None
        values = hqi(lr, hr, self.lpips)
        return controller_scale(values, self.emb_dim, self.stage, noise_std=self.noise_std if noise else 0.0,
                                flip_sign=self.flip_sign)
