"""Full-reference fidelity: PSNR on the Y channel of YCbCr and SSIM, through BasicSR's own functions.

Both call ``basicsr.metrics.calculate_psnr`` / ``calculate_ssim`` with ``test_y_channel=True``,
``crop_border = scale`` and images in BasicSR's convention (BGR, ``[0, 255]``, ``uint8`` after the
8-bit quantisation), so the numbers equal BasicSR's validation numbers bit for bit:

    PSNR = 10 log10(255^2 / MSE(Y_sr, Y_gt)),  Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255  (ITU-R BT.601)
    SSIM = mean over 11x11 Gaussian (sigma 1.5) windows of the Wang et al. 2004 SSIM on Y.
"""
import numpy as np


def to_basicsr_image(img, quantize):
    """float32 RGB ``(H, W, 3)`` in [0, 1] -> BGR ``[0, 255]`` array (``uint8`` when quantised) as BasicSR expects."""
    bgr = np.asarray(img)[..., ::-1] * 255.0
    if quantize:
        return np.round(bgr).astype(np.uint8)  # inputs are already on the 8-bit grid: exact integers
    return bgr.astype(np.float64)


def psnr_y(sr, gt, crop_border=0, quantize=True):
    """PSNR (dB) on Y between ``sr`` and ``gt`` (float32 RGB ``(H, W, 3)`` in [0, 1]); higher is better."""
    from basicsr.metrics import calculate_psnr
    return calculate_psnr(to_basicsr_image(sr, quantize), to_basicsr_image(gt, quantize), crop_border,
                          input_order='HWC', test_y_channel=True)


def ssim_y(sr, gt, crop_border=0, quantize=True):
    """SSIM on Y between ``sr`` and ``gt`` (float32 RGB ``(H, W, 3)`` in [0, 1]); higher is better."""
    from basicsr.metrics import calculate_ssim
    return calculate_ssim(to_basicsr_image(sr, quantize), to_basicsr_image(gt, quantize), crop_border,
                          input_order='HWC', test_y_channel=True)
