"""Tests for tta_sr/models/srtta_model.py (SRTTA) and tta_sr/utils/feature_tap.py, on tiny networks.

Models are built in-process from a parsed option dict (tta_helpers.srtta_options), with fixed degradation
types unless a test says otherwise; ``options/tta/srtta_RealESRGAN_x4plus.yml`` runs end to end through
``tta_sr/train.py`` with a tiny RRDBNet and the shipped classifier.
"""
import json
import random
import subprocess

import numpy as np
import pytest
import torch
import yaml

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.models.srtta_model import SRTTAModel
from tta_sr.utils.feature_tap import FeatureTap
from tta_sr.utils.image_io import read_image
from tta_helpers import (REPO_ROOT, TINY_ARCHS, build_model, parsed, srtta_options, subprocess_env, train_cmd,
                         write_photos, write_yaml)


@pytest.fixture(scope='module')
def lr_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('srtta_data')
    write_photos(root / 'lr', 2, 24)
    return root / 'lr'


def _seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _model(tmp_path, lr_dir, **train):
    """An SRTTAModel whose source M_0 (a random tiny net) is the same in every test."""
    _seed(0)
    return build_model(parsed(srtta_options(lr_dir, **train), tmp_path))


def _state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _image(path):
    return torch.from_numpy(read_image(path)[0].transpose(2, 0, 1).copy())


def test_registered():
    assert MODEL_REGISTRY.get('SRTTAModel') is SRTTAModel


def test_one_step_changes_only_the_parameters_allowed_to_change(tmp_path, lr_dir):
    model = _model(tmp_path, lr_dir, trainable={'patterns': [r'^body\.']})
    net = model.get_bare_model(model.net_g)
    before, teacher = _state(net), _state(model.teacher)
    _seed(0)
    present = torch.ones(3, dtype=torch.bool)
    model.adapt_step(model.sample_patches(_image(model.adapted_images[0])), present, 1)
    after = net.state_dict()
    for name, value in before.items():
        if not name.startswith('body.'):
            assert torch.equal(after[name], value), f'{name} is outside train.trainable but changed'
            continue
        mask = model.fisher.masks[name]
        assert mask.sum() == int(value.numel() * 0.5)
        assert torch.equal(after[name][mask], value[mask]), f'{name}: Fisher-preserved entries changed'
    changed = sum(int((after[n] != v).sum()) for n, v in before.items())
    assert changed > 0, 'the step changed nothing'
    assert all(torch.equal(model.teacher.state_dict()[k], v) for k, v in teacher.items()), 'the teacher changed'
    assert model.student_features.name == 'conv_last'
    assert len(model.step_times) == 1 and model.history['l_srtta'][0][0] == 1


def test_loss_is_srtta_feature_reconstruction(tmp_path, lr_dir):
    """At the source (student = teacher) L = (1 + teacher_weight) * Charb(f(X'), f_0(X)); X' differs from X."""
    model = _model(tmp_path, lr_dir, teacher_weight=0.5, fisher_opt={'ratio': 0, 'max_size': 16})
    assert model.fisher is None
    captured = {}
    real_step = model.guarded_step
    model.guarded_step = lambda loss, it: captured.setdefault('loss', loss.item()) and real_step(loss, it)
    _seed(1)
    patches = model.sample_patches(_image(model.adapted_images[0]))
    _seed(2)
    loss = model.adapt_step(patches, torch.tensor([False, True, False]), 1)
    _seed(2)
    from tta_sr.data.degradation_types import apply_types, identity_kernel
    kernels = torch.from_numpy(np.stack([identity_kernel()] * 2))
    degraded = apply_types(patches, torch.tensor([[0, 1, 0]] * 2), kernels, model.degradation, model.jpeger)
    assert not torch.equal(degraded, patches)
    teacher = FeatureTap(model.teacher)
    with torch.no_grad():
        f_noisy, f_clean = teacher(degraded), teacher(patches)
    expected = 1.5 * torch.sqrt((f_noisy - f_clean) ** 2 + model.eps).mean().item()
    assert loss == pytest.approx(expected, rel=1e-4) and captured['loss'] == loss


def test_per_image_mode_resets_between_images(tmp_path, lr_dir):
    model = _model(tmp_path / 'a', lr_dir)
    first, second = model.adapted_images
    net = model.get_bare_model(model.net_g)
    source = _state(model.teacher)
    _seed(3)
    model.adapt_image(_image(first), first, 1)
    assert any(not torch.equal(v, source[k]) for k, v in net.state_dict().items()), 'image 1 did not adapt M'
    _seed(4)
    model.adapt_image(_image(second), second, 2)
    after_two = _state(net)
    model.reset_to_source()
    assert all(torch.equal(v, source[k]) for k, v in net.state_dict().items())
    assert not model.optimizer_g.state_dict()['state'], 'the optimizer state was not reset'

    alone = _model(tmp_path / 'b', lr_dir)  # the second image adapted on its own: the same weights
    _seed(4)
    alone.adapt_image(_image(second), second, 1)
    assert all(torch.equal(v, after_two[k]) for k, v in alone.get_bare_model(alone.net_g).state_dict().items())

    lifelong = _model(tmp_path / 'c', lr_dir, per_image_reset=False)
    _seed(3)
    lifelong.adapt_image(_image(first), first, 1)
    _seed(4)
    lifelong.adapt_image(_image(second), second, 2)
    assert any(not torch.equal(v, after_two[k])
               for k, v in lifelong.get_bare_model(lifelong.net_g).state_dict().items()), 'lifelong mode reset'


def test_no_predicted_type_leaves_the_image_unadapted(tmp_path, lr_dir):
    model = _model(tmp_path, lr_dir, types=[])
    path = model.adapted_images[0]
    before = _state(model.net_g)
    assert model.adapt_image(_image(path), path, 1) == []
    assert all(torch.equal(v, before[k]) for k, v in model.net_g.state_dict().items())
    root = tmp_path / 'experiments' / 'srtta' / 'results'
    np.testing.assert_array_equal(read_image(root / 'adapted' / 'img00.png')[0], read_image(root / 'base' / 'img00.png')[0])


def test_feature_tap_default_and_named_layer():
    net = build_network(dict(TINY_ARCHS['SRVGGNetCompact']))
    x = torch.rand(1, 3, 8, 8)
    tap = FeatureTap(net)
    assert tap.name == 'body.6'  # the last conv (before the pixel shuffle): its input is the LR features
    assert tap(x).shape == (1, 8, 8, 8)
    assert FeatureTap(net, 'body.2')(x).shape == (1, 8, 8, 8)
    with pytest.raises(ValueError, match='not a module'):
        FeatureTap(net, 'no_such_layer')


def test_srtta_yaml_runs_end_to_end(tmp_path, lr_dir):
    """options/tta/srtta_RealESRGAN_x4plus.yml through tta_sr/train.py, with a tiny RRDBNet, the shipped
    classifier and 2 steps of 2 patches per image: outputs, report and metrics as HRAwareTTAModel writes them."""
    with open(f'{REPO_ROOT}/options/tta/srtta_RealESRGAN_x4plus.yml') as f:
        opt = yaml.safe_load(f)
    opt['network_g'] = dict(TINY_ARCHS['RRDBNet'])
    opt['path']['pretrain_network_g'] = None
    opt['datasets']['train']['dataroot_lq'] = str(lr_dir)
    opt['num_gpu'] = 0
    opt['train'].update(iterations_per_image=2, patch_size=16, patch_batch=2, fisher_opt={'max_size': 16}, total_iter=1)
    opt['eval'] = {'tile': 0, 'metrics': ['psnr_y']}
    out = subprocess.run(train_cmd(write_yaml(tmp_path / 'srtta.yml', opt)), cwd=tmp_path, env=subprocess_env(),
                         capture_output=True, text=True, timeout=500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    root = tmp_path / 'experiments' / opt['name']
    for variant in ('base', 'adapted'):
        assert sorted(p.name for p in (root / 'results' / variant).glob('*.png')) == ['img00.png', 'img01.png']
        assert read_image(root / 'results' / variant / 'img00.png')[0].shape == (96, 96, 3)
    assert (root / 'report.html').is_file()
    extra = json.loads((root / 'metrics.json').read_text())['extra']
    assert extra['mode'] == 'srtta' and extra['classifier'] == 'cpu' and extra['feature_layer'] == 'conv_last'
    assert sorted(extra['images']) == ['img00', 'img01']  # total_iter 1: the second image adapted at the end
    for log in extra['images'].values():
        assert set(log['types']) <= {'blur', 'noise', 'jpeg'}
        assert len(log['losses']) == (2 if log['types'] else 0)


def test_resumed_run_takes_the_source_from_where_the_run_started(tmp_path, lr_dir):
    """On resume net_g holds the run's checkpoint; M_0 (teacher, reset target, Fisher source) is the original."""
    source, adapted = build_network(dict(TINY_ARCHS['RRDBNet'])), build_network(dict(TINY_ARCHS['RRDBNet']))
    torch.save({'params': source.state_dict()}, tmp_path / 'source.pth')
    torch.save({'params': adapted.state_dict()}, tmp_path / 'net_g_1.pth')
    opt = parsed(srtta_options(lr_dir), tmp_path)
    opt['path'].update(pretrain_network_g=str(tmp_path / 'net_g_1.pth'), resume_state=str(tmp_path / '1.state'),
                       source_network_g=str(tmp_path / 'source.pth'), source_param_key_g='params')
    model = build_model(opt)
    for name, value in source.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[name], value)
        assert torch.equal(model.net_g.state_dict()[name], adapted.state_dict()[name])
        if name in model.fisher.source:
            assert torch.equal(model.fisher.source[name], value)
    assert not (tmp_path / 'experiments' / 'srtta' / 'results' / 'base').exists()  # written by the first run
