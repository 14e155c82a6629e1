"""E_deg, the degradation encoder: X (B, 3, H, W) in [0, 1] -> e_d (B, emb_dim).

    e_d = MLP(GAP(conv_body(ResBlocks^{num_block}(lrelu(conv_first(X))))))

Paper (LWay / HR-aware): residual CNN with 16 residual blocks, global pooling, 512-d vector.
Here: 3x3 conv -> num_block residual blocks (conv-ReLU-conv, no BN) at full LR resolution ->
3x3 conv + global skip -> global average pooling -> Linear(num_feat, emb_dim) -> LeakyReLU ->
Linear(emb_dim, emb_dim). Average pooling makes it work on any crop size.
"""
from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class DegradationEncoder(nn.Module):
    """Degradation encoder E_deg.

    Args:
        num_in_ch: input channels (3).
        num_feat: width of the residual body.
        num_block: number of residual blocks (paper: 16).
        emb_dim: embedding size C_d (paper: 512).

    forward(x (B, num_in_ch, H, W) in [0, 1]) -> e_d (B, emb_dim)
    """

    def __init__(self, num_in_ch=3, num_feat=64, num_block=16, emb_dim=512):
        super().__init__()
        self.emb_dim = emb_dim
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(nn.Linear(num_feat, emb_dim), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(emb_dim, emb_dim))

    def forward(self, x):
        feat = self.act(self.conv_first(x))
        feat = feat + self.conv_body(self.body(feat))
        return self.mlp(self.pool(feat).flatten(1))
