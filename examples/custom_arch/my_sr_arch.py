"""A user's own SR architecture, joined to BasicSR (and tta_sr) by registration only.

List this module in an option file's ``import_modules`` (``examples.custom_arch.my_sr_arch`` when
running from the repository root, or ``my_sr_arch`` when the file sits in the folder you run from),
then name the class in ``network_g.type``. tta_sr does not need to know the class.
"""
from torch import nn
from torch.nn import functional as F

from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class MySRNet(nn.Module):
    """Plain residual CNN with a pixel-shuffle tail: ``(B, 3, H, W) in [0, 1] -> (B, 3, s*H, s*W)``.

    The output adds a bicubic upsampling of the input, so an untrained net starts as bicubic.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=32, num_block=4, upscale=4):
        super().__init__()
        self.upscale = upscale
        self.head = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.LeakyReLU(0.2))
                                    for _ in range(num_block)])
        self.tail = nn.Sequential(nn.Conv2d(num_feat, num_out_ch * upscale**2, 3, 1, 1), nn.PixelShuffle(upscale))
        nn.init.zeros_(self.tail[0].weight)
        nn.init.zeros_(self.tail[0].bias)

    def forward(self, x):
        feat = self.head(x)
        residual = self.tail(feat + self.body(feat))
        base = F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)
        return base + residual
