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
