"""The LR reconstruction network: X_hat = R(s * E_deg(X), E_img(Y)).

    e_d   = E_deg(X)            X (B, 3, H, W) in [0, 1]     -> (B, emb_dim)
    e_im  = E_img(Y)            Y (B, 3, aH, aW) in [0, 1]   -> (B, num_feat, aH, aW)
    X_hat = R(e_d, e_im, Y, s)                               -> (B, 3, H, W)

s is the controller of the HR-aware method ((B, emb_dim), see tta_sr.losses.hqi_controller): R's
modulated body reads s * e_d; s = None means s = 1 (LWay). With ``prior`` (downscaler names), R also
carries the physical degradation model whose mixture weights and residual gate read e_d itself
(see tta_sr.archs.reconstructor_arch). Stage 2 can compute e_d once per image with
``encode_degradation`` and call ``reconstruct`` directly.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from tta_sr.archs.degradation_encoder_arch import DegradationEncoder
from tta_sr.archs.image_encoder_arch import ImageEncoder
from tta_sr.archs.reconstructor_arch import Reconstructor


@ARCH_REGISTRY.register()
class LRReconNet(nn.Module):
    """E_deg + E_img + R.

    Args:
        scale: a, the SR factor (2, 3, 4).
        emb_dim: C_d (paper: 512).
        num_feat: width of all three parts (= channels of e_im, paper: 64).
        deg_num_block, img_num_block, rec_num_block: residual blocks of E_deg (16), E_img (6), R (8).
        num_in_ch: image channels (3).
        prior: None, or R's bank of downscalers (e.g. [bicubic, bicubic_aa, area, gauss0.8, gauss1.6]).
        deg_num_feat: width of E_deg (default num_feat).
        deg_highpass: E_deg's high-pass input sigma (0: raw LR; see DegradationEncoder).
        prior_sharpness, gate_sharpness, gate_offset: R's calibration (``scripts/calibrate_branch.py``).
    """

    def __init__(self, scale=4, emb_dim=512, num_feat=64, deg_num_block=16, img_num_block=6, rec_num_block=8,
                 num_in_ch=3, prior=None, deg_num_feat=None, deg_highpass=0.0, prior_sharpness=1.0, gate_sharpness=1.0,
                 gate_offset=0.0):
        super().__init__()
        self.scale = scale
        self.emb_dim = emb_dim
        self.num_feat = num_feat
        self.deg_encoder = DegradationEncoder(num_in_ch, deg_num_feat or num_feat, deg_num_block, emb_dim,
                                              highpass=deg_highpass)
        self.img_encoder = ImageEncoder(num_in_ch, num_feat, img_num_block)
        self.reconstructor = Reconstructor(num_feat, rec_num_block, emb_dim, scale, num_out_ch=num_in_ch, prior=prior,
                                           prior_sharpness=prior_sharpness, gate_sharpness=gate_sharpness,
                                           gate_offset=gate_offset)

    def encode_degradation(self, x):
        """x (B, 3, H, W) in [0, 1] -> e_d (B, emb_dim)."""
        return self.deg_encoder(x)

    def encode_image(self, y):
        """y (B, 3, aH, aW) in [0, 1] -> e_im (B, num_feat, aH, aW)."""
        return self.img_encoder(y)

    def reconstruct(self, e_d, e_im, y, s=None):
        """e_d (B, emb_dim), e_im = E_img(y) (B, num_feat, aH, aW), y (B, 3, aH, aW), s (B, emb_dim) or None
        -> x_hat (B, 3, H, W)."""
        return self.reconstructor(e_d, e_im, y, s)

    def forward(self, x, y, s=None, return_features=False):
        """x (B, 3, H, W), y (B, 3, aH, aW), s (B, emb_dim) or None (= 1) -> x_hat (B, 3, H, W).

        ``return_features`` also returns e_im = E_img(y) (for FAR) and e_d = E_deg(x) (for the contrastive
        loss), computed once: (x_hat, e_im, e_d).
        """
        if tuple(y.shape[-2:]) != (x.shape[-2] * self.scale, x.shape[-1] * self.scale):
            raise ValueError(f'LRReconNet(scale={self.scale}): y must be {self.scale}x the size of x, got '
                             f'x {tuple(x.shape[-2:])} and y {tuple(y.shape[-2:])}.')
        e_d = self.encode_degradation(x)
        e_im = self.encode_image(y)
        x_hat = self.reconstruct(e_d, e_im, y, s)
        return (x_hat, e_im, e_d) if return_features else x_hat
