"""SwinIR real-world x4 GAN models (Liang et al., ICCVW 2021) as BasicSR's ``SwinIR``.

The published real-world models (``003_realSR_BSRGAN_DFO*_SwinIR-{M,L}_x4_GAN.pth``, generator
weights under ``params_ema``) were trained with the configurations of SwinIR's
``main_test_swinir.py --task real_sr [--large_model]``, reproduced in :data:`SWINIR_GAN_VARIANTS`.
BasicSR's ``SwinIR`` has the same module tree as the official one, so the files load strictly.

:class:`SwinIRGAN` is that ``SwinIR`` plus the test-time padding the official script does outside
the net: ``(B, 3, H, W)`` is mirror-padded to multiples of ``window_size``, upsampled x4 (nearest x2,
conv, nearest x2, conv), and cropped back to ``(B, 3, 4H, 4W)``. With ``official_padding`` (default)
the padding is ``(H // window_size + 1) * window_size - H`` as in ``main_test_swinir.py`` (at least
one extra row/column, so outputs equal the official script's); otherwise only up to the next multiple.
"""
import copy

from basicsr.archs.swinir_arch import SwinIR
from basicsr.utils.registry import ARCH_REGISTRY

from model_zoo_adapters.padding import crop_to, pad_to_multiple

_COMMON = dict(upscale=4, in_chans=3, img_size=64, window_size=8, img_range=1., mlp_ratio=2,
               upsampler='nearest+conv')
SWINIR_GAN_VARIANTS = {
    # 003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth
    'medium': dict(_COMMON, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, resi_connection='1conv'),
    # 003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth
    'large': dict(_COMMON, embed_dim=240, depths=[6] * 9, num_heads=[8] * 9, resi_connection='3conv'),
}


def swinir_gan_kwargs(variant='medium', **overrides) -> dict:
    """``SwinIR`` keyword arguments of a published real-world GAN variant, updated by ``overrides``."""
    if variant not in SWINIR_GAN_VARIANTS:
        raise ValueError(f'unknown SwinIR-GAN variant {variant!r}; expected one of {sorted(SWINIR_GAN_VARIANTS)}')
    kwargs = copy.deepcopy(SWINIR_GAN_VARIANTS[variant])
    kwargs.update(overrides)
    return kwargs


@ARCH_REGISTRY.register()
class SwinIRGAN(SwinIR):
    """BasicSR ``SwinIR`` built with a real-world GAN configuration; pads inputs to the window size.

    Args:
        variant: ``'medium'`` (SwinIR-M, 1conv) or ``'large'`` (SwinIR-L, 3conv).
        official_padding: pad as ``main_test_swinir.py`` (always one extra partial window) instead of
            only to the next multiple of ``window_size``.
        **overrides: any ``SwinIR`` argument (e.g. ``embed_dim=12, depths=[2], num_heads=[2]`` for tests).

    ``(B, 3, H, W) in [0, 1] -> (B, 3, s*H, s*W)`` for any ``H``, ``W`` (``s = upscale``).
    """

    def __init__(self, variant='medium', official_padding=True, **overrides):
        kwargs = swinir_gan_kwargs(variant, **overrides)
        super().__init__(**kwargs)
        self.variant = variant
        self.window_size = kwargs['window_size']
        self.official_padding = official_padding

    def forward(self, x):
        x, size = pad_to_multiple(x, self.window_size, extra_block=self.official_padding)
        return crop_to(super().forward(x), size, self.upscale)
