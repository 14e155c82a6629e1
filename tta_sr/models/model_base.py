"""What every tta_sr model changes in BasicSR's BaseModel, in one mixin.

- ``model_to_device``: DDP without ``device_ids`` on CPU (gloo), as on GPU otherwise.
- ``load_network``: ``path.pretrain_network_*`` may be a manifest name (``RealESRGAN_x4plus``) or a
  file; the file is read with ``weights_only=True`` and a mismatch raises an error naming the file.
- checkpoints and training states are written atomically (``AtomicSaveMixin``).
- ``guarded_step``: a NaN/Inf loss or gradient skips the step and rolls back (``LossHealthGuard``); a taken
  step ends with ``after_optimizer_step`` (a hook, e.g. to restore preserved parameters).
- deterministic resume (``tta_sr.utils.resume``): training states also hold every rank's RNG states
  (``rng_states``), restored by ``resume_training``; validation runs with the RNGs forked, so it does not
  change the training's random stream.
- distributed training: trained modules that are not DDP-wrapped (stage 1's FAR heads T_a, T_m) start from
  rank 0's weights and have their gradients averaged over the ranks in ``guarded_step``, as DDP does for
  ``net_g``, so every rank holds the same weights.
- distributed validation runs on every rank (all ranks then take the same early-stopping decision, and a
  DDP forward's buffer broadcast has every rank present); only rank 0 logs.
"""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from tta_sr.utils import resume
from tta_sr.utils.atomic import AtomicSaveMixin, _save_with_retry
from tta_sr.utils.distributed import wrap_model_for_device
from tta_sr.utils.training_health import LossHealthGuard, clip_grad_norm, maybe_inject_nan
from tta_sr.weights.resolver import load_state_dict, resolve_weights


def load_weights_into(net, name_or_path, param_key=None, strict=True):
    """Load a manifest name or a checkpoint file into ``net``; errors name the file and the arch."""
    path = resolve_weights(name_or_path)
    state = load_state_dict(path, param_key=param_key)
    state = {k[7:] if k.startswith('module.') else k: v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        raise RuntimeError(f'weights in {path} (param_key {param_key!r}) do not fit {type(net).__name__}: '
                           f'check network options (arch, widths, scale) against that file.\n{err}') from err
    return path


def _world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _unwrapped(modules):
    """The modules of ``modules`` that DDP does not synchronise."""
    return [m for m in modules if not isinstance(m, DistributedDataParallel)]


def broadcast_from_rank0(modules):
    """Copy rank 0's parameters and buffers of ``modules`` to every rank (a collective; no-op unless distributed)."""
    if _world_size() < 2:
        return
    with torch.no_grad():
        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)


def average_gradients(modules):
    """Average the gradients of the trainable parameters of ``modules`` over the ranks, as DDP does.

    A rank without a gradient for a parameter contributes zeros; a parameter without a gradient on every
    rank keeps ``grad = None`` (so optimizers skip it, as without distribution). One all-reduce.
    """
    world_size = _world_size()
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if world_size < 2 or not params:
        return
    grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
             for p in params]
    present = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype, device=grads[0].device)
    flat = torch.cat(grads + [present])
    dist.all_reduce(flat)
    offset = 0
    for p, count in zip(params, flat[-len(params):].tolist()):
        n = p.numel()
        p.grad = (flat[offset:offset + n] / world_size).view_as(p).clone() if count > 0 else None
        offset += n


def average_float_buffers(modules):
    """Average the floating-point buffers of ``modules`` (e.g. BatchNorm running statistics) over the ranks.

    Each rank updates them from its own batch; averaging after every step keeps all ranks, and so every
    rank's checkpoint, identical (DDP only broadcasts rank 0's buffers at the next forward). One all-reduce.
    """
    world_size = _world_size()
    buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
    if world_size < 2 or not buffers:
        return
    flat = torch.cat([b.reshape(-1) for b in buffers])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for b in buffers:
        b.data.copy_(flat[offset:offset + b.numel()].view_as(b))
        offset += b.numel()


class TTASRModelMixin(AtomicSaveMixin):
    """Put before the BasicSR model class: ``class M(TTASRModelMixin, SRModel)``."""

    def __init__(self, opt):
        super().__init__(opt)
        if self.is_train:
            broadcast_from_rank0(_unwrapped(self.trained_modules()))

    def model_to_device(self, net):
        return wrap_model_for_device(net, self.device, self.opt)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        net = self.get_bare_model(net)
        path = load_weights_into(net, load_path, param_key=param_key, strict=strict)
        from basicsr.utils import get_root_logger
        get_root_logger().info(f'Loaded {type(net).__name__} weights from {path} [{param_key}].')

    def save_training_state(self, epoch, current_iter):
        """BasicSR's ``{current_iter}.state`` (atomic, rank 0) plus ``rng_states``: one entry per rank.

        A collective in a distributed run (the RNG states are gathered): every rank calls it, as BasicSR's
        ``save`` does.
        """
        from basicsr.utils.dist_util import get_dist_info
        if current_iter == -1:
            return
        rng_states = resume.gather_rng_states()
        if get_dist_info()[0] != 0:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers],
                 'rng_states': rng_states, 'model_state': self.extra_training_state()}
        save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        _save_with_retry(state, save_path, 'training state')

    def resume_training(self, resume_state):
        """Optimizers and schedulers (BasicSR), then this rank's RNG states, now and when the resumed epoch starts."""
        super().resume_training(resume_state)
        from basicsr.utils import get_root_logger
        from basicsr.utils.dist_util import get_dist_info
        self.load_extra_training_state(resume_state.get('model_state') or {})
        rng = resume.rng_state_of_rank(resume_state.get('rng_states'), get_dist_info()[0])
        if rng is None:
            get_root_logger().warning('The training state has no rng_states (written before tta_sr saved them): '
                                      'the resumed run continues with fresh random streams, not bitwise the same.')
            return
        resume.restore_rng_state(rng)
        resume.hand_rng_to_sampler(rng)

    def model_ema(self, decay=0.999):
        """BasicSR's parameter EMA, then the buffers (e.g. BatchNorm running statistics) copied as they are:
        BasicSR averages parameters only, which would leave the EMA net's buffers at their initial values."""
        super().model_ema(decay)
        buffers = dict(self.get_bare_model(self.net_g).named_buffers())
        for name, buffer in self.net_g_ema.named_buffers():
            buffer.data.copy_(buffers[name].data)

    def extra_training_state(self):
        """Model state beyond optimizers and schedulers to keep in the ``.state`` file (tensors, numbers, lists)."""
        return {}

    def load_extra_training_state(self, state):
        """Restore what :meth:`extra_training_state` saved."""

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """BasicSR's validation with the RNGs forked: the training's random stream is the same with or without it."""
        with resume.preserved_rng_state():
            super().validation(dataloader, current_iter, tb_logger, save_img)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Every rank validates (BasicSR's SRModel validates on rank 0 only), see the module docstring."""
        self.nondist_validation(dataloader, current_iter, tb_logger if self.opt['rank'] == 0 else None, save_img)

    def trained_modules(self):
        """The modules whose parameters the optimizer updates (snapshotted by the health guard)."""
        return [self.net_g]

    def guarded_step(self, loss, current_iter):
        """backward, optional clipping (``train.grad_clip``), then step only if loss and gradients are finite.

        A non-finite step is skipped; ``LossHealthGuard`` restores the last good state and lowers the
        learning rates (``train.loss_health``). Returns whether the step was taken.
        """
        if not hasattr(self, 'health'):
            self.health = LossHealthGuard.from_opt(self.opt)
        loss = maybe_inject_nan(loss, current_iter, self.opt)
        loss.backward()
        average_gradients(_unwrapped(self.trained_modules()))
        params = [p for m in self.trained_modules() for p in m.parameters() if p.requires_grad]
        clip_grad_norm(params, self.opt['train'].get('grad_clip'))
        if not self.health.is_finite(loss, params):
            self.health.recover(self.trained_modules(), self.optimizers, current_iter, self.schedulers)
            return False
        self.optimizer_g.step()
        self.after_optimizer_step()
        average_float_buffers([self.get_bare_model(m) for m in self.trained_modules()])
        self.health.snapshot(self.trained_modules(), self.optimizers, current_iter)
        return True

    def after_optimizer_step(self):
        """Called by ``guarded_step`` right after each optimizer step (e.g. Fisher restoration of parameters)."""
