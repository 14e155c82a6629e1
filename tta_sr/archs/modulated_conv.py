"""StyleGAN2 modulated convolution, the building block of the reconstructor R.

For a sample with embedding e in R^{emb_dim} and base weight w in R^{Cout x Cin x k x k}:

    s = A(e)                                     # style, A = Linear(emb_dim, Cin), bias initialised to 1
    w'_{o,i,:,:} = c * w_{o,i,:,:} * s_i         # modulate, c = 1 / sqrt(Cin k^2) (equalised lr)
    w''_{o,i,:,:} = w'_{o,i,:,:} / sqrt(sum_{i,kh,kw} w'^2_{o,i,kh,kw} + eps)   # demodulate
    y = conv2d(x, w'') + b                       # one grouped conv for the whole batch

(Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", 2020, Eq. 1-3.)
"""
import math

import torch
from torch import nn
from torch.nn import functional as F


class ModulatedConv2d(nn.Module):
    """Per-sample modulated (and demodulated) 2-D convolution, 'same' padding, stride 1.

    Args:
        in_channels, out_channels, kernel_size: as nn.Conv2d (odd kernel_size).
        emb_dim: length of the embedding that drives the style.
        demodulate: normalise each output filter to unit norm per sample (StyleGAN2).
        eps: demodulation epsilon.

    forward(x (B, Cin, H, W), emb (B, emb_dim)) -> (B, Cout, H, W)
    """

    def __init__(self, in_channels, out_channels, kernel_size, emb_dim, demodulate=True, eps=1e-8):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'ModulatedConv2d needs an odd kernel_size for same padding, got {kernel_size}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.emb_dim = emb_dim
        self.demodulate = demodulate
        self.eps = eps
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.modulation = nn.Linear(emb_dim, in_channels)
        nn.init.normal_(self.modulation.weight, std=1.0 / math.sqrt(emb_dim))
        nn.init.ones_(self.modulation.bias)

    def forward(self, x, emb):
        b, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f'ModulatedConv2d expects {self.in_channels} input channels, got {c}')
        if emb.shape != (b, self.emb_dim):
            raise ValueError(f'ModulatedConv2d expects emb of shape ({b}, {self.emb_dim}), got {tuple(emb.shape)}')
        style = self.modulation(emb).view(b, 1, c, 1, 1)
        weight = self.scale * self.weight * style  # (B, Cout, Cin, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
            weight = weight * demod
        weight = weight.view(b * self.out_channels, c, self.kernel_size, self.kernel_size)
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=self.kernel_size // 2, groups=b)
        return out.view(b, self.out_channels, h, w) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self):
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'emb_dim={self.emb_dim}, demodulate={self.demodulate}')


__all__ = ['ModulatedConv2d']
