"""Tests for tta_sr/models/hr_aware_tta_model.py, sr_adaptation.py, branch_components.py and model_base.py (stage 2).

Each model is built in-process from a parsed option dict (tta_helpers.tta_opt) on a tiny LR set, with a tiny
untrained branch checkpoint; one batch is fed and ``optimize_parameters`` called, as BasicSR's loop does.
"""
import json
import math

import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.data import lr_image_dataset
from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_sr.models import sr_adaptation
from tta_sr.models.hr_aware_tta_model import HRAwareTTAModel, select_trainable
from tta_sr.utils.image_io import read_image
from tta_helpers import TINY_ARCHS, build_tta_model, lr_batch, make_branch_checkpoint, tta_opt, write_photos


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """4 LR images (24 x 24), their 96 x 96 'GT', and a tiny branch checkpoint."""
    root = tmp_path_factory.mktemp('tta_data')
    lr_paths = write_photos(root / 'lr', 4, 24)
    write_photos(root / 'gt', 4, 96)
    return {'lr': root / 'lr', 'gt': root / 'gt', 'lr_paths': lr_paths,
            'branch': make_branch_checkpoint(root / 'branch.pth')}


def _model(tmp_path, data, **kwargs):
    opt = tta_opt(tmp_path, data['lr'], data['branch'], **kwargs)
    model = build_tta_model(opt)
    dataset = LRImageDataset(opt['datasets']['train'])
    return model, dataset, opt


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    after = module.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def _step(model, dataset, it=1):
    torch.manual_seed(it)
    model.feed_data(lr_batch(dataset))
    model.optimize_parameters(it)


def test_registered():
    assert MODEL_REGISTRY.get('HRAwareTTAModel') is HRAwareTTAModel


def test_frozen_branch_unchanged_and_net_g_trained(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data)
    frozen = {'net_recon': model.net_recon, 'far_encoder': model.far_encoder, 'cri_far': model.cri_far}
    assert all(m is not None for m in frozen.values())
    before = {name: _state(m) for name, m in frozen.items()}
    g_before = _state(model.net_g)
    _step(model, dataset, 1)
    _step(model, dataset, 2)
    for name, module in frozen.items():
        assert not _changed(before[name], module), f'{name} changed'
        for pname, p in module.named_parameters():
            assert not p.requires_grad and p.grad is None, f'{name}.{pname} has a gradient'
        assert not module.training
    assert _changed(g_before, model.net_g) == set(g_before)  # every parameter of M moved
    assert all(p.requires_grad for p in model.net_g.parameters())
    # the optimiser holds exactly M's parameters
    opt_params = {id(p) for g in model.optimizer_g.param_groups for p in g['params']}
    assert opt_params == {id(p) for p in model.net_g.parameters()}


def test_trainable_patterns_only_change_matching(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data, trainable={'patterns': [r'body\.0\.']})
    before = _state(model.net_g)
    _step(model, dataset)
    assert _changed(before, model.net_g) == {'body.0.weight', 'body.0.bias'}
    assert [n for n, p in model.net_g.named_parameters() if p.requires_grad] == ['body.0.weight', 'body.0.bias']


def test_trainable_fraction_keeps_earliest_fixed(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data, trainable={'fraction': 0.5})
    names = [n for n, _ in model.net_g.named_parameters()]
    before = _state(model.net_g)
    _step(model, dataset)
    changed = _changed(before, model.net_g)
    assert names[0] not in changed and names[1] not in changed  # body.0 (first conv) is the earliest
    assert names[-1] in changed
    trainable = sum(p.numel() for p in model.net_g.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.net_g.parameters())
    assert 0.5 <= trainable / total < 1


def test_select_trainable_rejects_empty_selection():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3))
    with pytest.raises(ValueError, match='selects no parameter'):
        select_trainable(net, {'patterns': ['nothing_matches']})


def test_gt_folder_never_read_during_training(tmp_path, data, monkeypatch):
    reads = []
    for module in (sr_adaptation, lr_image_dataset):
        real = module.read_image
        monkeypatch.setattr(module, 'read_image', lambda p, real=real: reads.append(str(p)) or real(p))
    model, dataset, opt = _model(tmp_path, data, gt_dir=data['gt'], ema_decay=0.9)
    val = LRImageDataset(opt['datasets']['val'])
    for it in (1, 2):
        _step(model, dataset, it)
    model.nondist_validation([lr_batch(val, (0,))], 2, None, False)
    model.save(0, 2)
    model.export_outputs('adapted')
    gt_root = str(data['gt'])
    assert reads, 'the recorder saw nothing'
    assert not [p for p in reads if p.startswith(gt_root)], 'GT read before the report'
    model.write_run_report()
    assert [p for p in reads if p.startswith(gt_root)], 'the report should read GT (recorder check)'


@pytest.mark.parametrize('mode', ['hr_aware', 'lway', 'rec_only', 'fixed'])
def test_modes_give_finite_losses(tmp_path, data, mode):
    model, dataset, _ = _model(tmp_path, data, mode=mode)
    before = _state(model.net_g)
    _step(model, dataset)
    expected = {'hr_aware': {'l_rec', 'l_far'}, 'lway': {'l_rec'}, 'rec_only': {'l_rec'}, 'fixed': {'l_rec'}}[mode]
    assert set(model.log_dict) == expected
    assert all(math.isfinite(v) for v in model.log_dict.values())
    assert _changed(before, model.net_g)
    if mode != 'hr_aware':
        assert model.cri_far is None and model.controller is None


def test_fixed_mode_reconstructs_with_its_downscaler_and_needs_no_branch(tmp_path, data):
    from tta_sr.ops.downscalers import downscale
    model, dataset, _ = _model(tmp_path, data, mode='fixed', fixed_degradation='gauss1.0',
                               rec_opt={'type': 'ReconstructionLoss', 'lpips_weight': 0.0})
    assert model.net_recon is None
    model.feed_data(lr_batch(dataset))
    sr = model.net_g(model.lq).detach()
    loss, _ = model.adaptation_loss(model.lq, sr, model.lq_paths)
    assert loss.item() == pytest.approx((downscale(sr, 4, 'gauss1.0') - model.lq).abs().mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match='unknown downscaler'):
        _model(tmp_path, data, mode='fixed', fixed_degradation='lanczos')


def test_anchors_pull_towards_the_source_output_and_the_lr_colours(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data, source_opt={'type': 'LowPassL1Loss', 'sigma': 2.0},
                               color_opt={'type': 'LowPassL1Loss', 'sigma': 1.0})
    model.feed_data(lr_batch(dataset))
    sr = model.net_g(model.lq).detach()
    _, parts = model.adaptation_loss(model.lq, sr, model.lq_paths)
    assert parts['l_source'].item() == pytest.approx(0.0, abs=1e-7)  # M is still the source model
    _, darker = model.adaptation_loss(model.lq, sr * 0.7, model.lq_paths)
    assert darker['l_source'] > 0.01 and darker['l_color'] > parts['l_color'] + 0.01
    assert all(not p.requires_grad for p in model.net_source.parameters())
    _step(model, dataset)
    assert set(model.log_dict) == {'l_rec', 'l_far', 'l_source', 'l_color'}


@pytest.mark.parametrize('ratio', [0.0, 0.5, 1.0])
def test_fisher_restoration_keeps_the_configured_fraction_at_the_source_values(tmp_path, data, ratio):
    model, dataset, _ = _model(tmp_path, data, fisher_opt={'ratio': ratio, 'max_size': 16})
    before = _state(model.net_g)
    _step(model, dataset)
    params = dict(model.net_g.named_parameters())
    masks = model.fisher.masks if model.fisher is not None else {}
    assert (model.fisher is None) == (ratio == 0)
    assert sum(int(m.sum()) for m in masks.values()) == sum(int(v.numel() * ratio) for v in before.values())
    for name, value in before.items():
        restored = masks.get(name, torch.zeros_like(value, dtype=torch.bool))
        unmoved = params[name].grad == 0  # Adam's first step moves every entry with a gradient
        assert torch.equal(params[name].detach() == value, restored | unmoved), name


def test_lway_uses_the_weight_map(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data, mode='lway')
    model.feed_data(lr_batch(dataset))
    sr = model.net_g(model.lq).detach()
    weighted, _ = model.adaptation_loss(model.lq, sr, model.lq_paths, model.hf_weight)
    flat, _ = model.adaptation_loss(model.lq, sr, model.lq_paths, torch.ones_like(model.hf_weight))
    assert not torch.isclose(weighted, flat)


def test_lway_without_hf_weight_raises(tmp_path, data):
    model, _, opt = _model(tmp_path, data, mode='lway')
    plain = LRImageDataset(dict(opt['datasets']['train'], return_hf_weight=False))
    model.feed_data(lr_batch(plain))
    with pytest.raises(ValueError, match='return_hf_weight'):
        model.optimize_parameters(1)


def test_unknown_mode_raises(tmp_path, data):
    with pytest.raises(ValueError, match='train.mode'):
        _model(tmp_path, data, mode='hr-aware')


def test_controller_disabled_and_flip_sign(tmp_path, data):
    off, dataset, _ = _model(tmp_path, data, controller={'enabled': False})
    assert off.controller.enabled is False and off.controller.lpips is None
    lq = lr_batch(dataset)['lq']
    assert off.controller(lq, torch.rand(2, 3, 64, 64)) is None
    _step(off, dataset)
    assert all(math.isfinite(v) for v in off.log_dict.values())

    normal, _, _ = _model(tmp_path, data, controller={'noise_std': 0.1})
    flipped, _, _ = _model(tmp_path, data, controller={'noise_std': 0.1, 'flip_sign': True})
    sr = torch.nn.functional.interpolate(lq, scale_factor=4, mode='bicubic').clamp(0, 1)
    s, s_flip = normal.controller(lq, sr, noise=False), flipped.controller(lq, sr, noise=False)
    assert s.shape == (2, 8)
    assert torch.allclose(s + s_flip, torch.ones_like(s), atol=1e-6)  # HQI vs 1 - HQI
    assert 0 <= s.min() and s.max() <= 1
    _step(flipped, dataset)
    assert all(math.isfinite(v) for v in flipped.log_dict.values())


def test_early_stopping_restores_best_and_stops(tmp_path, data):
    model, dataset, opt = _model(tmp_path, data, ema_decay=0.9, early_stopping={'patience': 2})
    _step(model, dataset, 1)
    model.metric_results = {'ssl_loss': 1.0}
    model._early_stopping_check(1)
    best_g, best_ema = _state(model.net_g), _state(model.net_g_ema)
    for it, value in ((2, 1.5), (3, 2.0)):
        _step(model, dataset, it)
        assert _changed(best_g, model.net_g)
        assert not model.stopped
        model.metric_results = {'ssl_loss': value}
        model._early_stopping_check(it)
    assert model.stopped and model.best_iter == 1
    assert not _changed(best_g, model.net_g) and not _changed(best_ema, model.net_g_ema)
    _step(model, dataset, 4)
    assert not _changed(best_g, model.net_g) and not _changed(best_ema, model.net_g_ema)


def test_validation_feeds_early_stopping(tmp_path, data):
    model, dataset, opt = _model(tmp_path, data, early_stopping={'patience': 1})
    val = LRImageDataset(opt['datasets']['val'])
    loader = [lr_batch(val, (0,))]
    model.nondist_validation(loader, 1, None, False)
    first = model.metric_results['ssl_loss']
    assert math.isfinite(first) and model.best_iter == 1
    model.nondist_validation(loader, 2, None, False)  # noise-free and unchanged weights: the same loss
    assert model.metric_results['ssl_loss'] == pytest.approx(first)
    assert model.stopped  # not lower -> one bad check -> patience 1 reached
    assert [it for it, _ in model.history['val_ssl_loss']] == [1, 2]


def test_other_registered_arch_by_network_g_only(tmp_path, data):
    model, dataset, opt = _model(tmp_path, data, arch='RRDBNet')
    assert opt['network_g'] == TINY_ARCHS['RRDBNet']
    assert type(model.net_g).__name__ == 'RRDBNet'
    before = _state(model.net_g)
    _step(model, dataset)
    assert model.output.shape == (2, 3, 64, 64)
    assert all(math.isfinite(v) for v in model.log_dict.values())
    assert _changed(before, model.net_g)


def test_injected_nan_step_is_skipped(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data, debug_inject_nan_iter=1)
    before = _state(model.net_g)
    _step(model, dataset, 1)
    assert not _changed(before, model.net_g)
    assert all(torch.isfinite(p).all() for p in model.net_g.parameters())
    _step(model, dataset, 2)  # the next step proceeds
    assert _changed(before, model.net_g)
    assert all(torch.isfinite(p).all() for p in model.net_g.parameters())


def test_end_of_run_outputs(tmp_path, data):
    model, dataset, opt = _model(tmp_path, data, gt_dir=data['gt'])
    root = tmp_path / 'experiments' / 'tta'
    stems = sorted(p.rsplit('/', 1)[1] for p in data['lr_paths'])
    assert sorted(p.name for p in (root / 'results' / 'base').glob('*.png')) == stems
    assert not (root / 'results' / 'adapted').exists()
    _step(model, dataset)
    model.save(-1, -1)
    adapted = sorted((root / 'results' / 'adapted').glob('*.png'))
    assert [p.name for p in adapted] == stems
    assert read_image(str(adapted[0]))[0].shape == (96, 96, 3)
    assert (root / 'report.html').is_file() and (root / 'models' / 'net_g_latest.pth').is_file()
    metrics = json.loads((root / 'metrics.json').read_text())
    assert [row['name'] for row in metrics['images']] == [s[:-4] for s in stems]
    for row in metrics['images']:  # GT rows: PSNR-Y scored for both variants
        assert all(math.isfinite(row[v]['psnr_y']) for v in ('base', 'adapted'))
    assert metrics['count']['adapted']['psnr_y'] == len(stems)
    assert metrics['extra']['mode'] == 'hr_aware' and metrics['extra']['network_g'] == 'SRVGGNetCompact'
    assert (root / 'metrics.csv').is_file()


def test_report_without_gt_has_no_gt_scores(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data)
    _step(model, dataset)
    model.save(-1, -1)
    metrics = json.loads((tmp_path / 'experiments' / 'tta' / 'metrics.json').read_text())
    assert (tmp_path / 'experiments' / 'tta' / 'report.html').is_file()
    assert len(metrics['images']) == 4
    assert all(row[v]['psnr_y'] is None for row in metrics['images'] for v in ('base', 'adapted'))
    assert metrics['count']['adapted']['psnr_y'] == 0


def test_early_stopping_state_and_curves_survive_a_resume(tmp_path, data):
    model, dataset, opt = _model(tmp_path, data, early_stopping={'patience': 1})
    _step(model, dataset, 1)
    model.metric_results = {'ssl_loss': 0.5}
    model._early_stopping_check(1)
    model.metric_results = {'ssl_loss': 0.9}
    model._early_stopping_check(2)
    assert model.stopped
    model.save_training_state(0, 2)
    state = torch.load(f"{opt['path']['training_states']}/2.state", map_location='cpu', weights_only=True)
    resumed, _, _ = _model(tmp_path / 'resumed', data, early_stopping={'patience': 1})
    assert not resumed.stopped
    resumed.resume_training(state)
    assert resumed.stopped and resumed.best_iter == 1 and resumed.best_value == 0.5
    assert resumed.history['l_rec'] == model.history['l_rec']
    assert all(torch.equal(a, b) for a, b in zip(resumed.best_state[0].values(), model.best_state[0].values()))


def test_end_of_training_restores_the_best_validation_weights(tmp_path, data):
    model, dataset, _ = _model(tmp_path, data, early_stopping={'patience': 5})
    _step(model, dataset, 1)
    model.metric_results = {'ssl_loss': 0.5}
    model._early_stopping_check(1)
    best = _state(model.net_g)
    _step(model, dataset, 2)
    model.metric_results = {'ssl_loss': 0.9}
    model._early_stopping_check(2)
    assert not model.stopped and _changed(best, model.net_g)
    model.save(-1, -1)
    assert not _changed(best, model.net_g)
