"""Tests for tta_sr/utils/training_health.py: NaN detection, bitwise roll-back, lr decay, give-up rule."""

import pytest
import torch
from torch import nn

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.training_health import LossHealthGuard, clip_grad_norm, maybe_inject_nan




def _setup(lr=1e-2):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    return net, opt


def _loss(net, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=g)
    return (net(x) - x.sum(1, keepdim=True)).pow(2).mean()


def _train_step(net, opt, guard, it, train_opt=None, schedulers=()):
    """One guarded step, as a model's optimize_parameters would do it; returns True when stepped."""
    opt.zero_grad()
    loss = maybe_inject_nan(_loss(net, it), it, {'train': train_opt or {}})
    loss.backward()
    if not guard.is_finite(loss, net):
        guard.recover(net, [opt], it, schedulers=list(schedulers))
        return False
    opt.step()
    guard.snapshot(net, [opt], it)
    return True


def _state(net, opt):
    return ({k: v.clone() for k, v in net.state_dict().items()},
            {i: {k: v.clone() for k, v in s.items()} for i, s in opt.state_dict()['state'].items()})


def _assert_bitwise(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _assert_bitwise(a[k], b[k])
        else:
            assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------- detection

def test_is_finite_detects_nan_loss_and_nan_or_inf_grad():
    net, _ = _setup()
    guard = LossHealthGuard()
    loss = _loss(net, 0)
    loss.backward()
    assert guard.is_finite(loss, net) and guard.last_problem is None
    assert not guard.is_finite(torch.tensor(float('nan')), net)
    assert 'loss' in guard.last_problem
    assert not guard.is_finite({'l_pix': torch.tensor(1.0), 'l_far': torch.tensor(float('inf'))}, net)
    assert 'loss term 1' in guard.last_problem
    assert not guard.is_finite(float('nan'), net)

    net[2].weight.grad[0, 3] = float('nan')
    assert not guard.is_finite(loss, net)
    assert 'gradient' in guard.last_problem and '2.weight' in guard.last_problem
    net[2].weight.grad[0, 3] = float('inf')
    assert not guard.is_finite(loss, list(net.parameters()))  # a plain iterable of parameters works too


def test_is_finite_skips_missing_grads():
    net, _ = _setup()
    guard = LossHealthGuard()
    assert guard.is_finite(torch.tensor(0.5), net)  # no backward yet: every grad is None


def test_nan_loss_gives_nan_grads_through_injection():
    net, _ = _setup()
    loss = maybe_inject_nan(_loss(net, 0), 5, {'train': {'debug_inject_nan_iter': 5}})
    loss.backward()
    assert torch.isnan(loss) and torch.isnan(net[0].weight.grad).all()
    guard = LossHealthGuard()
    assert not guard.is_finite(torch.tensor(1.0), net)  # caught by the gradient check alone


def test_maybe_inject_nan_only_at_configured_iters():
    loss = torch.tensor(2.0)
    assert maybe_inject_nan(loss, 5, {'train': {}}) is loss
    assert maybe_inject_nan(loss, 5, {}) is loss
    assert maybe_inject_nan(loss, 4, {'train': {'debug_inject_nan_iter': 5}}) is loss
    assert torch.isnan(maybe_inject_nan(loss, 5, {'train': {'debug_inject_nan_iter': 5}}))
    assert torch.isnan(maybe_inject_nan(loss, 9, {'train': {'debug_inject_nan_iter': [3, 9]}}))


# ---------------------------------------------------------------- snapshot / recover

def test_snapshot_every_n_good_steps():
    net, opt = _setup()
    guard = LossHealthGuard(snapshot_every=3)
    taken = [guard.snapshot(net, opt, it) for it in range(1, 8)]
    assert taken == [True, False, False, True, False, False, True]
    assert guard.snapshot_iter == 7


def test_recover_restores_snapshot_bitwise_and_lowers_lr(warnings_log):
    net, opt = _setup(lr=1e-2)
    guard = LossHealthGuard(snapshot_every=4, lr_decay_on_nan=0.5)
    train = {'debug_inject_nan_iter': [7, 8]}
    expected = None
    for it in range(1, 7):
        assert _train_step(net, opt, guard, it, train)
        if it == 5:  # good steps 1..6 -> copies after iters 1 and 5
            expected = _state(net, opt)
    assert guard.snapshot_iter == 5
    assert not torch.equal(net[0].weight, expected[0]['0.weight'])  # iter 6 moved the weights

    assert not _train_step(net, opt, guard, 7, train)  # NaN injected -> rolled back
    _assert_bitwise(_state(net, opt)[0], expected[0])
    _assert_bitwise(_state(net, opt)[1], expected[1])
    assert opt.param_groups[0]['lr'] == pytest.approx(5e-3)
    assert all(p.grad is None for p in net.parameters())
    assert any('iter 7' in m and 'iter 5' in m and 'x0.5' in m for m in warnings_log)

    assert not _train_step(net, opt, guard, 8, train)  # second failure in a row: decay accumulates
    _assert_bitwise(_state(net, opt)[0], expected[0])  # the snapshot was not aliased by Adam's in-place updates
    assert opt.param_groups[0]['lr'] == pytest.approx(2.5e-3)
    assert guard.consecutive_failures == 2

    assert _train_step(net, opt, guard, 9, train)  # training goes on from the restored state
    assert guard.consecutive_failures == 0 and guard.total_recoveries == 2
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_recover_after_optimizer_step_then_more_steps_restores_same_snapshot():
    net, opt = _setup()
    guard = LossHealthGuard(snapshot_every=100)
    assert _train_step(net, opt, guard, 1)
    expected = _state(net, opt)
    for it in range(2, 5):
        assert _train_step(net, opt, guard, it)
    guard.recover(net, opt, 5)
    _assert_bitwise(_state(net, opt)[0], expected[0])
    _assert_bitwise(_state(net, opt)[1], expected[1])
    for it in range(6, 9):
        assert _train_step(net, opt, guard, it)
    guard.recover(net, opt, 9)
    _assert_bitwise(_state(net, opt)[0], expected[0])


def test_recover_scales_initial_lr_and_scheduler_base_lrs():
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR
    net, opt = _setup(lr=1e-2)
    sched = CosineAnnealingRestartLR(opt, periods=[10], restart_weights=[1], eta_min=0)
    guard = LossHealthGuard(lr_decay_on_nan=0.1)
    assert _train_step(net, opt, guard, 1)
    sched.step()
    lr_before = opt.param_groups[0]['lr']
    assert not _train_step(net, opt, guard, 2, {'debug_inject_nan_iter': 2}, schedulers=[sched])
    assert opt.param_groups[0]['lr'] == pytest.approx(lr_before * 0.1)
    assert opt.param_groups[0]['initial_lr'] == pytest.approx(1e-3)
    assert sched.base_lrs == [pytest.approx(1e-3)]
    sched.step()  # the scheduler recomputes from base_lrs: the decay is not undone
    assert opt.param_groups[0]['lr'] < 1e-3


def test_recover_without_snapshot_keeps_weights_and_decays_lr(warnings_log):
    net, opt = _setup(lr=1e-2)
    before = _state(net, opt)[0]
    guard = LossHealthGuard()
    assert not _train_step(net, opt, guard, 1, {'debug_inject_nan_iter': 1})
    _assert_bitwise(_state(net, opt)[0], before)
    assert opt.param_groups[0]['lr'] == pytest.approx(5e-3)
    assert any('no good state recorded yet' in m for m in warnings_log)


def test_gives_up_after_max_consecutive_failures():
    net, opt = _setup()
    guard = LossHealthGuard(max_consecutive=2)
    assert _train_step(net, opt, guard, 1)
    train = {'debug_inject_nan_iter': [2, 3, 4]}
    assert not _train_step(net, opt, guard, 2, train)
    assert not _train_step(net, opt, guard, 3, train)
    with pytest.raises(RuntimeError, match=r'diverged.*iter 4.*3 failed steps in a row.*max_consecutive = 2'):
        _train_step(net, opt, guard, 4, train)


def test_from_opt_and_validation():
    guard = LossHealthGuard.from_opt({'train': {'loss_health': {'snapshot_every': 7, 'lr_decay_on_nan': 0.25,
                                                                'max_consecutive': 1}}})
    assert (guard.snapshot_every, guard.lr_decay_on_nan, guard.max_consecutive) == (7, 0.25, 1)
    assert LossHealthGuard.from_opt({'train': {}}).snapshot_every == 50
    with pytest.raises(ValueError, match='lr_decay_on_nan'):
        LossHealthGuard(lr_decay_on_nan=0)
    with pytest.raises(ValueError, match='snapshot_every'):
        LossHealthGuard(snapshot_every=0)


def test_recover_with_two_nets_and_two_optimizers():
    torch.manual_seed(1)
    net_g, net_d = nn.Linear(3, 3), nn.Linear(3, 1)
    opt_g, opt_d = torch.optim.Adam(net_g.parameters(), 1e-2), torch.optim.SGD(net_d.parameters(), 1e-1, momentum=0.9)
    guard = LossHealthGuard()
    for o, n in ((opt_g, net_g), (opt_d, net_d)):
        n(torch.ones(2, 3)).sum().backward()
        o.step()
    guard.snapshot([net_g, net_d], [opt_g, opt_d], 1)
    ref_g, ref_d = _state(net_g, opt_g), _state(net_d, opt_d)
    for o, n in ((opt_g, net_g), (opt_d, net_d)):
        n(torch.ones(2, 3)).sum().backward()
        o.step()
    guard.recover([net_g, net_d], [opt_g, opt_d], 2)
    _assert_bitwise(_state(net_g, opt_g)[0], ref_g[0])
    _assert_bitwise(_state(net_d, opt_d)[1], ref_d[1])
    with pytest.raises(ValueError, match='same objects'):
        guard.recover(net_g, [opt_g, opt_d], 3)


# ---------------------------------------------------------------- clipping

def test_clip_grad_norm_wrapper():
    net, _ = _setup()
    (_loss(net, 0) * 1000).backward()
    assert clip_grad_norm(net.parameters(), None) is None
    assert clip_grad_norm(net.parameters(), 0) is None
    total = clip_grad_norm(net.parameters(), 1.0)
    assert total > 1.0
    after = torch.norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    assert after == pytest.approx(1.0, rel=1e-4)
