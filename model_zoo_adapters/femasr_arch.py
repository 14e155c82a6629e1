"""FeMaSR (Chen et al., ACM MM 2022): real-world blind SR by matching LR features to an HR codebook.

"Real-World Blind Super-Resolution via Feature Matching with Implicit High-Resolution Priors".
With ``E_l`` the LR encoder, ``Z = {z_k}`` the codebook of the pretrained high-resolution prior (HRP)
and ``D`` its decoder, the SR image is

    z_hat = E_l(x_l)                          (B, C_e, h, w) at the codebook's resolution
    z_q[i] = z_{k*},  k* = argmin_k ||z_hat[i] - z_k||_2   (nearest codebook entry, per position i)
    y_sr = D(z_q, skip features of E_l)       (B, 3, s*H, s*W)

with the straight-through estimator ``dz_q/dz_hat = I`` so that the encoder trains through the
non-differentiable nearest-neighbour step. The LR-stage feature-matching loss of the paper is
``beta * ||z_hat - sg(z_q^gt)||^2 + ||Gram(z_hat) - Gram(sg(z_q^gt))||^2`` (``gt_indices`` given), the
VQ loss ``||sg(z_hat) - z_q||^2 + beta * ||z_hat - sg(z_q)||^2`` otherwise.

This is our implementation; its module tree reproduces the key names and shapes of the official
``FeMaSRNet`` (chaofengc/FeMaSR, ``basicsr/archs/femasr_arch.py``) so that the published
``FeMaSR_SRX4_model_g.pth`` (``params``) loads with ``strict=True``. Channel widths are a function of
the feature resolution measured in HR pixels of a ``gt_resolution`` training patch
(``channel_query_dict``), as in the official code; tests pass a small dict.

Layout (x4, ``codebook_params=[[32, 1024, 512]]``, ``gt_resolution=256``; LR input ``(B, 3, H, W)``)::

    multiscale_encoder.in_conv           4x4 conv, 3 -> 256            (H-1)
    multiscale_encoder.blocks.0          stride-2 conv + 2 ResBlocks    H/2
    multiscale_encoder.blocks.1          4 RSTB (Swin) layers, dim 256  H/2
    multiscale_encoder.blocks.2, .3      nearest x2 + conv + 2 ResBlocks  H, 2H (skips)
    before_quant_group.0                 1x1 conv 256 -> 512
    quantize_group.0.embedding           codebook (1024, 512)
    after_quant_group.0.conv             3x3 conv 512 -> 256
    decoder_group.0..2.block             nearest x2 + conv + 2 ResBlocks   H, 2H, 4H
    out_conv                             3x3 conv 64 -> 3
"""
import math

import torch
from basicsr.archs.swinir_arch import RSTB
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from model_zoo_adapters.padding import crop_to, pad_to_multiple

# official widths: feature resolution (in HR pixels of a gt_resolution patch) -> channels
DEFAULT_CHANNELS = {8: 256, 16: 256, 32: 256, 64: 256, 128: 128, 256: 64, 512: 32}
# keys of the HR-prior pretraining's semantic head (VGG guidance), unused for SR: dropped at load
_SEMANTIC_HEAD_PREFIXES = ('conv_semantic.', 'vgg_feat_extractor.')


class _Norm(nn.Module):
    """Normalisation under the attribute ``norm`` ('gn': GroupNorm(eps=1e-6), 'bn', 'in', 'none')."""

    def __init__(self, channels, norm_type='gn', groups=32):
        super().__init__()
        norm_type = norm_type.lower()
        if norm_type == 'gn':
            self.norm = nn.GroupNorm(groups, channels, eps=1e-6, affine=True)
        elif norm_type == 'bn':
            self.norm = nn.BatchNorm2d(channels)
        elif norm_type == 'in':
            self.norm = nn.InstanceNorm2d(channels, affine=False)
        elif norm_type == 'none':
            self.norm = nn.Identity()
        else:
            raise ValueError(f"norm_type must be 'gn', 'bn', 'in' or 'none', got {norm_type!r}")

    def forward(self, x):
        return self.norm(x)


class _Act(nn.Module):
    """Activation under the attribute ``func`` ('silu', 'leakyrelu' (0.2), 'relu', 'prelu', 'gelu', 'none')."""

    def __init__(self, channels, act_type='silu'):
        super().__init__()
        act_type = act_type.lower()
        makers = {'silu': nn.SiLU, 'relu': nn.ReLU, 'gelu': nn.GELU, 'none': nn.Identity,
                  'leakyrelu': lambda: nn.LeakyReLU(0.2), 'prelu': lambda: nn.PReLU(channels)}
        if act_type not in makers:
            raise ValueError(f'act_type must be one of {sorted(makers)}, got {act_type!r}')
        self.func = makers[act_type]()

    def forward(self, x):
        return self.func(x)


class ResBlock(nn.Module):
    """Pre-activation residual block: ``x + conv(act(norm(conv(act(norm(x))))))``, channels kept."""

    def __init__(self, channels, norm_type='gn', act_type='silu', groups=32):
        super().__init__()
        self.conv = nn.Sequential(
            _Norm(channels, norm_type, groups), _Act(channels, act_type), nn.Conv2d(channels, channels, 3, 1, 1),
            _Norm(channels, norm_type, groups), _Act(channels, act_type), nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x):
        return x + self.conv(x)


def _up_stage(in_ch, out_ch, norm_type, act_type, groups):
    """Nearest x2, 3x3 conv, two ResBlocks: ``(B, in_ch, h, w) -> (B, out_ch, 2h, 2w)``."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode='nearest'), nn.Conv2d(in_ch, out_ch, 3, 1, 1),
                         ResBlock(out_ch, norm_type, act_type, groups), ResBlock(out_ch, norm_type, act_type, groups))


def _down_stage(in_ch, out_ch, norm_type, act_type, groups):
    """Stride-2 3x3 conv, two ResBlocks: ``(B, in_ch, h, w) -> (B, out_ch, ceil(h/2), ceil(w/2))``."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 2, 1),
                         ResBlock(out_ch, norm_type, act_type, groups), ResBlock(out_ch, norm_type, act_type, groups))


class VectorQuantizer(nn.Module):
    """Nearest-entry quantisation against a codebook ``embedding.weight`` of shape ``(n_e, e_dim)``.

    ``forward(z)``: ``z (B, e_dim, h, w) -> (z_q, loss, indices (B, 1, h, w))``; the values of ``z_q`` are
    exactly codebook rows and its gradient flows to ``z`` unchanged (straight-through).
    """

    def __init__(self, n_e, e_dim, beta=0.25):
        super().__init__()
        self.n_e, self.e_dim, self.beta = int(n_e), int(e_dim), beta
        self.embedding = nn.Embedding(self.n_e, self.e_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / self.n_e, 1.0 / self.n_e)

    def nearest_indices(self, z_flat):
        """``(N, e_dim) -> (N,)`` indices of the nearest codebook rows (squared L2 distance)."""
        codebook = self.embedding.weight
        dist = (z_flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1)[None, :]
                - 2 * z_flat @ codebook.t())
        return dist.argmin(dim=1)

    def lookup(self, indices):
        """``(B, 1, h, w)`` integer indices -> ``(B, e_dim, h, w)`` codebook entries."""
        b, _, h, w = indices.shape
        return self.embedding.weight[indices.reshape(-1)].reshape(b, h, w, self.e_dim).permute(0, 3, 1, 2)

    @staticmethod
    def _gram(x):
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w)
        return x @ x.transpose(1, 2) / (h * w)

    def forward(self, z, gt_indices=None):
        b, c, h, w = z.shape
        if c != self.e_dim:
            raise ValueError(f'quantizer expects {self.e_dim} channels, got input of shape {tuple(z.shape)}')
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        indices = self.nearest_indices(z_flat.detach()).reshape(b, 1, h, w)
        z_q = self.lookup(indices)
        if gt_indices is not None:  # LR stage: match the HR codes of the ground truth
            z_gt = self.lookup(gt_indices.reshape(b, 1, h, w)).detach()
            loss = self.beta * F.mse_loss(z, z_gt) + (self._gram(z) - self._gram(z_gt)).pow(2).mean()
        else:
            loss = F.mse_loss(z_q, z.detach()) + self.beta * F.mse_loss(z, z_q.detach())
        # straight-through: the value is exactly z_q (z - sg(z) is exactly 0), the gradient w.r.t. z is I
        z_st = z_q.detach() + (z - z.detach())
        return z_st, loss, indices


class SwinLayers(nn.Module):
    """``num_blocks`` residual Swin transformer blocks (BasicSR's ``RSTB``) on a feature map, shape kept.

    ``input_resolution`` only sets the size of the precomputed shifted-window masks (buffers saved in
    the state dict); other sizes work, ``h`` and ``w`` must be multiples of ``window_size``.
    """

    def __init__(self, embed_dim=256, input_resolution=(32, 32), blk_depth=6, num_heads=8, window_size=8,
                 num_blocks=4, mlp_ratio=4.):
        super().__init__()
        self.swin_blks = nn.ModuleList([
            RSTB(embed_dim, tuple(input_resolution), blk_depth, num_heads, window_size, mlp_ratio=mlp_ratio,
                 img_size=224, patch_size=1, resi_connection='1conv') for _ in range(num_blocks)])

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        for blk in self.swin_blks:
            tokens = blk(tokens, (h, w))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class MultiScaleEncoder(nn.Module):
    """``in_conv`` (4x4, padding 1), ``depth`` down stages; LR stage: Swin layers and two up stages.

    Returns the list of every stage's output (the last three are the decoder's inputs in the LR stage).
    """

    def __init__(self, in_channel, depth, input_res, channels, norm_type, act_type, lq_stage, groups, swin_opts):
        super().__init__()
        self.in_conv = nn.Conv2d(in_channel, channels[input_res], 4, 1, 1)
        self.blocks = nn.ModuleList()
        res = input_res
        for _ in range(depth):
            self.blocks.append(_down_stage(channels[res], channels[res // 2], norm_type, act_type, groups))
            res //= 2
        if lq_stage:
            self.blocks.append(SwinLayers(embed_dim=channels[res], **swin_opts))
            for _ in range(2):
                self.blocks.append(_up_stage(channels[res], channels[res * 2], norm_type, act_type, groups))
                res *= 2

    def forward(self, x):
        feats = []
        x = self.in_conv(x)
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class DecoderBlock(nn.Module):
    """One decoder stage under ``block``: nearest x2, conv, two ResBlocks."""

    def __init__(self, in_ch, out_ch, norm_type, act_type, groups):
        super().__init__()
        self.block = _up_stage(in_ch, out_ch, norm_type, act_type, groups)

    def forward(self, x):
        return self.block(x)


class CombineQuantBlock(nn.Module):
    """3x3 conv of the quantised features, concatenated with the (resized) coarser ones when given."""

    def __init__(self, in_ch1, in_ch2, out_ch):
        super().__init__()
        self.conv = nn.Conv2d(in_ch1 + in_ch2, out_ch, 3, 1, 1)

    def forward(self, x, coarser=None):
        if coarser is not None:
            x = torch.cat((x, F.interpolate(coarser, size=x.shape[2:])), dim=1)
        return self.conv(x)


@ARCH_REGISTRY.register()
class FeMaSRNet(nn.Module):
    """FeMaSR generator; ``forward``: ``(B, 3, H, W) in [0, 1] -> (B, 3, s*H, s*W)`` (any H, W).

    Args (the official option names, so its YAML ``network_g`` works):
        codebook_params: list of ``[resolution, n_e, e_dim]``, coarse to fine (official SR: ``[[32, 1024, 512]]``).
        gt_resolution: HR training patch size the resolutions refer to (256).
        LQ_stage: True for the SR network, False for the HR-prior autoencoder (scale 1).
        norm_type, act_type: 'gn' / 'silu' in the published models.
        scale_factor: 4 or 2 (LR stage only).
        use_quantize: False skips the codebook (ablation).
        use_residual: add the encoder's skip features in the decoder (LR stage).
        channel_query_dict: resolution -> channels (default :data:`DEFAULT_CHANNELS`); small for tests.
        swin_opts: ``SwinLayers`` options (``input_resolution``, ``blk_depth``, ``num_heads``,
            ``window_size``, ``num_blocks``, ``mlp_ratio``); defaults are the official ones.
        norm_groups: GroupNorm groups (32).
        official_padding: pad inputs as the official ``test()`` (``(H // m + 1) * m``, at least one extra
            block, ``m = pad_multiple``) so outputs equal its; False pads only to the next multiple.
        frozen_module_keywords: accepted for the official YAML; freezing is the model's job.
    """

    def __init__(self, *, in_channel=3, codebook_params=((32, 1024, 512), ), gt_resolution=256, LQ_stage=True,
                 norm_type='gn', act_type='silu', use_quantize=True, scale_factor=4, use_semantic_loss=False,
                 use_residual=True, channel_query_dict=None, swin_opts=None, norm_groups=32,
                 official_padding=True, frozen_module_keywords=None):
        super().__init__()
        if use_semantic_loss:
            raise ValueError('use_semantic_loss=True (the HR-prior pretraining VGG head) is not supported; '
                             'its keys are dropped when loading, set use_semantic_loss: false')
        codebook_params = [[int(v) for v in p] for p in codebook_params]
        channels = {int(k): int(v) for k, v in (channel_query_dict or DEFAULT_CHANNELS).items()}
        self.codebook_res = [p[0] for p in codebook_params]
        self.gt_res = gt_resolution
        self.LQ_stage = LQ_stage
        self.scale_factor = scale_factor if LQ_stage else 1
        self.use_quantize = use_quantize
        self.use_residual = use_residual
        self.official_padding = official_padding
        self.max_depth = int(math.log2(gt_resolution // self.codebook_res[0]))
        encode_depth = int(math.log2(gt_resolution // self.scale_factor // self.codebook_res[0]))
        swin_opts = dict(swin_opts or {})
        self.multiscale_encoder = MultiScaleEncoder(in_channel, encode_depth, gt_resolution // self.scale_factor,
                                                    channels, norm_type, act_type, LQ_stage, norm_groups, swin_opts)
        # spatial size multiple: the stride-2 stages and the Swin windows must divide evenly
        self.pad_multiple = 2**encode_depth * (swin_opts.get('window_size', 8) if LQ_stage else 1)

        self.decoder_group = nn.ModuleList()
        for i in range(self.max_depth):
            res = self.codebook_res[0] * 2**i
            self.decoder_group.append(DecoderBlock(channels[res], channels[res * 2], norm_type, act_type, norm_groups))
        self.out_conv = nn.Conv2d(channels[self.codebook_res[0] * 2**self.max_depth], 3, 3, 1, 1)

        self.quantize_group = nn.ModuleList()
        self.before_quant_group = nn.ModuleList()
        self.after_quant_group = nn.ModuleList()
        for s, (res, n_e, e_dim) in enumerate(codebook_params):
            ch = channels[res]
            self.quantize_group.append(VectorQuantizer(n_e, e_dim))
            if s == 0:
                self.before_quant_group.append(nn.Conv2d(ch, e_dim, 1))
                self.after_quant_group.append(CombineQuantBlock(e_dim, 0, ch))
            else:
                self.before_quant_group.append(nn.Conv2d(2 * ch, e_dim, 1))
                self.after_quant_group.append(CombineQuantBlock(codebook_params[s - 1][2], e_dim, ch))
        self.register_load_state_dict_pre_hook(_drop_semantic_head_keys)

    def encode_and_decode(self, x, gt_indices=None):
        """``(B, 3, H, W)`` with H, W multiples of ``pad_multiple`` -> ``(image, codebook_loss, indices)``."""
        feats = self.multiscale_encoder(x)
        feats = feats[-3:] if self.LQ_stage else feats[::-1]
        losses, indices_list = [], []
        q, prev_dec, prev_quant = 0, None, None
        h = feats[0]
        for i in range(self.max_depth):
            res = self.codebook_res[0] * 2**i
            if res in self.codebook_res:
                enc = feats[i] if prev_dec is None else torch.cat((feats[i], prev_dec), dim=1)
                z = self.before_quant_group[q](enc)
                gt = None if gt_indices is None else gt_indices[q]
                z_q, loss, indices = self.quantize_group[q](z, gt)
                if not self.use_quantize:
                    z_q = z
                h = self.after_quant_group[q](z_q, prev_quant)
                losses.append(loss)
                indices_list.append(indices)
                prev_quant = z_q
                q += 1
            elif self.LQ_stage and self.use_residual:
                h = h + feats[i]
            h = self.decoder_group[i](h)
            prev_dec = h
        return self.out_conv(h), sum(losses), indices_list

    def decode_indices(self, indices):
        """Codebook indices ``(B, 1, h, w)`` of the coarsest quantizer -> image through the HR decoder."""
        h = self.after_quant_group[0](self.quantize_group[0].lookup(indices))
        for block in self.decoder_group:
            h = block(h)
        return self.out_conv(h)

    def forward(self, x):
        x, size = pad_to_multiple(x, self.pad_multiple, extra_block=self.official_padding)
        out, _, _ = self.encode_and_decode(x)
        return crop_to(out, size, self.scale_factor)


def _drop_semantic_head_keys(module, state_dict, prefix, *args):
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key[len(prefix):].startswith(_SEMANTIC_HEAD_PREFIXES):
            del state_dict[key]
