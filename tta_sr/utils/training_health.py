"""Keep a training or adaptation run alive through NaN/inf losses and gradients.

Use in a model's ``optimize_parameters`` (BasicSR calls it with ``current_iter``)::

    self.health = LossHealthGuard.from_opt(self.opt)            # once, in init_training_settings
    ...
    self.optimizer_g.zero_grad()
    l_total = maybe_inject_nan(l_total, current_iter, self.opt)  # test hook, no-op unless configured
    l_total.backward()
    if not self.health.is_finite(l_total, self.net_g):
        self.health.recover(self.net_g, self.optimizers, current_iter, schedulers=self.schedulers)
        return
    clip_grad_norm(self.net_g.parameters(), self.opt['train'].get('grad_clip'))
    self.optimizer_g.step()
    self.health.snapshot(self.net_g, self.optimizers, current_iter)

Options (all optional) under ``train.loss_health``: ``snapshot_every`` (good steps between two
last-good copies, default 50), ``lr_decay_on_nan`` (factor applied to every learning rate on each
recovery, default 0.5), ``max_consecutive`` (recoveries allowed in a row before a ``RuntimeError``,
default 5), ``sync_across_ranks`` (default true). ``train.debug_inject_nan_iter`` (an int or a list)
makes ``maybe_inject_nan`` turn the loss into NaN at those iterations.
"""
import copy
import math
from numbers import Number

import torch
from torch import nn

from tta_sr.utils.log import basicsr_logger


def _cpu_copy(obj):
    """Deep copy of a (nested) state dict with every tensor copied to CPU (never aliased)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to('cpu', copy=True)
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) is not dict else {}
        for k, v in obj.items():
            out[k] = _cpu_copy(v)
        if hasattr(obj, '_metadata'):
            out._metadata = copy.deepcopy(obj._metadata)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _named_params(params):
    """``(name, tensor)`` pairs from an ``nn.Module``, a list of modules, or an iterable of tensors."""
    if isinstance(params, nn.Module):
        return list(params.named_parameters())
    items = list(params) if params is not None else []
    if items and all(isinstance(p, nn.Module) for p in items):
        return [(f'{i}.{n}', p) for i, m in enumerate(items) for n, p in m.named_parameters()]
    return [(f'param[{i}]', p) for i, p in enumerate(items)]


class LossHealthGuard:
    """Detect non-finite losses/gradients, roll back to the last good state and lower the learning rate.

    Args:
        snapshot_every (int): ``snapshot`` copies the state on its first call and then every
            ``snapshot_every``-th consecutive good step. Default: 50.
        lr_decay_on_nan (float): each ``recover`` multiplies every learning rate (``lr`` and
            ``initial_lr`` of each param group, and ``base_lrs`` of the schedulers passed) by this; the
            decay accumulates over recoveries. Default: 0.5.
        max_consecutive (int): ``recover`` may run this many times in a row; the next consecutive failure
            raises ``RuntimeError``. A successful ``snapshot`` call resets the count. Default: 5.
        sync_across_ranks (bool): in a distributed run, a step is healthy only if it is healthy on every
            rank (one all-reduce of a flag), so all ranks recover together. Default: True.

    The last-good copy holds the networks' and optimizers' state dicts on CPU (for Adam about three
    times the parameter memory).
    """

    def __init__(self, snapshot_every=50, lr_decay_on_nan=0.5, max_consecutive=5, sync_across_ranks=True):
        if int(snapshot_every) < 1:
            raise ValueError(f'snapshot_every must be >= 1, got {snapshot_every!r}')
        if not 0 < float(lr_decay_on_nan) <= 1:
            raise ValueError(f'lr_decay_on_nan must be in (0, 1], got {lr_decay_on_nan!r}')
        if int(max_consecutive) < 0:
            raise ValueError(f'max_consecutive must be >= 0, got {max_consecutive!r}')
        self.snapshot_every = int(snapshot_every)
        self.lr_decay_on_nan = float(lr_decay_on_nan)
        self.max_consecutive = int(max_consecutive)
        self.sync_across_ranks = bool(sync_across_ranks)
        self.consecutive_failures = 0
        self.total_recoveries = 0
        self.last_problem = None
        self._good_steps = 0
        self._snapshot = None  # {'iter', 'nets': [state_dict], 'optimizers': [state_dict]}

    @classmethod
    def from_opt(cls, opt):
        """Build from ``opt['train']['loss_health']`` (a full BasicSR option dict) or from that sub-dict."""
        sub = opt.get('train', {}).get('loss_health', None) if 'train' in opt else opt
        return cls(**(sub or {}))

    @property
    def snapshot_iter(self):
        """Iteration of the last-good copy, or ``None`` before the first ``snapshot``."""
        return None if self._snapshot is None else self._snapshot['iter']

    # ------------------------------------------------------------------ detection
    def is_finite(self, loss, params):
        """True when ``loss`` and every existing gradient of ``params`` are finite.

        Args:
            loss: a tensor, a number, or a list/tuple/dict of them.
            params: an ``nn.Module``, a list of modules, or an iterable of parameters
                (gradients that are ``None`` are skipped).
        Sets ``self.last_problem`` to a description of the first non-finite value (or ``None``).
        """
        losses = list(loss.values()) if isinstance(loss, dict) else _as_list(loss)
        problem = None
        for i, value in enumerate(losses):
            finite = bool(torch.isfinite(value.detach()).all()) if isinstance(value, torch.Tensor) else \
                math.isfinite(float(value)) if isinstance(value, Number) else True
            if not finite:
                problem = 'loss is NaN/inf' if len(losses) == 1 else f'loss term {i} is NaN/inf'
                break
        device = None
        if problem is None:
            named = [(n, p.grad) for n, p in _named_params(params) if p.grad is not None]
            if named:
                device = named[0][1].device
                flags = torch.stack([torch.isfinite(g.detach()).all().to(device) for _, g in named])
                if not bool(flags.all()):
                    bad = [n for (n, _), ok in zip(named, flags.tolist()) if not ok]
                    problem = f'non-finite gradient in {len(bad)} tensor(s), first {bad[0]}'
        if self.sync_across_ranks:
            problem = self._sync(problem, device, losses)
        self.last_problem = problem
        return problem is None

    @staticmethod
    def _sync(problem, device, losses):
        """All-reduce the health flag so that every rank takes the same decision."""
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return problem
        if device is None:
            tensors = [v for v in losses if isinstance(v, torch.Tensor)]
            device = tensors[0].device if tensors else torch.device('cpu')
        if dist.get_backend() == 'nccl' and device.type != 'cuda':
            device = torch.device('cuda', torch.cuda.current_device())
        flag = torch.tensor([0 if problem else 1], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        if problem is None and int(flag.item()) == 0:
            return 'non-finite loss or gradient on another rank'
        return problem

    # ------------------------------------------------------------------ last-good state
    def snapshot(self, net, optimizers, current_iter=None):
        """Record a good step; copy the state on the first call and every ``snapshot_every``-th good step.

        Args:
            net: an ``nn.Module`` or a list of them (e.g. ``[net_g, net_d]``).
            optimizers: an optimizer or a list of them.
            current_iter (int | None): stored for the log message of a later recovery.
        Returns:
            bool: whether a copy was taken now.
        """
        self.consecutive_failures = 0
        take = self._snapshot is None or self._good_steps % self.snapshot_every == 0
        self._good_steps += 1
        if take:
            self._snapshot = {
                'iter': current_iter,
                'nets': [_cpu_copy(n.state_dict()) for n in _as_list(net)],
                'optimizers': [_cpu_copy(o.state_dict()) for o in _as_list(optimizers)],
            }
        return take

    def recover(self, net, optimizers, current_iter=None, schedulers=None):
        """Roll back after a non-finite step: restore the last-good copy and scale learning rates down.

        Restores the networks' and optimizers' state dicts bitwise (when a copy exists), clears the
        gradients, multiplies the learning rates by ``lr_decay_on_nan`` (cumulatively across recoveries)
        and logs a warning on BasicSR's root logger. The rates after the call are the rates before it
        times ``lr_decay_on_nan`` (so a scheduler's progress since the snapshot is kept).

        Raises:
            RuntimeError: after more than ``max_consecutive`` recoveries in a row.
        """
        nets, opts, scheds = _as_list(net), _as_list(optimizers), _as_list(schedulers)
        self.consecutive_failures += 1
        reason = self.last_problem or 'non-finite loss or gradient'
        if self.consecutive_failures > self.max_consecutive:
            raise RuntimeError(
                f'training diverged: {reason} at iter {current_iter}, {self.consecutive_failures} failed steps in a '
                f'row (train.loss_health.max_consecutive = {self.max_consecutive}); the last good state is from '
                f'iter {self.snapshot_iter}. Lower the learning rate, enable train.grad_clip, or check the data '
                'and loss weights.')
        self.total_recoveries += 1
        current = [[{k: g[k] for k in ('lr', 'initial_lr') if k in g} for g in o.param_groups] for o in opts]
        if self._snapshot is not None:
            if len(nets) != len(self._snapshot['nets']) or len(opts) != len(self._snapshot['optimizers']):
                raise ValueError(f'recover: got {len(nets)} net(s) and {len(opts)} optimizer(s), but the snapshot '
                                 f'holds {len(self._snapshot["nets"])} and {len(self._snapshot["optimizers"])}; '
                                 'pass the same objects to snapshot and recover')
            for n, state in zip(nets, self._snapshot['nets']):
                n.load_state_dict(state)  # copies into the parameters; the snapshot is not aliased
            for o, state in zip(opts, self._snapshot['optimizers']):
                o.load_state_dict(_cpu_copy(state))  # a fresh copy: load_state_dict may alias CPU tensors
        for o, groups in zip(opts, current):
            o.zero_grad(set_to_none=True)
            for group, rates in zip(o.param_groups, groups):
                for key, value in rates.items():  # current rates (not the snapshot's) x decay
                    group[key] = value * self.lr_decay_on_nan
        for s in scheds:
            if hasattr(s, 'base_lrs'):
                s.base_lrs = [lr * self.lr_decay_on_nan for lr in s.base_lrs]
        lrs = [g['lr'] for o in opts for g in o.param_groups]
        restored = f'restored the state of iter {self.snapshot_iter}' if self._snapshot is not None else \
            'no good state recorded yet, weights kept (the step was skipped)'
        basicsr_logger().warning(
            f'LossHealthGuard: {reason} at iter {current_iter}; skipped the step, {restored}, learning rates '
            f'x{self.lr_decay_on_nan} -> {["%.3g" % lr for lr in lrs]} '
            f'(failure {self.consecutive_failures}/{self.max_consecutive} in a row).')


def clip_grad_norm(params, max_norm, norm_type=2.0):
    """Clip gradients to ``max_norm`` and return the total norm before clipping (float).

    ``max_norm`` of ``None``, 0 or a negative number disables clipping (returns ``None``), so the option
    ``train.grad_clip`` can be passed straight through. Non-finite norms are not an error here: check
    with ``LossHealthGuard.is_finite`` before stepping.
    """
    if max_norm is None or float(max_norm) <= 0:
        return None
    total = torch.nn.utils.clip_grad_norm_(params, float(max_norm), norm_type=norm_type, error_if_nonfinite=False)
    return float(total)


def maybe_inject_nan(loss, current_iter, opt):
    """Test hook: return ``loss * NaN`` when ``current_iter`` is in ``opt['train']['debug_inject_nan_iter']``.

    The option is an int or a list of ints; absent or ``None`` leaves ``loss`` untouched (the same object).
    Multiplying keeps the autograd graph, so the backward pass yields NaN gradients as a real blow-up would.
    """
    train_opt = (opt or {}).get('train') or {}
    inject = train_opt.get('debug_inject_nan_iter')
    if inject is None or current_iter not in _as_list(inject):
        return loss
    basicsr_logger().warning(f'debug_inject_nan_iter: injecting NaN into the loss at iter {current_iter}')
    return loss * float('nan')
