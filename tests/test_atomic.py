"""Tests for tta_sr/utils/atomic.py: atomic writes and BasicSR-compatible atomic checkpoints."""
import os
import stat
import time

import pytest
import torch
from torch import nn

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.atomic import AtomicSaveMixin, atomic_torch_save, atomic_write_text


def _half_then_raise(obj, f, *args, **kwargs):
    """A torch.save that dies midway: half of the real bytes reach the file, then an error."""
    import io
    buf = io.BytesIO()
    _REAL_SAVE(obj, buf)
    data = buf.getvalue()
    f.write(data[:len(data) // 2])
    raise OSError('simulated disk failure midway')


_REAL_SAVE = torch.save


def test_atomic_torch_save_round_trip_and_no_temp(tmp_path):
    path = tmp_path / 'sub' / 'ckpt.pth'
    atomic_torch_save({'w': torch.arange(5.0)}, path)
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.arange(5.0))
    assert os.listdir(path.parent) == ['ckpt.pth']


def test_atomic_torch_save_failure_midway_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    atomic_torch_save({'w': torch.zeros(1000)}, path)
    old = path.read_bytes()
    monkeypatch.setattr(torch, 'save', _half_then_raise)
    with pytest.raises(OSError, match='midway'):
        atomic_torch_save({'w': torch.ones(1000)}, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ['ckpt.pth']  # no partial or temporary file left


def test_atomic_torch_save_failure_without_old_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, 'save', _half_then_raise)
    with pytest.raises(OSError):
        atomic_torch_save({'w': torch.ones(10)}, tmp_path / 'new.pth')
    assert os.listdir(tmp_path) == []


def test_atomic_write_text_and_permissions(tmp_path):
    path = tmp_path / 'a' / 'log.txt'
    atomic_write_text(path, 'héllo\n')
    atomic_write_text(path, 'second\n')
    assert path.read_text(encoding='utf-8') == 'second\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not mkstemp's 0o600


# ---------------------------------------------------------------- AtomicSaveMixin on a BasicSR model

def _opt(tmp_path, sub):
    return {'num_gpu': 0, 'is_train': True, 'dist': False,
            'path': {'models': str(tmp_path / sub / 'models'), 'training_states': str(tmp_path / sub / 'states')}}


def _models(tmp_path):
    from basicsr.models.base_model import BaseModel
    from basicsr.models.lr_scheduler import MultiStepRestartLR

    class Plain(BaseModel):
        pass

    class Atomic(AtomicSaveMixin, BaseModel):
        pass

    torch.manual_seed(0)
    net_g = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1))
    net_ema = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1))
    opt = torch.optim.Adam(net_g.parameters(), lr=1e-3)
    net_g(torch.rand(1, 3, 8, 8)).mean().backward()
    opt.step()
    sched = MultiStepRestartLR(opt, milestones=[2, 4], gamma=0.5)
    sched.step()
    built = []
    for cls, sub in ((Plain, 'plain'), (Atomic, 'atomic')):
        model = cls(_opt(tmp_path, sub))
        model.optimizers, model.schedulers = [opt], [sched]
        os.makedirs(model.opt['path']['models'])
        os.makedirs(model.opt['path']['training_states'])
        built.append(model)
    return built, net_g, net_ema


def _assert_same_tree(a, b):
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict))
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            _assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_tree(x, y)
    elif isinstance(a, torch.Tensor):
        assert a.device.type == 'cpu' and torch.equal(a, b)
    else:
        assert a == b


def test_mixin_save_network_same_file_and_layout_as_basicsr(tmp_path):
    (plain, atomic), net_g, net_ema = _models(tmp_path)
    for model in (plain, atomic):
        model.save_network([net_g, net_ema], 'net_g', 7, param_key=['params', 'params_ema'])
        model.save_network(net_g, 'net_g', -1)
    for name in ('net_g_7.pth', 'net_g_latest.pth'):
        ours = torch.load(os.path.join(atomic.opt['path']['models'], name), weights_only=True)
        theirs = torch.load(os.path.join(plain.opt['path']['models'], name), weights_only=True)
        _assert_same_tree(ours, theirs)
    assert sorted(os.listdir(atomic.opt['path']['models'])) == ['net_g_7.pth', 'net_g_latest.pth']


def test_mixin_strips_module_prefix_and_unwraps(tmp_path):
    (_, atomic), net_g, _ = _models(tmp_path)
    wrapped = nn.DataParallel(net_g)  # get_bare_model unwraps; keys must not start with 'module.'
    atomic.save_network(wrapped, 'net_g', 1)
    saved = torch.load(os.path.join(atomic.opt['path']['models'], 'net_g_1.pth'), weights_only=True)
    assert list(saved['params'].keys()) == list(net_g.state_dict().keys())

    class Prefixed(nn.Module):  # a state_dict whose keys carry a literal 'module.' prefix
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)

    atomic.save_network(Prefixed(), 'pref', 1)
    saved = torch.load(os.path.join(atomic.opt['path']['models'], 'pref_1.pth'), weights_only=True)
    assert sorted(saved['params'].keys()) == ['bias', 'weight']
    with pytest.raises(ValueError, match='param_key'):
        atomic.save_network([net_g, net_g], 'x', 1, param_key='params')


def test_mixin_training_state_same_as_basicsr_and_resumes_on_cpu(tmp_path):
    (plain, atomic), net_g, _ = _models(tmp_path)
    for model in (plain, atomic):
        model.save_training_state(epoch=3, current_iter=12)
        model.save_training_state(epoch=3, current_iter=-1)  # BasicSR writes nothing for -1
    ours_path = os.path.join(atomic.opt['path']['training_states'], '12.state')
    assert os.listdir(atomic.opt['path']['training_states']) == ['12.state']
    ours = torch.load(ours_path, map_location='cpu', weights_only=True)  # as tta_sr.utils.launch loads it
    theirs = torch.load(os.path.join(plain.opt['path']['training_states'], '12.state'), map_location='cpu',
                        weights_only=True)
    _assert_same_tree(ours, theirs)
    assert ours['epoch'] == 3 and ours['iter'] == 12

    # resume into a fresh optimizer/scheduler pair on CPU (BaseModel.resume_training, inherited)
    from basicsr.models.lr_scheduler import MultiStepRestartLR
    fresh_net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1))
    fresh_opt = torch.optim.Adam(fresh_net.parameters(), lr=1e-3)
    fresh_sched = MultiStepRestartLR(fresh_opt, milestones=[2, 4], gamma=0.5)
    atomic.optimizers, atomic.schedulers = [fresh_opt], [fresh_sched]
    atomic.resume_training(ours)
    _assert_same_tree(fresh_opt.state_dict(), plain.optimizers[0].state_dict())
    assert fresh_sched.state_dict() == plain.schedulers[0].state_dict()
    assert all(s['exp_avg'].device.type == 'cpu' for s in fresh_opt.state.values())


def test_mixin_failed_save_warns_and_keeps_previous_checkpoint(tmp_path, monkeypatch):
    (_, atomic), net_g, _ = _models(tmp_path)
    atomic.save_network(net_g, 'net_g', -1)
    path = os.path.join(atomic.opt['path']['models'], 'net_g_latest.pth')
    old = open(path, 'rb').read()
    monkeypatch.setattr(torch, 'save', _half_then_raise)
    monkeypatch.setattr(time, 'sleep', lambda s: None)
    from basicsr.utils import get_root_logger
    messages = []
    handler = __import__('logging').Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    get_root_logger().addHandler(handler)
    try:
        with torch.no_grad():
            for p in net_g.parameters():
                p.add_(1.0)
        atomic.save_network(net_g, 'net_g', -1)  # BasicSR's policy: warn, do not crash training
    finally:
        get_root_logger().removeHandler(handler)
    assert open(path, 'rb').read() == old
    assert os.listdir(atomic.opt['path']['models']) == ['net_g_latest.pth']
    assert sum('remaining retry times' in m for m in messages) == 3
    assert any('Still cannot save' in m and 'net_g_latest.pth' in m for m in messages)
