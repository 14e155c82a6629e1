"""R, the reconstructor: (emb (B, emb_dim), e_im (B, num_feat, aH, aW), Y (B, 3, aH, aW)) -> X_hat (B, 3, H, W).

SRResNet body whose convolutions are StyleGAN2-modulated by the (controlled) degradation
embedding emb = s * e_d, run in reverse of SRResNet: the resolution change comes first, and
the body predicts what the degradation adds to a plain downscale of Y.

    F0    = lrelu(conv_down(PixelUnshuffle_a(e_im)))                # (B, num_feat, H, W), H = aH / a
    F_k   = F_{k-1} + MConv(lrelu(MConv(F_{k-1}, emb)), emb)        # k = 1..num_block
    X_hat = down_a(Y) + conv_last(lrelu(F0 + MConv(F_K, emb)))

down_a is the antialiased bicubic downscale by a. Where the stride happens, and the down_a
base, are left open by the papers. Pixel-unshuffle is lossless, so the 3x3 ``conv_down`` on its
a^2 * num_feat channels still sees a 3a x 3a HR neighbourhood (room for blur kernels up to that
size), and the residual body then runs at LR size, which keeps the cost a^2 times lower than a
body at HR size. ``conv_last`` starts at zero, so an untrained R is exactly down_a(Y) and
training only has to learn the degradation-specific residual (blur, noise level, colour);
without the base, a small branch spent its capacity re-learning the downscale. The output is
not clamped. Supports any integer scale (2, 3, 4, ...); aH and aW must be divisible by it.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from tta_sr.archs.modulated_conv import ModulatedConv2d


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

    forward(emb (B, emb_dim), e_im (B, num_feat, aH, aW), y (B, num_out_ch, aH, aW))
        -> x_hat (B, num_out_ch, aH / a, aW / a)
    """

    def __init__(self, num_feat=64, num_block=8, emb_dim=512, scale=4, num_out_ch=3, demodulate=True):
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

    def forward(self, emb, e_im, y):
        h, w = e_im.shape[-2:]
        if h % self.scale or w % self.scale:
            raise ValueError(f'Reconstructor(scale={self.scale}) needs e_im height and width divisible by '
                             f'{self.scale}, got {h} x {w}; crop HR patches to a multiple of the scale.')
        feat = F.pixel_unshuffle(e_im, self.scale) if self.scale > 1 else e_im
        feat0 = self.act(self.conv_down(feat))
        feat = feat0
        for block in self.body:
            feat = block(feat, emb)
        feat = feat0 + self.conv_body(feat, emb)
        return bicubic_downscale(y, self.scale) + self.conv_last(self.act(feat))


def bicubic_downscale(y, scale):
    """down_a: (B, C, aH, aW) -> (B, C, H, W), antialiased bicubic (PIL/MATLAB-like), not clamped."""
    if scale == 1:
        return y
    size = (y.shape[-2] // scale, y.shape[-1] // scale)
    return F.interpolate(y, size=size, mode='bicubic', align_corners=False, antialias=True)
