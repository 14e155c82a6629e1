"""Tests for tta_sr/data/hr_degradation_dataset.py: folder listing, bad files, reproducible validation pairs."""
import os

import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.utils.registry import DATASET_REGISTRY

from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.utils.image_io import ImageReadError
from tta_helpers import write_photos


@pytest.fixture
def hr_dirs(tmp_path):
    main = write_photos(tmp_path / 'hr', 2, 72, prefix='a')
    extra = write_photos(tmp_path / 'hr_extra', 1, 72, prefix='b')
    return tmp_path / 'hr', tmp_path / 'hr_extra', main + extra




def test_registered():
    assert DATASET_REGISTRY.get('HRDegradationDataset') is HRDegradationDataset


def test_folder_listing_without_meta_info(hr_dirs):
    main, extra, paths = hr_dirs
    only_main = HRDegradationDataset({'dataroot_gt': str(main), 'gt_size': 64, 'scale': 4, 'phase': 'train'})
    assert len(only_main) == 2
    both = HRDegradationDataset({'dataroot_gt': str(main), 'extra_dataroots_gt': [str(extra)], 'gt_size': 64,
                                 'scale': 4, 'phase': 'train'})
    assert len(both) == 3
    assert sorted(both.paths) == sorted(os.path.abspath(p) for p in paths)


def test_training_item_is_realesrgan_style(hr_dirs):
    """Training items: the (padded) HR crop and three 21 x 21 kernels; the model degrades them."""
    main, _, _ = hr_dirs
    dataset = HRDegradationDataset({'dataroot_gt': str(main), 'gt_size': 64, 'scale': 4, 'phase': 'train'})
    item = dataset[0]
    assert item['gt'].shape[0] == 3 and min(item['gt'].shape[1:]) >= 64
    for key in ('kernel1', 'kernel2', 'sinc_kernel'):
        assert item[key].shape == (21, 21)
        assert abs(float(item[key].sum()) - 1) < 1e-3
    assert 'lq' not in item


def test_corrupt_file_skipped_with_warning(hr_dirs, warnings_log):
    main, _, _ = hr_dirs
    bad = main / 'broken.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    dataset = HRDegradationDataset({'dataroot_gt': str(main), 'gt_size': 64, 'scale': 4, 'phase': 'train'})
    assert len(dataset) == 2
    assert all('broken' not in p for p in dataset.paths)
    assert any('broken.png' in message for message in warnings_log)


def test_corrupt_file_raises_when_asked(hr_dirs):
    main, _, _ = hr_dirs
    (main / 'broken.png').write_bytes(b'garbage')
    with pytest.raises(ImageReadError, match='broken.png'):
        HRDegradationDataset({'dataroot_gt': str(main), 'gt_size': 64, 'scale': 4, 'phase': 'train',
                              'on_bad_image': 'raise'})


def test_fixed_seed_items_reproducible_across_instances(hr_dirs):
    main, extra, _ = hr_dirs
    opt = {'dataroot_gt': str(main), 'extra_dataroots_gt': [str(extra)], 'gt_size': 64, 'scale': 4,
           'fixed_seed': 11, 'phase': 'val'}
    first, second = HRDegradationDataset(dict(opt)), HRDegradationDataset(dict(opt))
    torch.manual_seed(0)
    a = [first[i] for i in range(len(first))]
    torch.manual_seed(123)  # the outer RNG state must not matter
    b = [second[i] for i in range(len(second))]
    for x, y in zip(a, b):
        assert x['lq'].shape == (3, 16, 16) and x['gt'].shape == (3, 64, 64)
        assert torch.equal(x['lq'], y['lq']) and torch.equal(x['gt'], y['gt'])
        assert x['lq'].min() >= 0 and x['lq'].max() <= 1
        assert x['lq_path'] == x['gt_path']
    assert not torch.equal(a[0]['lq'], a[1]['lq'])
    # the GT is the top-left crop of the image, not padding and not flipped
    from tta_sr.utils.image_io import read_image
    rgb, _ = read_image(a[0]['gt_path'])
    assert torch.allclose(a[0]['gt'], torch.from_numpy(rgb[:64, :64].transpose(2, 0, 1).copy()), atol=1 / 255)


def test_fixed_seed_does_not_disturb_global_rng(hr_dirs):
    import random
    main, _, _ = hr_dirs
    dataset = HRDegradationDataset({'dataroot_gt': str(main), 'gt_size': 64, 'scale': 4, 'fixed_seed': 3,
                                    'phase': 'val'})
    random.seed(9)
    torch.manual_seed(9)
    expected = random.random(), torch.rand(1).item()
    random.seed(9)
    torch.manual_seed(9)
    dataset[0]
    assert (random.random(), torch.rand(1).item()) == expected


def test_consistent_degradation_uses_one_seed(tmp_path):
    """Two copies of the same image degrade identically when the set shares one degradation."""
    folder = tmp_path / 'same'
    path = write_photos(folder, 1, 72)[0]
    os.link(path, folder / 'img99.png')
    opt = {'dataroot_gt': str(folder), 'gt_size': 64, 'scale': 4, 'fixed_seed': 5, 'phase': 'val'}
    shared = HRDegradationDataset({**opt, 'consistent_degradation': True})
    assert torch.equal(shared[0]['lq'], shared[1]['lq'])
    per_item = HRDegradationDataset(opt)
    assert not torch.equal(per_item[0]['lq'], per_item[1]['lq'])
