"""Tests for tta_sr/models/lr_recon_pretrain_model.py (stage 1) and tta_sr/train.py with BasicSR's pipeline."""
import re
import subprocess

import pytest
import torch
from torch.utils.data import default_collate

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.utils.registry import MODEL_REGISTRY

from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.models.lr_recon_pretrain_model import LRReconPretrainModel
from tta_helpers import (FAR_CHANNELS, build_model, parsed, pretrain_options, subprocess_env, train_cmd, write_photos,
                         write_yaml)


@pytest.fixture
def hr_dir(tmp_path):
    write_photos(tmp_path / 'hr', 2, 72)
    return tmp_path / 'hr'


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_registered():
    assert MODEL_REGISTRY.get('LRReconPretrainModel') is LRReconPretrainModel


def test_one_step_in_process(tmp_path, hr_dir):
    """Train data is degraded on the fly; R/E_deg/E_img and T_a, T_m learn; E_clip stays frozen."""
    opt = parsed(pretrain_options(hr_dir), tmp_path)
    model = build_model(opt)
    dataset = HRDegradationDataset(opt['datasets']['train'])
    model.feed_data(default_collate([dataset[0]]))
    assert model.gt.shape == (1, 3, 64, 64) and model.lq.shape == (1, 3, 16, 16)
    assert model.lq.min() >= 0 and model.lq.max() <= 1
    net, far, enc = _snapshot(model.net_g), _snapshot(model.cri_far), _snapshot(model.far_encoder)
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_rec', 'l_far'}
    assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    assert any(not torch.equal(v, model.net_g.state_dict()[k]) for k, v in net.items())
    assert all(not torch.equal(v, model.cri_far.state_dict()[k]) for k, v in far.items())  # T_a, T_m trained
    assert all(torch.equal(v, model.far_encoder.state_dict()[k]) for k, v in enc.items())
    assert all(not p.requires_grad and p.grad is None for p in model.far_encoder.parameters())


def test_ema_net_takes_the_running_statistics_of_the_degradation_encoder(tmp_path, hr_dir):
    model = build_model(parsed(pretrain_options(hr_dir), tmp_path))
    dataset = HRDegradationDataset(parsed(pretrain_options(hr_dir), tmp_path)['datasets']['train'])
    model.feed_data(default_collate([dataset[0], dataset[1]]))  # a batch of two updates the running statistics
    model.optimize_parameters(1)
    trained, ema = model.net_g.deg_encoder, model.net_g_ema.deg_encoder
    assert not torch.equal(trained.running_mean, torch.zeros_like(trained.running_mean))
    assert torch.equal(ema.running_mean, trained.running_mean) and torch.equal(ema.running_var, trained.running_var)


def test_validation_scores_reconstruction(tmp_path, hr_dir):
    opt = pretrain_options(hr_dir)
    opt['datasets']['val'] = {'name': 'hr_val', 'type': 'HRDegradationDataset', 'dataroot_gt': str(hr_dir),
                              'gt_size': 64, 'fixed_seed': 100}
    opt = parsed(opt, tmp_path)
    model = build_model(opt)
    dataset = HRDegradationDataset(opt['datasets']['val'])
    loader = torch.utils.data.DataLoader(dataset, batch_size=1)
    model.nondist_validation(loader, 0, None, False)
    results = model.metric_results
    assert set(results) == {'psnr_rec', 'lpips_rec', 'psnr_bicubic', 'psnr_bicubic_aa', 'psnr_area'}
    assert all(v == v for v in results.values())  # not NaN
    assert 5 < results['psnr_bicubic'] < 60 and results['psnr_bicubic'] != results['psnr_bicubic_aa']
    assert results['psnr_rec'] == pytest.approx(results['psnr_bicubic_aa'])  # untrained R is the AA downscale


def test_validation_mean_stays_finite_when_a_baseline_is_exact(tmp_path, hr_dir):
    """In the bicubic family X_s is the antialiased downscale itself: that baseline scores the cap, not inf."""
    from tta_sr.models.lr_recon_pretrain_model import PSNR_CAP_DB
    opt = pretrain_options(hr_dir)
    opt['datasets']['val'] = {'name': 'hr_val', 'type': 'HRDegradationDataset', 'dataroot_gt': str(hr_dir),
                              'gt_size': 64, 'fixed_seed': 100, 'family_prob': {'bicubic': 1}}
    opt = parsed(opt, tmp_path)
    model = build_model(opt)
    loader = torch.utils.data.DataLoader(HRDegradationDataset(opt['datasets']['val']), batch_size=1)
    model.nondist_validation(loader, 0, None, False)
    assert model.metric_results['psnr_bicubic_aa'] == PSNR_CAP_DB
    assert 5 < model.metric_results['psnr_area'] < PSNR_CAP_DB


def test_without_far_and_controller_is_lway_branch(tmp_path, hr_dir):
    opt = pretrain_options(hr_dir)
    del opt['network_far'], opt['train']['far_opt'], opt['train']['controller']
    model = build_model(parsed(opt, tmp_path))
    assert model.cri_far is None and not model.controller.enabled
    dataset = HRDegradationDataset(parsed(opt, tmp_path)['datasets']['train'])
    model.feed_data(default_collate([dataset[1]]))
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_rec'}


def test_pretraining_run_saves_branch_and_resumes(tmp_path, hr_dir):
    """tta_sr/train.py: 4 iterations with checkpoints every 2, then --auto_resume to 6."""
    opt_file = write_yaml(tmp_path / 'pre.yml', pretrain_options(hr_dir, total_iter=4, save_checkpoint_freq=2))
    env = subprocess_env()
    first = subprocess.run(train_cmd(opt_file), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    root = tmp_path / 'experiments' / 'pre'
    ckpt = torch.load(root / 'models' / 'net_g_2.pth', map_location='cpu', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema', 'params_far'}
    assert set(ckpt['params_far']) == {'T_a.weight', 'T_a.bias', 'T_m.weight', 'T_m.bias'}
    assert ckpt['params_far']['T_a.weight'].shape == (FAR_CHANNELS, 8)
    assert any(k.startswith('deg_encoder.') for k in ckpt['params'])
    assert ckpt['params'].keys() == ckpt['params_ema'].keys()
    assert (root / 'training_states' / '4.state').is_file()
    assert not (root / 'training_states' / '6.state').exists()
    latest = torch.load(root / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)
    assert any(not torch.equal(latest['params'][k], ckpt['params'][k]) for k in ckpt['params'])  # kept training

    second = subprocess.run(train_cmd(opt_file, '--auto_resume', '--force_yml', 'train:total_iter=6'), cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-4000:]
    assert re.search(r'Resuming training from epoch: \d+, iter: 4\b', log), log[-3000:]
    assert (root / 'training_states' / '6.state').is_file()
    state = torch.load(root / 'training_states' / '6.state', map_location='cpu', weights_only=True)
    assert state['iter'] == 6
    assert (root / 'models' / 'net_g_6.pth').is_file()


def test_import_modules_from_option_file(tmp_path, monkeypatch):
    """launch.import_user_modules: a user's module next to the cwd is imported; a missing one names the file."""
    import sys
    from tta_sr.utils.launch import import_user_modules
    (tmp_path / 'my_user_arch_mod.py').write_text('LOADED = True\n')
    good = write_yaml(tmp_path / 'good.yml', {'import_modules': ['my_user_arch_mod']})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'path', list(sys.path))
    monkeypatch.delitem(sys.modules, 'my_user_arch_mod', raising=False)
    assert import_user_modules(good) == ['my_user_arch_mod']
    assert sys.modules['my_user_arch_mod'].LOADED
    bad = write_yaml(tmp_path / 'bad.yml', {'import_modules': ['no_such_module_xyz']})
    with pytest.raises(ImportError, match='bad.yml'):
        import_user_modules(bad)
    monkeypatch.delitem(sys.modules, 'my_user_arch_mod', raising=False)
