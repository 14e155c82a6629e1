"""tta_sr.metrics: PSNR-Y / SSIM equal BasicSR's functions, LPIPS orders noise, NIQE ranks blur, NRQM never downloads."""
import os

import tta_sr  # noqa: F401  (compat alias before basicsr)
import cv2
import numpy as np
import pytest
from skimage import data

from tta_sr.metrics import METRIC_NAMES, available_metrics, canonical_name, create_metric


@pytest.fixture(scope='module')
def photo():
    """Sharp 256 x 256 crop of skimage's astronaut, float32 RGB in [0, 1]."""
    return data.astronaut()[100:356, 150:406].astype(np.float32) / 255.0


@pytest.fixture(scope='module')
def noisy_pair(photo):
    rng = np.random.default_rng(0)
    return np.clip(photo + rng.normal(0, 0.05, photo.shape), 0, 1).astype(np.float32)


def _bgr255(img):
    return np.round(np.clip(img, 0, 1) * 255)[..., ::-1].astype(np.uint8)


def test_psnr_ssim_equal_basicsr(photo, noisy_pair):
    from basicsr.metrics import calculate_psnr, calculate_ssim
    psnr, ssim = create_metric('psnr_y', scale=4), create_metric('ssim', scale=4)
    expected_psnr = calculate_psnr(_bgr255(noisy_pair), _bgr255(photo), 4, test_y_channel=True)
    expected_ssim = calculate_ssim(_bgr255(noisy_pair), _bgr255(photo), 4, test_y_channel=True)
    assert psnr(noisy_pair, photo) == expected_psnr
    assert ssim(noisy_pair, photo) == expected_ssim
    assert 20 < expected_psnr < 40 and 0 < expected_ssim < 1
    assert psnr.crop_border == 4 and not psnr.lower_better and psnr.full_reference
    assert 'test_y_channel=True' in psnr.weights and 'crop_border=4' in ssim.weights
    # the Y channel is BT.601 of *RGB*: swapping R and B changes the score (channel order is handled)
    swapped = noisy_pair[..., ::-1].copy()
    assert psnr(swapped, photo) != expected_psnr


def test_full_reference_needs_matching_gt(photo):
    psnr = create_metric('psnr_y')
    with pytest.raises(ValueError, match='needs gt'):
        psnr(photo)
    with pytest.raises(ValueError, match='differ in size'):
        psnr(photo, photo[:-4])
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        psnr(photo[..., 0], photo[..., 0])


@pytest.mark.parametrize('size', [(1, 1), (5, 6), (18, 40)])
def test_psnr_ssim_undefined_on_images_too_small_after_the_crop(photo, size):
    """1 x 1, 6 x 5 (nothing left after the 4-px crop) and 40 x 18 (10 rows left: under SSIM's 11 x 11 window)."""
    h, w = size
    sr, gt = photo[:h, :w], photo[10:10 + h, 10:10 + w]
    with pytest.raises(ValueError, match=f'ssim: undefined for a {w} x {h} image'):
        create_metric('ssim', scale=4)(sr, gt)
    if h <= 8:
        with pytest.raises(ValueError, match=f'psnr_y: undefined for a {w} x {h} image'):
            create_metric('psnr_y', scale=4)(sr, gt)
    else:
        assert np.isfinite(create_metric('psnr_y', scale=4)(sr, gt))
    assert 0 < create_metric('ssim', scale=4)(photo[:19, :19], photo[1:20, 1:20]) < 1  # 11 x 11 left: defined


def test_lpips_zero_for_identical_and_orders_noise(photo):
    lpips = create_metric('lpips')
    assert lpips.lower_better and lpips.full_reference and 'LPIPS' in lpips.weights
    assert lpips(photo, photo) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, photo.shape).astype(np.float32)
    scores = [lpips(np.clip(photo + sigma * noise, 0, 1).astype(np.float32), photo) for sigma in (0.02, 0.08, 0.25)]
    assert scores[0] < scores[1] < scores[2], scores


def test_niqe_prefers_sharp_photo(photo):
    niqe = create_metric('niqe', scale=4)
    assert niqe.lower_better and not niqe.full_reference
    blurred = cv2.GaussianBlur(photo, (0, 0), 2.5)
    sharp_score, blurred_score = niqe(photo), niqe(blurred)
    assert sharp_score < blurred_score, (sharp_score, blurred_score)
    assert niqe(photo, gt=photo) == sharp_score  # a GT is accepted and ignored
    with pytest.raises(ValueError, match='96 x 96 blocks'):
        niqe(photo[:128, :128])  # one block only: BasicSR would return NaN


def test_nrqm_never_downloads(tmp_path, monkeypatch):
    import torch.hub
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    from tta_sr.metrics.no_reference import nrqm_weights_path
    assert nrqm_weights_path() == os.path.join(str(tmp_path), 'pyiqa', 'NRQM_model.mat')
    with pytest.raises(FileNotFoundError, match='NRQM_model.mat'):
        create_metric('nrqm')
    assert not os.path.exists(os.path.join(str(tmp_path), 'pyiqa', 'NRQM_model.mat'))
    reasons = available_metrics(with_reasons=True)
    assert set(reasons) == set(METRIC_NAMES)
    assert 'NRQM_model.mat' in reasons['nrqm']
    assert reasons['psnr_y'] is None and reasons['niqe'] is None
    assert 'nrqm' not in available_metrics()


def test_names_and_batch(photo, noisy_pair):
    assert canonical_name('PSNR') == 'psnr_y'
    with pytest.raises(ValueError, match='choose from'):
        canonical_name('fid')
    psnr = create_metric('psnr')
    assert psnr.batch([noisy_pair, photo], [photo, photo])[1] == float('inf')
    assert psnr.better(30.0, 29.0) and create_metric('niqe').better(4.0, 5.0)


def test_basicsr_registry_lpips_matches_create_metric(photo, noisy_pair):
    """``calculate_lpips`` in BasicSR's METRIC_REGISTRY takes BasicSR's uint8 BGR images."""
    import tta_sr.metrics.basicsr_metrics  # noqa: F401
    from basicsr.metrics import calculate_metric
    value = calculate_metric({'img': _bgr255(noisy_pair), 'img2': _bgr255(photo)}, {'type': 'calculate_lpips', 'better': 'lower'})
    assert value == pytest.approx(create_metric('lpips')(noisy_pair, photo), abs=1e-6)
