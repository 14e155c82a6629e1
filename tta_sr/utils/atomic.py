"""Atomic file writes: a reader (or a resumed run) sees either the old file or the complete new one.

Every writer here follows the same recipe:

1. write into a temporary file in the *same directory* as the target (so ``os.replace`` is a rename
   on one file system, which POSIX and Windows make atomic),
2. ``flush`` + ``os.fsync`` the temporary file,
3. ``os.replace(tmp, target)``, then fsync the directory (best effort) so the rename itself is durable.

If anything raises before step 3, the temporary file is removed and the target is left untouched.

``AtomicSaveMixin`` applies this to BasicSR's checkpoints (``models/*.pth`` and
``training_states/*.state``) without patching BasicSR globally; put it *before* the BasicSR base
class: ``class MyModel(AtomicSaveMixin, SRModel)``.
"""
import os
import tempfile

import torch

from tta_sr.utils.log import basicsr_logger

# Permission bits a plainly created file would get (mkstemp creates 0o600 files).
_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_dir(folder):
    """fsync a directory so a rename inside it survives a crash; silently skipped where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_with(path, write_fn, mode='wb'):
    """Create ``path`` atomically: ``write_fn(f)`` writes into a temporary file object opened with ``mode``.

    Parent folders are created. If ``write_fn`` raises, the temporary file is removed, ``path`` keeps
    its old content (or stays absent) and the exception propagates.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return path


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; return ``path``."""
    return atomic_write_with(path, lambda f: f.write(data), mode='wb')


def atomic_write_text(path, text, encoding='utf-8'):
    """Write ``text`` (str) to ``path`` atomically; return ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj, path):
    """``torch.save(obj, path)`` atomically: a crash or an exception never leaves a truncated checkpoint."""
    return atomic_write_with(path, lambda f: torch.save(obj, f), mode='wb')


def _save_with_retry(obj, path, what, retries=3, wait_s=1.0):
    """BasicSR's retry policy (3 tries, 1 s apart, then a warning, no crash) around an atomic save.

    Returns True when saved. Whatever happens, ``path`` holds either its previous complete content or
    the new one.
    """
    import time
    logger = basicsr_logger()
    for attempt in range(retries):
        try:
            atomic_torch_save(obj, path)
            return True
        except Exception as err:  # noqa: BLE001  (disk full, NFS hiccup, pickling error: keep training)
            logger.warning(f'Save {what} error: {err}, remaining retry times: {retries - attempt - 1}')
            if attempt + 1 < retries:
                time.sleep(wait_s)
    logger.warning(f'Still cannot save {path}; the previous file (if any) is left intact. Training continues.')
    return False


class AtomicSaveMixin:
    """Atomic checkpoints for BasicSR models: ``class MyModel(AtomicSaveMixin, SRModel)``.

    Overrides ``BaseModel.save_network`` and ``BaseModel.save_training_state`` only. File names and
    layouts are BasicSR 1.4.2's exactly:

    - ``{path.models}/{net_label}_{current_iter}.pth`` (``current_iter == -1`` -> ``latest``) holding
      ``{param_key: state_dict}`` for each (net, param_key) pair, tensors on CPU, ``module.`` prefixes
      stripped;
    - ``{path.training_states}/{current_iter}.state`` holding
      ``{'epoch', 'iter', 'optimizers': [state_dict...], 'schedulers': [state_dict...]}``
      (nothing is written for ``current_iter == -1``).

    Both are written through ``atomic_torch_save`` on the master process only, with BasicSR's
    retry-then-warn policy. ``resume_training`` is inherited unchanged: ``Optimizer.load_state_dict``
    moves state tensors to each parameter's device, so a state loaded with ``map_location='cpu'``
    resumes on CPU (and on GPU) as is.
    """

    def save_network(self, net, net_label, current_iter, param_key='params'):
        """Save ``net`` (``nn.Module`` or list) under ``param_key`` (``str`` or list of the same length)."""
        from basicsr.utils.dist_util import get_dist_info
        if get_dist_info()[0] != 0:
            return
        if current_iter == -1:
            current_iter = 'latest'
        save_path = os.path.join(self.opt['path']['models'], f'{net_label}_{current_iter}.pth')
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'save_network: {len(nets)} network(s) but {len(keys)} param_key(s); '
                             'pass one param_key per network')
        save_dict = {}
        for net_, key_ in zip(nets, keys):
            state_dict = self.get_bare_model(net_).state_dict()
            clean = type(state_dict)()
            for name, tensor in state_dict.items():
                clean[name[7:] if name.startswith('module.') else name] = tensor.cpu()
            if hasattr(state_dict, '_metadata'):
                clean._metadata = state_dict._metadata
            save_dict[key_] = clean
        _save_with_retry(save_dict, save_path, 'model')

    def save_training_state(self, epoch, current_iter):
        """Save epoch, iteration, optimizer and scheduler states to ``{current_iter}.state``."""
        from basicsr.utils.dist_util import get_dist_info
        if get_dist_info()[0] != 0 or current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [], 'schedulers': []}
        for optimizer in self.optimizers:
            state['optimizers'].append(optimizer.state_dict())
        for scheduler in self.schedulers:
            state['schedulers'].append(scheduler.state_dict())
        save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        _save_with_retry(state, save_path, 'training state')
