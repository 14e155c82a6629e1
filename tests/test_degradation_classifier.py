"""Tests for the degradation classifier: tta_sr/data/degradation_types.py, degradation_type_dataset.py,
archs/degradation_classifier_arch.py, models/degradation_classifier_model.py and the shipped classifier ``cpu``.

The shipped classifier is measured on scikit-image's colour photos (never seen in training: it used BSDS500,
validated on Set14 + BSD68), each degraded whole with seeds 9100 + i: every type independently applied or
not, SRTTA's ranges, the x4 downscale, labelled as the training labelled (``labels`` of the shipped yml).
"""
import os

import numpy as np
import pytest
import torch
import yaml

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network
from basicsr.utils import DiffJPEG

from tta_sr.data.degradation_type_dataset import DegradationTypeDataset
from tta_sr.data.degradation_types import (TYPES, apply_types, degradation_settings, identity_kernel, kernel_width,
                                           random_kernel, types_of, types_vector)
from tta_sr.models.degradation_classifier_model import held_out_accuracy, type_accuracy
from tta_sr.models.srtta_model import load_classifier
from tta_sr.utils.image_io import write_image
from tta_helpers import build_model, parsed, write_photos
from tta_sr.weights.branches import classifier_source

MIN_ACCURACY = 0.8
HELD_OUT = {'astronaut': None, 'chelsea': None, 'coffee': None, 'rocket': None, 'immunohistochemistry': None,
            'motorcycle_left': 'stereo_motorcycle'}


@pytest.fixture(scope='module')
def held_out_photos(tmp_path_factory):
    """Six whole colour photos of scikit-image (not in BSDS500, Set14 or BSD68), as PNG files."""
    from skimage import data
    folder = tmp_path_factory.mktemp('held_out')
    for name, loader in HELD_OUT.items():
        img = getattr(data, loader or name)()
        img = img[0] if loader else img
        write_image(str(folder / f'{name}.png'), img.astype(np.float32) / 255)
    return folder


def _smoothness(x):
    """Mean absolute horizontal difference (less after a blur)."""
    return (x[..., 1:] - x[..., :-1]).abs().mean().item()


def test_apply_types_degrades_only_the_rows_with_each_type():
    torch.manual_seed(0)
    np.random.seed(0)
    img = torch.rand(4, 3, 32, 32)
    present = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    kernels = torch.from_numpy(np.stack([identity_kernel()] + [random_kernel(degradation_settings())] * 3))
    out = apply_types(img, present, kernels, degradation_settings(), DiffJPEG(differentiable=False))
    assert torch.equal(out[0], torch.round(img[0] * 255) / 255)  # no type: only the 8-bit quantisation
    assert _smoothness(out[1]) < 0.6 * _smoothness(img[1])
    for row in (2, 3):
        assert (out[row] - img[row]).abs().mean() > 0.01
    assert torch.equal(out * 255, torch.round(out * 255))
    low = apply_types(img, present, kernels, degradation_settings(), DiffJPEG(differentiable=False), scale=4)
    assert low.shape == (4, 3, 8, 8)


def test_type_names_and_settings():
    assert types_of(types_vector(['jpeg', 'blur'])) == ['blur', 'jpeg']
    with pytest.raises(ValueError, match='unknown degradation types'):
        types_vector(['rain'])
    with pytest.raises(ValueError, match='unknown degradation settings'):
        degradation_settings({'sigma': 2})
    kernel = random_kernel(degradation_settings({'kernel_range': [7, 7]}))
    assert kernel.shape == (21, 21) and kernel.sum() == pytest.approx(1, abs=1e-5)
    assert not kernel[:7].any() and not kernel[14:].any()  # a 7 x 7 kernel, zero-padded


def test_kernel_width_is_the_blur_sigma():
    from basicsr.data.degradations import bivariate_Gaussian
    assert kernel_width(identity_kernel()) == 0
    assert kernel_width(bivariate_Gaussian(21, 1.5, 1.5, 0, isotropic=True)) == pytest.approx(1.5, rel=0.02)
    assert kernel_width(bivariate_Gaussian(21, 0.8, 2.0, 0.7, isotropic=False)) == pytest.approx(2.0, rel=0.02)
    assert kernel_width(bivariate_Gaussian(7, 3.0, 3.0, 0, isotropic=True)) < 2  # truncated by a small kernel


def test_dataset_items(tmp_path):
    write_photos(tmp_path / 'hr', 3, 70)
    train = DegradationTypeDataset({'dataroot_gt': str(tmp_path / 'hr'), 'gt_size': 64, 'scale': 4,
                                    'type_prob': [0.8, 0.5, 0.5], 'blur_min_width': 1.2, 'blur_max_noise': 10})
    labels, masked = [], 0
    for i in range(60):
        item = train[i % 3]
        assert item['gt'].shape == (3, 64, 64) and item['kernel'].shape == (21, 21)
        assert torch.equal(item['kernel'], torch.from_numpy(identity_kernel())) == (not item['applied'][0])
        assert (item['noise_sigma'] > 0) == bool(item['applied'][1])
        visible = bool(item['applied'][0]) and kernel_width(item['kernel'].numpy()) >= 1.2
        assert item['label'][0] == (visible and item['noise_sigma'] < 10)
        masked += visible and item['noise_sigma'] >= 10
        assert torch.equal(item['label'][1:], item['applied'][1:].float())
        labels.append(item['label'])
    assert 0 < torch.stack(labels).mean() < 1 and masked > 0
    opt = {'dataroot_gt': str(tmp_path / 'hr'), 'scale': 4, 'fixed_seed': 5, 'draws_per_image': 2}
    val, again = DegradationTypeDataset(opt), DegradationTypeDataset(opt)
    assert len(val) == 6
    item = val[3]
    assert item['lq'].shape == (3, 17, 17) and item['lq_path'].endswith('img01.png')
    assert torch.equal(item['lq'], again[3]['lq']) and torch.equal(item['label'], again[3]['label'])
    assert not torch.equal(item['lq'], val[2]['lq'])


def test_arch_takes_any_size():
    net = build_network({'type': 'DegradationClassifier', 'num_feat': 8, 'num_stages': 2, 'hidden': 8}).eval()
    assert net(torch.rand(2, 3, 37, 53)).shape == (2, len(TYPES))


def test_model_trains_and_validates(tmp_path):
    write_photos(tmp_path / 'hr', 2, 64)
    opt = {'name': 'cls', 'model_type': 'DegradationClassifierModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'train': {'name': 'hr', 'type': 'DegradationTypeDataset', 'dataroot_gt': str(tmp_path / 'hr'),
                                  'gt_size': 32}},
           'network_g': {'type': 'DegradationClassifier', 'num_feat': 8, 'num_stages': 2, 'hidden': 8},
           'path': {'pretrain_network_g': None, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 1e-2}, 'scheduler': {'type': 'MultiStepLR', 'milestones': [9]},
                     'total_iter': 2, 'warmup_iter': -1}}
    model = build_model(parsed(opt, tmp_path))
    dataset = DegradationTypeDataset(dict(opt['datasets']['train'], scale=4))
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    model.feed_data(batch)
    assert model.lq.shape == (2, 3, 8, 8)
    model.optimize_parameters(1)
    assert any(not torch.equal(v, before[k]) for k, v in model.net_g.state_dict().items())
    scores = held_out_accuracy(model.net_g, [tmp_path / 'hr'], seed=1, draws_per_image=2)
    assert scores['count'] == 4 and set(scores) == {'acc_blur', 'acc_noise', 'acc_jpeg', 'acc_all', 'count'}
    assert type_accuracy(torch.tensor([[1., -1, 1]]), torch.tensor([[1., 1, 1]])) == {
        'acc_blur': 1.0, 'acc_noise': 0.0, 'acc_jpeg': 1.0, 'acc_all': 0.0}


def test_shipped_classifier_is_small_and_documented():
    path, options = classifier_source('cpu')
    assert os.path.getsize(path) <= 5 * 2 ** 20
    assert options['recipe']['options'] == 'train_degradation_classifier_cpu.yml'
    measured = options['held_out_accuracy']
    assert all(measured[f'acc_{t}'] >= MIN_ACCURACY for t in TYPES), measured
    with pytest.raises(FileNotFoundError, match='shipped'):
        classifier_source('no_such_classifier')


@pytest.mark.parametrize('draws', [8, pytest.param(16, marks=pytest.mark.slow)])
def test_shipped_classifier_accuracy_on_held_out_photos(held_out_photos, draws):
    """Per-type accuracy >= 80% on 6 unseen photos x ``draws`` degradations (whole LR images, 100-185 px)."""
    torch.set_num_threads(1)
    net = load_classifier('cpu')
    labels = classifier_source('cpu')[1]['labels']  # labelled as in training (a blur that does not show: absent)
    scores = held_out_accuracy(net, [held_out_photos], seed=9100, draws_per_image=draws, **labels)
    assert scores['count'] == 6 * draws
    for t in TYPES:
        assert scores[f'acc_{t}'] >= MIN_ACCURACY, scores
