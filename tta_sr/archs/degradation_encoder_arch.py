"""E_deg, the degradation encoder: X (B, 3, H, W) in [0, 1] -> e_d (B, emb_dim).

    X'  = X, or g * (X - G_sigma(X)) with ``highpass: sigma`` (G: Gaussian blur, g = highpass_gain)
    F   = conv_body(ResBlocks^{num_block}(lrelu(conv_first(X'))))         # (B, num_feat, H, W)
    v   = MLP([mean_hw(F), std_hw(F)])                                     # (B, emb_dim)
    u   = (v - mu) / sqrt(var + eps)            # mu, var: batch statistics in training, running ones otherwise
    e_d = u / sqrt(mean_j u_j^2 + eps)                                     # unit RMS per image

Paper (LWay / HR-aware): residual CNN with 16 residual blocks, global pooling, 512-d vector.
Here: 3x3 conv -> num_block residual blocks (conv-ReLU-conv, no BN) at full LR resolution ->
3x3 conv + global skip -> global mean and standard-deviation pooling -> Linear(2 num_feat, emb_dim)
-> LeakyReLU -> Linear(emb_dim, emb_dim). Pooling makes it work on any crop size; the standard
deviation carries what a mean alone hides (the energy of high-frequency responses: blur and noise
level), while the mean is dominated by the image's colour.

The high-pass input takes the image's colours and shapes away before E_deg sees it: blur, noise and
JPEG live in the high frequencies, and a small encoder trained on raw pixels learnt to tell photos apart
by their content rather than by how they were degraded (its embeddings of one photo under four
degradations were closer than those of two photos under one degradation).

The two normalisations keep the embedding where R must use it. Standardising each entry over the
batch (BatchNorm without affine parameters; running statistics at evaluation, and for a batch of
one) makes e_d vary between images with unit variance, so E_deg cannot output one near-constant
vector that R learns to treat as a fixed style (which small branches without it did: their e_d
hardly changed between images, and swapping it changed nothing). The unit RMS keeps the magnitude
where the modulation (style = A(s * e_d) + 1, A ~ N(0, 1 / emb_dim)) responds, and leaves the scale of
s * e_d to the controller s alone.
"""
import torch
from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from tta_sr.ops.downscalers import gaussian_blur


@ARCH_REGISTRY.register()
class DegradationEncoder(nn.Module):
    """Degradation encoder E_deg.

    Args:
        num_in_ch: input channels (3).
        num_feat: width of the residual body.
        num_block: number of residual blocks (paper: 16).
        emb_dim: embedding size C_d (paper: 512).
        highpass: sigma of the high-pass input X - G_sigma(X) (LR pixels); 0 feeds X itself.
        highpass_gain: g, so that the high-pass input spans about the range of an image.

    forward(x (B, num_in_ch, H, W) in [0, 1]) -> e_d (B, emb_dim)
    """

    def __init__(self, num_in_ch=3, num_feat=64, num_block=16, emb_dim=512, eps=1e-6, highpass=0.0, highpass_gain=4.0):
        super().__init__()
        self.emb_dim = emb_dim
        self.eps = eps
        self.highpass, self.highpass_gain = highpass, highpass_gain
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.mlp = nn.Sequential(nn.Linear(2 * num_feat, emb_dim), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(emb_dim, emb_dim))
        self.register_buffer('running_mean', torch.zeros(emb_dim))
        self.register_buffer('running_var', torch.ones(emb_dim))
        self.momentum = 0.1

    def forward(self, x):
        if self.highpass:
            x = self.highpass_gain * (x - gaussian_blur(x, self.highpass))
        feat = self.act(self.conv_first(x))
        feat = feat + self.conv_body(self.body(feat))
        feat = feat.flatten(2)
        v = self.mlp(torch.cat([feat.mean(dim=2), feat.std(dim=2, correction=0)], dim=1))
        u = F.batch_norm(v, self.running_mean, self.running_var, training=self.training and v.shape[0] > 1,
                         momentum=self.momentum, eps=self.eps)
        return u * torch.rsqrt(u.pow(2).mean(dim=1, keepdim=True) + self.eps)
