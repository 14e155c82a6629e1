"""The shipped reconstruction branches on held-out photos, in every degradation family.

Training used BSDS500's photos and the global seed 0 for its on-the-fly degradations, Set5 with seeds 2024 + i for
validation, and calibration seeds 40000 + i; here: 128 px crops of scikit-image photos (astronaut, chelsea,
coffee, rocket: 33 crops), each degraded in each family of ``tta_sr.data.degradation_families`` with seed
9000 + i, except the bicubic family, made as in ``benchmarks/datasets.py`` by basicsr's MATLAB-style
``imresize``: a bicubic downscale by other software than the torch operator in the branch's bank. A branch runs as
its stage-1 validation runs it: the HR-aware branch with the noise-free controller s = 1 - HQI(X_s, Y_gt), the LWay
branch with s = 1. The margins are those of issue #14:

* in the second-order and mild families, at least as good as the best of the bicubic, antialiased bicubic and area
  downscales of Y (up to ``FIXED_TOLERANCE_DB``), and a gain over the antialiased bicubic downscale of at least
  ``AVERAGE_GAIN_DB`` averaged over them;
* in every family, within 0.5 dB of the blur + area oracle whose width is chosen with the ground truth;
* E_deg taken from the same crop in another family costs at least 1 dB.

The bicubic family is the known shortfall. On ``benchmarks/branch_fidelity.py``'s Set14 crops the branches tie the
antialiased bicubic downscale there (52.84-52.85 dB against 52.85, ``docs/pretraining.md``), and the gain averaged
over all three families is 1.08-1.12 dB. On these smoother crops they reach about 50 dB against 53.7 dB, so the
averaged gain falls to about -0.2 dB. The test guards what holds: an RMS error below one 8-bit grey level
(``ONE_GREY_LEVEL_DB``). The branch that shipped before scored 26 dB there.
"""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import tta_sr  # noqa: F401
from basicsr.archs import build_network

from tta_sr.data.degradation_families import FAMILIES
from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.data.second_order_degradation import quantize
from tta_sr.losses.far_loss import FARLoss
from tta_sr.models.branch_components import Controller
from tta_sr.ops.downscalers import PLAIN, downscale
from tta_sr.utils.image_io import write_image
from tta_sr.weights.branches import branch_source, shipped_branch_names
from tta_sr.weights.resolver import load_state_dict

FIXED_TOLERANCE_DB = 0.05
ORACLE_GAP_DB = 0.5
AVERAGE_GAIN_DB = 1.0
ONE_GREY_LEVEL_DB = float(20 * np.log10(255))  # 48.13 dB: an RMS error of one level in 255
SWAP_COST_DB = 1.0
SIZE = 128
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')
HELD_OUT_SEED = 9000
SIGMAS = tuple(round(0.1 * i, 1) for i in range(41))
BRANCHES = ('hr_aware_cpu', 'lway_cpu')
UNSATURATED = ('second_order', 'mild')  # families where a fixed downscale leaves a visible error


def psnr(a, b):
    return float(10 * torch.log10(1 / F.mse_loss(a.clamp(0, 1), b)))


def held_out_pairs(folder, family):
    """[(X_s (1,3,32,32), Y_gt (1,3,128,128))]: crop i degraded in ``family`` with seed 9000 + i (bicubic: imresize)."""
    dataset = HRDegradationDataset({'dataroot_gt': str(folder), 'gt_size': SIZE, 'scale': 4, 'phase': 'val',
                                    'fixed_seed': HELD_OUT_SEED, 'family_prob': {family: 1}})
    pairs = [(item['lq'][None], item['gt'][None]) for item in (dataset[i] for i in range(len(dataset)))]
    if family == 'bicubic':
        from basicsr.utils.matlab_functions import imresize
        pairs = [(quantize(torch.from_numpy(imresize(y[0].permute(1, 2, 0).double().numpy(), 1 / 4))
                           .permute(2, 0, 1)[None].float()), y) for _, y in pairs]
    return pairs


def load_branch(name):
    """(LRReconNet in eval mode, controller scale function (x, y) -> s or None, options, path)."""
    path, options = branch_source(name)
    net = build_network(options['network_recon'])
    net.load_state_dict(load_state_dict(path, param_key='params_ema'))
    controller = Controller(options.get('controller') or {'enabled': False}, 'pretrain', net.emb_dim, 'cpu')
    return net.eval(), (lambda x, y: controller(x, y, noise=False)), options, path


@pytest.fixture(scope='module')
def families(tmp_path_factory):
    """{family: pairs} on non-overlapping 128 px crops, at most 3 x 3 from each photo's top-left corner."""
    from skimage import data
    folder = tmp_path_factory.mktemp('held_out')
    for name in PHOTOS:
        image = getattr(data, name)()[..., :3].astype(np.float32) / 255
        rows, cols = (min(3, n // SIZE) for n in image.shape[:2])
        for top in range(0, rows * SIZE, SIZE):
            for left in range(0, cols * SIZE, SIZE):
                write_image(str(folder / f'{name}_{top}_{left}.png'), image[top:top + SIZE, left:left + SIZE])
    return {family: held_out_pairs(folder, family) for family in FAMILIES}


@pytest.fixture(scope='module')
def scores(families):
    """{branch: {family: {'branch', 'swap' {other: psnr}, fixed names, 'oracle'}}}: mean PSNRs against X_s."""
    out = {}
    with torch.no_grad():
        for name in BRANCHES:
            net, scale_of, _, _ = load_branch(name)

            def reconstruct(x_embedding, x, y):
                return net.reconstruct(net.encode_degradation(x_embedding), net.encode_image(y), y, scale_of(x, y))

            out[name] = {}
            for family, pairs in families.items():
                row = {'branch': np.mean([psnr(reconstruct(x, x, y), x) for x, y in pairs])}
                row['swap'] = {other: np.mean([psnr(reconstruct(xo, x, y), x) for (x, y), (xo, _) in
                                               zip(pairs, families[other])]) for other in FAMILIES if other != family}
                for fixed in PLAIN:
                    row[fixed] = np.mean([psnr(downscale(y, 4, fixed), x) for x, y in pairs])
                row['oracle'] = max(np.mean([psnr(downscale(y, 4, f'gauss{s}'), x) for x, y in pairs]) for s in SIGMAS)
                out[name][family] = row
    return out


@pytest.mark.parametrize('name', BRANCHES)
def test_branch_is_shipped_and_loads_strictly(name):
    assert name in shipped_branch_names()
    net, _, options, path = load_branch(name)
    assert net.scale == 4 and options['network_recon'].get('prior')
    if options.get('far_opt'):
        far = FARLoss(**{k: v for k, v in options['far_opt'].items() if k != 'type'},
                      target_channels=build_network(options['network_far']).out_channels)
        far.load_state_dict(load_state_dict(path, param_key='params_far'))


@pytest.mark.parametrize('name', BRANCHES)
def test_branch_matches_or_beats_every_fixed_downscaler_where_they_leave_an_error(name, scores):
    for family in UNSATURATED:
        row = scores[name][family]
        assert row['branch'] >= max(row[k] for k in PLAIN) - FIXED_TOLERANCE_DB, (family, row)


@pytest.mark.parametrize('name', BRANCHES)
def test_branch_reconstructs_plain_bicubic_within_one_grey_level(name, scores):
    assert scores[name]['bicubic']['branch'] >= ONE_GREY_LEVEL_DB, scores[name]['bicubic']


@pytest.mark.parametrize('name', BRANCHES)
def test_branch_is_within_half_a_db_of_the_blur_area_oracle(name, scores):
    for family, row in scores[name].items():
        assert row['branch'] >= row['oracle'] - ORACLE_GAP_DB, (family, row)


@pytest.mark.parametrize('name', BRANCHES)
def test_branch_beats_antialiased_bicubic_on_average_over_the_families(name, scores):
    gain = np.mean([scores[name][family]['branch'] - scores[name][family]['bicubic_aa'] for family in UNSATURATED])
    assert gain >= AVERAGE_GAIN_DB, scores[name]


@pytest.mark.parametrize('name', BRANCHES)
def test_embedding_of_another_family_costs_at_least_1db(name, scores):
    """Same crop, same Y and s, E_deg of the crop degraded in another family: R must follow the embedding."""
    for family, row in scores[name].items():
        cost = row['branch'] - np.mean(list(row['swap'].values()))
        assert cost >= SWAP_COST_DB, (family, row)
