"""Tests for tta_sr/models/acceptance_gate.py and the gate in HRAwareTTAModel: a run that harms the photos
ends with the source weights and says why; a run that helps keeps its adapted weights."""
import json
import os

import pytest
import torch
from torch.nn import functional as F

import tta_sr  # noqa: F401
from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_sr.models.acceptance_gate import decide, image_criteria
from tta_sr.options.schema import OptionError, resolve
from tta_sr.options.stage2 import GATE
from tta_sr.weights.resolver import load_state_dict
from tta_helpers import TINY_ARCHS, build_tta_model, lr_batch, photo, tta_opt, write_photos

OK = {'consistency': 30.0, 'halo': 1.0, 'colour': 0.5, 'texture': 0.3}


def lr_image():
    return torch.from_numpy(photo(1, 24).transpose(2, 0, 1).copy())[None]


def test_criteria_see_blur_halos_and_colour_casts():
    lr = lr_image()
    sharp = F.interpolate(lr, scale_factor=4, mode='bicubic', align_corners=False).clamp(0, 1)
    blurred = F.avg_pool2d(F.pad(sharp, (2, 2, 2, 2), mode='replicate'), 5, 1)
    haloed = (sharp + 1.5 * (sharp - blurred)).clamp(0, 1)  # unsharp masking overshoots the edges
    ref = image_criteria(lr, sharp, 4)
    assert ref['texture'] < 0.01 and image_criteria(lr, haloed, 4)['texture'] > 0.02  # bicubic is the reference
    assert image_criteria(lr, blurred, 4)['consistency'] < ref['consistency']
    assert ref['halo'] == 0 and image_criteria(lr, haloed, 4)['halo'] > 0.2
    assert image_criteria(lr, sharp * 0.8, 4)['colour'] > ref['colour'] + 5
    assert ref['consistency'] > image_criteria(lr, sharp * 0.8, 4)['consistency'] + 5
    assert all(v != v for v in image_criteria(lr, sharp * float('nan'), 4).values())


def test_decision_names_what_failed():
    opt = resolve(GATE, {}, 'gate')
    better = dict(OK, consistency=30.3)
    assert decide(OK, better, opt).accepted
    no_gain = decide(OK, dict(OK, consistency=30.01), opt)
    assert not no_gain.accepted and no_gain.failed == ['consistency']
    blurry = decide(OK, dict(better, texture=0.24), opt)
    assert not blurry.accepted and blurry.failed == ['texture'] and 'texture ratio 0.800' in blurry.reason
    # by default a model must overshoot 5% less than the source: as much halo as the source is not enough
    assert decide(OK, dict(better, halo=0.9), opt).accepted
    assert decide(OK, dict(better, halo=1.02), opt).failed == ['halo']
    haloed = decide(OK, dict(better, halo=1.5, colour=1.2), opt)
    assert haloed.failed == ['halo', 'colour'] and haloed.summary().startswith('kept the source model: halo, colour')
    assert decide(OK, dict(better, halo=float('nan')), opt).failed == ['finite']
    assert decide(OK, dict(OK, consistency=30.01), resolve(GATE, {'min_gain_db': 0.0}, 'gate')).accepted
    with pytest.raises(OptionError, match=r'unknown option gate\.min_gain: did you mean gate\.min_gain_db\?'):
        resolve(GATE, {'min_gain': 1}, 'gate')


@pytest.fixture(scope='module')
def dark_source(tmp_path_factory):
    """LR photos, and a tiny compact SR net whose output is the nearest upscale of its input, 0.15 too dark:
    adapting it to the photos' own LR (area x4 consistency) can only make it better."""
    from basicsr.archs import build_network
    root = tmp_path_factory.mktemp('gate')
    write_photos(root / 'lr', 4, 24)
    torch.manual_seed(0)
    net = build_network(dict(TINY_ARCHS['SRVGGNetCompact']))
    last = net.body[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, -0.15)
    torch.save({'params': net.state_dict()}, str(root / 'dark.pth'))
    return root


def train_dark_source(tmp_path, root, lr, iters, gate=None, **train):
    """The dark source model adapted in fixed (area) mode for ``iters`` steps, then the end-of-training save
    (gate on, with ``gate`` overrides). Returns the model and its options."""
    opt = tta_opt(tmp_path, root / 'lr', None, mode='fixed', fixed_degradation='area', total_iter=iters,
                  rec_opt={'type': 'ReconstructionLoss', 'lpips_weight': 0.0},
                  optim_g={'type': 'Adam', 'lr': lr, 'betas': [0.9, 0.999]}, **train)
    opt['path'].update(pretrain_network_g=str(root / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, **(gate or {})}
    model = build_tta_model(opt)
    dataset = LRImageDataset(opt['datasets']['train'])
    for it in range(1, iters + 1):
        torch.manual_seed(it)
        model.feed_data(lr_batch(dataset))
        model.optimize_parameters(it)
    model.save(-1, -1)
    return model, opt


def run_to_end(tmp_path, root, lr, iters=30, **gate):
    _, opt = train_dark_source(tmp_path, root, lr, iters, gate)
    folder = opt['path']['experiments_root']
    with open(os.path.join(folder, 'metrics.json')) as f:
        gate = json.load(f)['gate']
    return gate, load_state_dict(os.path.join(folder, 'models', 'net_g_latest.pth'), param_key='params'), \
        load_state_dict(str(root / 'dark.pth'), param_key='params')


def test_a_run_made_to_fail_ends_with_the_source_weights_and_says_why(tmp_path, dark_source):
    gate, final, source = run_to_end(tmp_path, dark_source, lr=50.0, iters=5)
    assert gate['decision'] == 'source' and 'consistency' in gate['failed']
    assert gate['summary'].startswith('kept the source model: ')
    assert all(torch.equal(final[k], source[k]) for k in source)


def test_a_run_that_helps_keeps_its_adapted_weights(tmp_path, dark_source):
    # The source's nearest-neighbour blocks read as texture to LPIPS, which the adapted model smooths away
    # (texture ratio 0.82): the texture criterion is off here, the other three judge.
    gate, final, source = run_to_end(tmp_path, dark_source, lr=1e-2, min_texture_ratio=0.0)
    assert gate['decision'] == 'adapted', gate['reason']
    assert gate['adapted']['consistency'] > gate['source']['consistency'] + 1
    assert gate['adapted']['colour'] < gate['source']['colour']
    assert not all(torch.equal(final[k], source[k]) for k in source)


@pytest.mark.parametrize('min_images', [1, 4])
def test_a_validation_split_under_min_images_is_judged_on_every_image(tmp_path, dark_source, min_images):
    opt = tta_opt(tmp_path, dark_source / 'lr', None, mode='fixed', fixed_degradation='area',
                  rec_opt={'type': 'ReconstructionLoss', 'lpips_weight': 0.0})
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, 'min_images': min_images}
    val = LRImageDataset(dict(opt['datasets']['val'], phase='val')).paths
    model = build_tta_model(opt)
    assert 1 <= len(val) < 4
    assert sorted(model.gate_images) == sorted(val if min_images == 1 else model.adapted_images)
    assert len(model.adapted_images) == 4


def test_the_validation_after_the_final_save_decides_nothing(tmp_path, dark_source):
    """BasicSR's train loop validates once more after ``save(-1, -1)``: that validation reports its loss, but
    neither re-runs the gate (which would judge the restored source model against itself) nor early-stops."""
    model, opt = train_dark_source(tmp_path, dark_source, lr=50.0, iters=2, early_stopping={'patience': 1})
    decided = dict(model.gate_result)
    weights = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    loader = [lr_batch(LRImageDataset(dict(opt['datasets']['train'], phase='val')), (0,))]
    for it in (3, 4):
        model.nondist_validation(loader, it, None, False)
    assert decided['decision'] == 'source' and model.gate_result == decided
    assert 'val_gate_consistency_gain' not in model.history and not model.stopped
    assert [it for it, _ in model.history['val_ssl_loss']] == [3, 4]
    assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in weights.items())


def test_the_gate_judges_a_bounded_set_of_crops(tmp_path, dark_source):
    """gate.crop_size / crops_per_image / max_crops bound what a check upscales: four 24 px photos, crops of 16,
    two each, at most 5 in all; the same crops every time."""
    opt = tta_opt(tmp_path, dark_source / 'lr', None, mode='fixed', fixed_degradation='area')
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, 'min_images': 8, 'crop_size': 16, 'crops_per_image': 2, 'max_crops': 5}
    model = build_tta_model(opt)
    assert len(model.adapted_images) == 4 and [c.shape for c in model.gate_crops] == [(16, 16, 3)] * 5
    opt['gate'].update(crop_size=64)
    assert [c.shape for c in build_tta_model(opt).gate_crops] == [(24, 24, 3)] * 4  # small photos: whole
