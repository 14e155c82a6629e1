"""Tests for tta_sr/data/lr_image_dataset.py and tta_sr/data/transforms.py: splits, crops, W alignment, padding."""
import os
import types

import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.utils.registry import DATASET_REGISTRY

from tta_sr.data import lr_image_dataset
from tta_sr.data.lr_image_dataset import LRImageDataset, select_names, split_images
from tta_sr.data.transforms import center_crop, random_crop
from tta_sr.losses.dwt_weight import high_frequency_weight
from tta_sr.utils.image_io import read_image, to_tensor, write_image
from tta_helpers import photo, write_photos


def _stems(paths):
    return [os.path.splitext(os.path.basename(p))[0] for p in paths]


@pytest.fixture
def lr_dir(tmp_path):
    write_photos(tmp_path / 'lr', 5, 24)
    return tmp_path / 'lr'


def _dataset(lr_dir, **opt):
    return LRImageDataset({'dataroot_lq': str(lr_dir), 'lq_size': 16, 'phase': 'train', **opt})


def test_registered():
    assert DATASET_REGISTRY.get('LRImageDataset') is LRImageDataset


def test_splits_disjoint_covering_and_stable(lr_dir):
    train = _dataset(lr_dir, split='train', val_fraction=0.4, split_seed=3)
    val = _dataset(lr_dir, split='val', val_fraction=0.4, split_seed=3)
    everything = _dataset(lr_dir, split='all')
    assert len(val) == 2 and len(train) == 3
    assert not set(train.paths) & set(val.paths)
    assert sorted(train.paths + val.paths) == everything.paths
    assert _dataset(lr_dir, split='val', val_fraction=0.4, split_seed=3).paths == val.paths
    # some other seed gives another split (the seed is used at all)
    assert any(_dataset(lr_dir, split='val', val_fraction=0.4, split_seed=s).paths != val.paths for s in range(4, 12))


def test_split_rules():
    paths = [f'/x/{i}.png' for i in range(10)]
    assert len(split_images(paths, 'val', 0.01)) == 1  # at least one
    assert len(split_images(paths, 'train', 0.99)) == 1  # at least one left to train on
    assert split_images(['/x/only.png'], 'val') == split_images(['/x/only.png'], 'train') == ['/x/only.png']
    assert split_images(list(reversed(paths)), 'val', 0.3, 1) == split_images(paths, 'val', 0.3, 1)


def test_train_crops_have_lq_size_and_no_gt(lr_dir, tmp_path):
    dataset = _dataset(lr_dir, split='all', return_hf_weight=True, dataroot_gt=str(tmp_path / 'gt'))
    for i in range(len(dataset)):
        item = dataset[i]
        assert set(item) == {'lq', 'lq_path', 'hf_weight'}
        assert item['lq'].shape == (3, 16, 16) and item['hf_weight'].shape == (1, 16, 16)
        assert item['lq'].min() >= 0 and item['lq'].max() <= 1
        assert item['hf_weight'].min() >= 0 and item['hf_weight'].max() <= 1
    plain = _dataset(lr_dir, split='all')[0]
    assert set(plain) == {'lq', 'lq_path'}


def test_hf_weight_crop_aligned_with_lq_crop(lr_dir, monkeypatch):
    """Fixed window (top 5, left 3) and every flip on: W's crop is the whole-image W at that window, flipped alike."""
    window_corner = iter([5, 3])  # random_crop draws top, then left
    fake = types.SimpleNamespace(randint=lambda a, b: next(window_corner), random=lambda: 0.0)
    monkeypatch.setattr('tta_sr.data.transforms.random', fake)
    dataset = _dataset(lr_dir, split='all', return_hf_weight=True, use_hflip=True, use_rot=True)
    item = dataset[2]
    rgb, _ = read_image(dataset.paths[2])
    whole = torch.from_numpy(rgb.transpose(2, 0, 1).copy())
    weight = high_frequency_weight(whole[None])[0]

    def window(t):
        return t[:, 5:21, 3:19].flip(2).flip(1).transpose(1, 2)

    assert torch.equal(item['lq'], window(whole))
    assert torch.allclose(item['hf_weight'], window(weight), atol=1e-6)
    # and it is not W of the crop alone (which would differ at the crop borders)
    assert not torch.allclose(item['hf_weight'], high_frequency_weight(item['lq'][None])[0], atol=1e-3)


def test_random_crop_windows_vary_and_match(lr_dir):
    dataset = _dataset(lr_dir, split='all', return_hf_weight=True, use_hflip=False, use_rot=False)
    image, weight = dataset.windows(0)[0], dataset.hf_weight(0)
    seen = set()
    for _ in range(20):
        item = dataset[0]
        matches = [(t, l) for t in range(9) for l in range(9) if torch.equal(image[:, t:t + 16, l:l + 16], item['lq'])]
        assert matches, 'the lq crop is not a window of the image'
        t, l = matches[0]
        assert torch.equal(item['hf_weight'], weight[:, t:t + 16, l:l + 16])
        seen.add((t, l))
    assert len(seen) > 1


def test_small_images_are_padded(tmp_path):
    folder = tmp_path / 'small'
    write_image(str(folder / 'tiny.png'), photo(0, 12)[:10])  # 10 x 12, smaller than the 16 crop
    dataset = _dataset(folder, split='all', return_hf_weight=True)
    item = dataset[0]
    assert item['lq'].shape == (3, 16, 16) and item['hf_weight'].shape == (1, 16, 16)
    assert torch.isfinite(item['hf_weight']).all()


def test_validation_items_are_deterministic_centre_crops(lr_dir):
    dataset = _dataset(lr_dir, split='val', phase='val', val_crop_size=10, return_hf_weight=True)
    a, b = dataset[0], dataset[0]
    assert a['lq'].shape == (3, 10, 10) and a['hf_weight'].shape == (1, 10, 10)
    assert torch.equal(a['lq'], b['lq'])
    rgb, _ = read_image(dataset.paths[0])
    assert torch.equal(a['lq'], torch.from_numpy(rgb[7:17, 7:17].transpose(2, 0, 1).copy()))
    whole = _dataset(lr_dir, split='val', phase='val', val_crop_size=0)[0]
    assert whole['lq'].shape == (3, 24, 24)


def test_image_names_select_and_unknown_raise(lr_dir):
    dataset = _dataset(lr_dir, split='all', image_names=['img03', 'img01'])
    assert sorted(_stems(dataset.paths)) == ['img01', 'img03']
    with pytest.raises(ValueError, match='nope'):
        _dataset(lr_dir, image_names=['img01', 'nope'])
    assert select_names(['/a/x.png'], None) == ['/a/x.png']


def test_transforms():
    img = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(2, 5, 7)
    assert torch.equal(center_crop(img, 3), img[:, 1:4, 2:5])
    assert center_crop(img, 0) is img
    assert center_crop(img, 9).shape == (2, 5, 7)
    a, b = random_crop([img, img * 2], 4)
    assert a.shape == (2, 4, 4) and torch.equal(b, a * 2)


def test_module_never_reads_a_gt_root(lr_dir, tmp_path, monkeypatch):
    """Only dataroot_lq files are read, whatever else the options hold."""
    gt = tmp_path / 'gt'
    write_photos(gt, 5, 96)
    seen = []
    real = lr_image_dataset.read_image
    monkeypatch.setattr(lr_image_dataset, 'read_image', lambda p: seen.append(str(p)) or real(p))
    dataset = _dataset(lr_dir, split='all', dataroot_gt=str(gt), return_hf_weight=True)
    for i in range(len(dataset)):
        dataset[i]
    assert seen and all(str(lr_dir) in p for p in seen)


def test_a_large_photo_is_held_as_seeded_regions_and_crops_come_from_them(tmp_path):
    """A photo larger than region_size keeps regions_per_image regions of that side (the same in every run);
    training crops lie inside one of them; validation keeps its centre; whole-image use (lq_size 0) keeps it whole."""
    write_photos(tmp_path / 'big', 1, 200)
    opt = dict(name='t', type='LRImageDataset', dataroot_lq=str(tmp_path / 'big'), split='all', phase='train',
               lq_size=16, region_size=64, regions_per_image=3)
    dataset = LRImageDataset(opt)
    windows = dataset.windows(0)
    assert [tuple(w.shape) for w in windows] == [(3, 64, 64)] * 3
    assert all(torch.equal(a, b) for a, b in zip(windows, LRImageDataset(opt).windows(0)))
    whole = to_tensor(read_image(dataset.paths[0])[0])[0]
    for _ in range(10):
        crop = dataset[0]['lq']
        assert crop.shape == (3, 16, 16) and any(_contains(w, crop) for w in windows)
    val = LRImageDataset(dict(opt, phase='val', val_crop_size=32))
    assert torch.equal(val[0]['lq'], whole[:, 84:116, 84:116])
    assert tuple(LRImageDataset(dict(opt, lq_size=0)).windows(0)[0].shape) == (3, 200, 200)


def _contains(window, crop):
    """Whether ``crop`` (3, h, w) is some window of ``window`` under one of the 8 flips/transposes."""
    h = crop.shape[1]
    variants = [crop, crop.flip(2), crop.flip(1), crop.flip(1).flip(2)]
    variants += [v.transpose(1, 2) for v in variants]
    patches = window.unfold(1, h, 1).unfold(2, h, 1)  # (3, H-h+1, W-h+1, h, h)
    return any(bool((patches == v[:, None, None]).all(0).all(-1).all(-1).any()) for v in variants)
