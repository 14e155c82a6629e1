"""What every tta_sr model changes in BasicSR's BaseModel, in one mixin.

- ``model_to_device``: DDP without ``device_ids`` on CPU (gloo), as on GPU otherwise.
- ``load_network``: ``path.pretrain_network_*`` may be a manifest name (``RealESRGAN_x4plus``) or a
  file; the file is read with ``weights_only=True`` and a mismatch raises an error naming the file.
- checkpoints and training states are written atomically (``AtomicSaveMixin``).
- ``guarded_step``: a NaN/Inf loss or gradient skips the step and rolls back (``LossHealthGuard``).
"""
from tta_sr.utils.atomic import AtomicSaveMixin
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


class TTASRModelMixin(AtomicSaveMixin):
    """Put before the BasicSR model class: ``class M(TTASRModelMixin, SRModel)``."""

    def model_to_device(self, net):
        return wrap_model_for_device(net, self.device, self.opt)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        net = self.get_bare_model(net)
        path = load_weights_into(net, load_path, param_key=param_key, strict=strict)
        from basicsr.utils import get_root_logger
        get_root_logger().info(f'Loaded {type(net).__name__} weights from {path} [{param_key}].')

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
        params = [p for m in self.trained_modules() for p in m.parameters() if p.requires_grad]
        clip_grad_norm(params, self.opt['train'].get('grad_clip'))
        if not self.health.is_finite(loss, params):
            self.health.recover(self.trained_modules(), self.optimizers, current_iter, self.schedulers)
            return False
        self.optimizer_g.step()
        self.health.snapshot(self.trained_modules(), self.optimizers, current_iter)
        return True
