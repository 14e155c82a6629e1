"""R, the reconstructor: (e_d (B, emb_dim), e_im (B, num_feat, aH, aW), Y (B, 3, aH, aW), s) -> X_hat (B, 3, H, W).

SRResNet body whose convolutions are StyleGAN2-modulated by the (controlled) degradation
embedding emb = s * e_d, run in reverse of SRResNet: the resolution change comes first, and
the body predicts what the degradation adds to a downscale of Y.

    F0    = lrelu(conv_down(PixelUnshuffle_a(e_im)))                # (B, num_feat, H, W), H = aH / a
    F_k   = F_{k-1} + MConv(lrelu(MConv(F_{k-1}, emb)), emb)        # k = 1..num_block
    X_hat = D(Y, e_d) + g(e_d) * conv_last(lrelu(F0 + MConv(F_K, emb)))

Without a prior (``prior: null``), D(Y, e_d) = down_a(Y), the antialiased bicubic downscale, and g = 1.
With a prior (a list of downscaler names, ``tta_sr.ops.downscalers``), R carries an explicit physical
degradation model that E_deg's embedding selects:

    w = softmax(t_p * P e_d)  (B, K),   D(Y, e_d) = sum_k w_k D_k(Y),   g(e_d) = sigmoid(t_g * G e_d + b_g)  (B, 1)

so a degradation that one of the D_k (or a mixture) explains is reconstructed right by construction,
from mild (area, antialiased bicubic) to heavy (wide Gaussian blur then area), and the learnt residual,
gated per image, corrects only what the bank misses (noise level, JPEG, non-Gaussian kernels). The bank
weights and the gate read the raw e_d, not s * e_d: the controller s modulates the residual only.
t_p, t_g (sharpness) and b_g (gate offset) are 1, 1, 0 in training; ``scripts/calibrate_branch.py``
sets them afterwards (temperature scaling on generated training pairs): Adam moves the heads' weights by
about the learning rate per step, so a few thousand steps leave the heads under-confident even where
their choice is right (the antialiased bicubic downscale won every held-out bicubic pair, at weight 0.3
to 0.8).
Where the stride happens, and the D base, are left open by the papers. Pixel-unshuffle is lossless, so the 3x3 ``conv_down`` on its
a^2 * num_feat channels still sees a 3a x 3a HR neighbourhood (room for blur kernels up to that
size), and the residual body then runs at LR size, which keeps the cost a^2 times lower than a
body at HR size. ``conv_last`` starts at zero, so an untrained R is exactly down_a(Y) and
training only has to learn the degradation-specific residual (blur, noise level, colour);
without the base, a small branch spent its capacity re-learning the downscale. With a prior, P and G
start at zero: an untrained R is the uniform mixture of the bank plus half of a zero residual. The output is
not clamped. Supports any integer scale (2, 3, 4, ...); aH and aW must be divisible by it.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from tta_sr.archs.modulated_conv import ModulatedConv2d
from tta_sr.ops.downscalers import DownscalerBank, downscale


class ModulatedResBlock(nn.Module):
    """x + MConv(lrelu(MConv(x, emb)), emb)."""

    def __init__(self, num_feat, emb_dim, demodulate=True):
        super().__init__()
        self.conv1 = ModulatedConv2d(num_feat, num_feat, 3, emb_dim, demodulate=demodulate)
        self.conv2 = ModulatedConv2d(num_feat, num_feat, 3, emb_dim, demodulate=demodulate)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x, emb):
        return x + self.conv2(self.act(self.conv1(x, emb)), emb)


@ARCH_REGISTRY.register()
class Reconstructor(nn.Module):
    """Reconstructor R.

    Args:
        num_feat: channels of e_im and of the body.
        num_block: modulated residual blocks.
        emb_dim: embedding size (C_d).
        scale: a; the output is (aH / a, aW / a).
        num_out_ch: output channels (3).
        demodulate: StyleGAN2 demodulation in every modulated conv.
        prior: None, or the names of the downscalers D_k of the physical prior (see the module docstring).
        prior_sharpness, gate_sharpness, gate_offset: t_p, t_g, b_g of the module docstring (calibration).

    forward(e_d (B, emb_dim), e_im (B, num_feat, aH, aW), y (B, num_out_ch, aH, aW), s (B, emb_dim) or None)
        -> x_hat (B, num_out_ch, aH / a, aW / a)
    """

    def __init__(self, num_feat=64, num_block=8, emb_dim=512, scale=4, num_out_ch=3, demodulate=True, prior=None,
                 prior_sharpness=1.0, gate_sharpness=1.0, gate_offset=0.0):
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ValueError(f'Reconstructor scale must be a positive integer, got {scale}')
        self.scale = int(scale)
        self.num_feat = num_feat
        self.emb_dim = emb_dim
        self.conv_down = nn.Conv2d(num_feat * self.scale ** 2, num_feat, 3, 1, 1)
        self.body = nn.ModuleList(ModulatedResBlock(num_feat, emb_dim, demodulate) for _ in range(num_block))
        self.conv_body = ModulatedConv2d(num_feat, num_feat, 3, emb_dim, demodulate=demodulate)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        nn.init.zeros_(self.conv_last.weight)
        nn.init.zeros_(self.conv_last.bias)
        self.bank = DownscalerBank(prior, self.scale) if prior else None
        self.prior_sharpness, self.gate_sharpness, self.gate_offset = prior_sharpness, gate_sharpness, gate_offset
        if self.bank is not None:
            self.prior_head = nn.Linear(emb_dim, len(prior))
            self.gate_head = nn.Linear(emb_dim, 1)
            for layer in (self.prior_head, self.gate_head):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def prior_weights(self, e_d):
        """w = softmax(t_p * P e_d) (B, K) over the bank (None without a prior)."""
        return None if self.bank is None else F.softmax(self.prior_sharpness * self.prior_head(e_d), dim=1)

    def gate(self, e_d):
        """g = sigmoid(t_g * G e_d + b_g) (B, 1, 1, 1); 1 without a prior."""
        if self.bank is None:
            return e_d.new_ones(e_d.shape[0], 1, 1, 1)
        return torch.sigmoid(self.gate_sharpness * self.gate_head(e_d) + self.gate_offset).view(-1, 1, 1, 1)

    def base(self, y, e_d):
        """D(Y, e_d) (B, 3, H, W): the bank mixture, or down_a(Y) without a prior."""
        if self.bank is None:
            return downscale(y, self.scale, 'bicubic_aa')
        return self.bank(y, self.prior_weights(e_d))

    def forward(self, e_d, e_im, y, s=None):
        return self.base(y, e_d) + self.gate(e_d) * self.residual(e_d, e_im, s)

    def residual(self, e_d, e_im, s=None):
        """The learnt residual before its gate, conv_last(...) of the module docstring: (B, 3, H, W)."""
        h, w = e_im.shape[-2:]
        if h % self.scale or w % self.scale:
            raise ValueError(f'Reconstructor(scale={self.scale}) needs e_im height and width divisible by '
                             f'{self.scale}, got {h} x {w}; crop HR patches to a multiple of the scale.')
        emb = e_d if s is None else s * e_d
        feat = F.pixel_unshuffle(e_im, self.scale) if self.scale > 1 else e_im
        feat0 = self.act(self.conv_down(feat))
        feat = feat0
        for block in self.body:
            feat = block(feat, emb)
        feat = feat0 + self.conv_body(feat, emb)
        return self.conv_last(self.act(feat))
