"""SRTTA's degradation classifier, small and trained from scratch: which of (blur, noise, jpeg) an LR image shows.

    logits = W_2 lrelu(W_1 [mean_hw(F(X)), std_hw(F(X))]),   p(type present | X) = sigmoid(logits)

X: (B, 3, H, W) in [0, 1], any size (the test image as a whole: pooling is over all positions). F: two
full-resolution 3x3 convolutions (noise and JPEG's 8x8 blocks live at the pixel scale), then ``num_stages``
stages of a stride-2 and a stride-1 convolution, each convolution followed by BatchNorm and LeakyReLU 0.2. Pooling keeps each channel's
mean and standard deviation over the image (the std pools energy: noise, blocking, missing detail).
Output: (B, 3) logits over ``tta_sr.data.degradation_types.TYPES``. The official classifier is an
ImageNet ResNet-50 (about 100 MB); this one is a few hundred kB.
"""
import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


def _conv(in_ch, out_ch, stride):
    """3x3 convolution, BatchNorm, LeakyReLU 0.2 (without the normalisation the net stays at chance for
    hundreds of iterations: the cues are faint next to the image content)."""
    return [nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.2, inplace=True)]


@ARCH_REGISTRY.register()
class DegradationClassifier(nn.Module):

    def __init__(self, num_feat=32, num_stages=3, num_classes=3, hidden=64):
        super().__init__()
        layers, width = _conv(3, num_feat, 1) + _conv(num_feat, num_feat, 1), num_feat
        for _ in range(num_stages):
            layers += _conv(width, width * 2, 2) + _conv(width * 2, width * 2, 1)
            width *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * width, hidden), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        """(B, 3, H, W) in [0, 1] -> (B, num_classes) logits."""
        feat = self.features(x - 0.5).flatten(2)
        return self.head(torch.cat([feat.mean(2), feat.std(2)], dim=1))
