"""E_img, the image encoder: Y (B, 3, aH, aW) -> e_im (B, num_feat, aH, aW), no spatial reduction.

    e_im = F0 + conv_body(ResBlocks^{num_block}(F0)),   F0 = lrelu(conv_first(Y))

Paper (HR-aware): lightweight CNN, six residual blocks of 64 channels, no spatial reduction.
e_im feeds both the reconstructor R and, through its Gram descriptors, the FAR loss.
"""
from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class ImageEncoder(nn.Module):
    """Image encoder E_img.

    Args:
        num_in_ch: input channels (3).
        num_feat: feature width = channels of e_im (paper: 64).
        num_block: residual blocks (paper: 6).

    forward(y (B, num_in_ch, aH, aW) in [0, 1]) -> e_im (B, num_feat, aH, aW)
    """

    def __init__(self, num_in_ch=3, num_feat=64, num_block=6):
        super().__init__()
        self.num_feat = num_feat
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, y):
        feat = self.act(self.conv_first(y))
        return feat + self.conv_body(self.body(feat))
