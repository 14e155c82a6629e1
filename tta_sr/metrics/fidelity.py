"""Full-reference fidelity: PSNR on the Y channel of YCbCr and SSIM, through BasicSR's own functions.

Both call ``basicsr.metrics.calculate_psnr`` / ``calculate_ssim`` with ``test_y_channel=True``,
``crop_border = scale`` and images in BasicSR's convention (BGR, ``[0, 255]``, ``uint8`` after the
8-bit quantisation), so the numbers equal BasicSR's validation numbers bit for bit:

    PSNR = 10 log10(255^2 / MSE(Y_sr, Y_gt)),  Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255  (ITU-R BT.601)
    SSIM = mean over 11x11 Gaussian (sigma 1.5) windows of the Wang et al. 2004 SSIM on Y.

Both are undefined for images that are too small once ``crop_border`` pixels are cut from each edge
(PSNR: no pixel left; SSIM: smaller than its 11 x 11 window): they raise ``ValueError`` naming the
size, which callers report as "not computed" (BasicSR would return NaN or fail inside OpenCV).
"""
import numpy as np

SSIM_WINDOW = 11  # basicsr's _ssim: 11 x 11 Gaussian window, 'valid' mode


def check_size(img, crop_border, minimum, metric):
    """Raise ``ValueError`` unless ``img`` ``(H, W, C)`` keeps ``minimum`` pixels per side after the crop."""
    h, w = img.shape[0] - 2 * crop_border, img.shape[1] - 2 * crop_border
    if h < minimum or w < minimum:
        need = 'at least one pixel' if minimum == 1 else f'at least {minimum} x {minimum} pixels'
        raise ValueError(f'{metric}: undefined for a {img.shape[1]} x {img.shape[0]} image: needs {need} '
                         f'after cropping {crop_border} px per edge')


def to_basicsr_image(img, quantize):
    """float32 RGB ``(H, W, 3)`` in [0, 1] -> BGR ``[0, 255]`` array (``uint8`` when quantised) as BasicSR expects."""
    bgr = np.asarray(img)[..., ::-1] * 255.0
    if quantize:
        return np.round(bgr).astype(np.uint8)  # inputs are already on the 8-bit grid: exact integers
    return bgr.astype(np.float64)


def psnr_y(sr, gt, crop_border=0, quantize=True):
    """PSNR (dB) on Y between ``sr`` and ``gt`` (float32 RGB ``(H, W, 3)`` in [0, 1]); higher is better."""
    from basicsr.metrics import calculate_psnr
    check_size(sr, crop_border, 1, 'psnr_y')
    return calculate_psnr(to_basicsr_image(sr, quantize), to_basicsr_image(gt, quantize), crop_border,
                          input_order='HWC', test_y_channel=True)


def ssim_y(sr, gt, crop_border=0, quantize=True):
    """SSIM on Y between ``sr`` and ``gt`` (float32 RGB ``(H, W, 3)`` in [0, 1]); higher is better."""
    from basicsr.metrics import calculate_ssim
    check_size(sr, crop_border, SSIM_WINDOW, 'ssim')
    return calculate_ssim(to_basicsr_image(sr, quantize), to_basicsr_image(gt, quantize), crop_border,
                          input_order='HWC', test_y_channel=True)
