"""Deterministic resume for BasicSR 1.4.2's ``train_pipeline``: ``kill -9`` then ``--auto_resume`` continues
exactly where the last checkpoint was taken (same weights as an uninterrupted run of the same seed, up to
float round-off), with ``num_worker_per_gpu: 0``.

BasicSR alone gets two things wrong on resume: it restarts the interrupted epoch from its first batch,
and it restarts the Python ``random``, NumPy and torch generators from ``manual_seed`` (random crops and
flips use ``random``, the stage-1 degradation ``random``/NumPy/torch, the controller noise torch). The
mechanism here, in three pieces:

1. **RNG states in the training state.** ``TTASRModelMixin.save_training_state`` adds
   ``state['rng_states']``: one entry per rank (``rng_state_for_checkpoint``, gathered to rank 0 in a
   distributed run), each ``{'python': [version, [625 ints], gauss_next], 'numpy': {...},
   'torch': ByteTensor, 'cuda': [ByteTensor, ...]}`` -- lists, ints, floats and tensors only, so the file
   stays loadable with ``torch.load(weights_only=True)``.

2. **The sampler resumes mid-epoch.** ``install()`` rebinds ``basicsr.train.EnlargedSampler`` (the one
   name ``create_train_val_dataloader`` uses) to ``ResumableSampler``. ``load_resume_state_on_any_device``
   calls ``arm(opt, state)`` with the state's ``epoch`` e and ``iter`` i. ``train_pipeline`` counts epochs
   from 0 and every epoch yields exactly ``N = len(sampler) // B`` batches (``drop_last=True``;
   ``B = batch_size_per_gpu`` when distributed, ``batch_size_per_gpu * max(num_gpu, 1)`` otherwise),
   so iterations ``e*N + 1 .. (e+1)*N`` belong to epoch e and, at the checkpoint, ``k = i - e*N`` batches
   of epoch e were consumed (``0 < k <= N``). The sampler built next (train_pipeline builds the
   dataloaders after loading the state) claims that resume point; when ``set_epoch(e)`` is called for
   the resumed epoch, its next ``__iter__`` yields the epoch-e permutation (BasicSR's, seeded by e)
   without its first ``k * B`` indices. ``k == N`` gives an empty epoch: the loop moves on to e + 1.

3. **The RNG states are restored where the uninterrupted run stood.** ``resume_training`` restores this
   rank's states at once (``restore_rng_state``) and hands them to the armed sampler too, which sets them
   again at the start of that ``__iter__``, i.e. right before the first sample of the resumed epoch is
   loaded. The second restore undoes the draws BasicSR makes in between that an uninterrupted run does not
   make at that point: each ``iter(DataLoader)`` (the prefetcher's creation and its per-epoch reset)
   draws a base seed from torch's global generator. Validation runs with the generators forked
   (``preserved_rng_state``, see ``TTASRModelMixin.validation``), so whether a validation ran between
   the checkpoint and the kill does not matter.

Limits: with ``num_worker_per_gpu > 0`` (or ``prefetch_mode: cpu``) samples are drawn in worker processes
or threads whose generators are seeded per epoch by BasicSR's ``worker_init_fn``, not from the main
process's state, so a resumed epoch is not bitwise the uninterrupted one (the sampler still skips the
consumed samples). Not checkpointed either: ``LossHealthGuard``'s last-good copy and counters, stage 2's
early-stopping bookkeeping and loss curves, and the frozen networks (``FROZEN_NETWORKS``). A resume with a
different world size or batch size restores rank ``r % saved_ranks``'s state and skips by the new ``B``.
"""
import contextlib
import random

import numpy as np
import torch

_pending = None  # the resume point armed by the resume loader, claimed by the next ResumableSampler
_armed_sampler = None  # the sampler that claimed it, until its resumed epoch starts


# ---------------------------------------------------------------------------------------------- RNG states
def rng_state_for_checkpoint():
    """This process's generator states, made of lists, ints, floats and tensors only (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'python': [version, list(internal), gauss],
        'numpy': {'kind': str(kind), 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                  'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    """Set Python, NumPy, torch (and CUDA, when saved and the device count matches) generators from ``state``."""
    version, internal, gauss = state['python']
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    np_state = state['numpy']
    np.random.set_state((np_state['kind'], np.asarray(np_state['keys'].cpu().numpy(), dtype=np.uint32),
                         int(np_state['pos']), int(np_state['has_gauss']), float(np_state['cached_gaussian'])))
    torch.set_rng_state(state['torch'].cpu().to(torch.uint8))
    cuda = state.get('cuda')
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu().to(torch.uint8) for s in cuda])


@contextlib.contextmanager
def preserved_rng_state():
    """Run the block with the generators forked: their states after it are those before it."""
    state = rng_state_for_checkpoint()
    try:
        yield
    finally:
        restore_rng_state(state)


def gather_rng_states():
    """Every rank's ``rng_state_for_checkpoint()``, in rank order (a collective: call on all ranks)."""
    import torch.distributed as dist
    state = rng_state_for_checkpoint()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return [state]
    states = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)
    return [_to_cpu(s) for s in states]


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def rng_state_of_rank(states, rank):
    """This rank's entry of a saved ``rng_states`` list (``rank % len(states)`` when the world size changed)."""
    return states[rank % len(states)] if states else None


# ---------------------------------------------------------------------------------------------- sampler skip
def train_batch_size(opt):
    """The training DataLoader's batch size as ``basicsr.data.build_dataloader`` computes it."""
    per_gpu = opt['datasets']['train']['batch_size_per_gpu']
    if opt.get('dist'):
        return per_gpu
    num_gpu = opt.get('num_gpu') or 0
    return per_gpu * max(int(num_gpu), 1)


def consumed_batches(resume_iter, resume_epoch, iters_per_epoch):
    """Batches of epoch ``resume_epoch`` that train_pipeline had consumed at iteration ``resume_iter``."""
    if iters_per_epoch < 1:
        raise ValueError(f'the training set yields no full batch per epoch (iters_per_epoch {iters_per_epoch})')
    consumed = resume_iter - resume_epoch * iters_per_epoch
    if not 0 <= consumed <= iters_per_epoch:
        raise ValueError(f'resume state (epoch {resume_epoch}, iter {resume_iter}) does not fit {iters_per_epoch} '
                         'iterations per epoch: were dataset_enlarge_ratio, batch_size_per_gpu, the number of '
                         'images or the world size changed since the checkpoint? Restore them, or start afresh.')
    return consumed


def arm(opt, resume_state):
    """Record the resume point of ``resume_state`` for the next ``ResumableSampler`` (see the module doc)."""
    global _pending
    _pending = {'epoch': int(resume_state['epoch']), 'iter': int(resume_state['iter']),
                'batch_size': train_batch_size(opt), 'rng': None}


def disarm():
    """Forget any armed resume point (tests; a pipeline that did not build its sampler)."""
    global _pending, _armed_sampler
    _pending, _armed_sampler = None, None


def hand_rng_to_sampler(rng_state):
    """Give the armed sampler the states to set when its resumed epoch starts; False when none is armed."""
    target = _armed_sampler._resume if _armed_sampler is not None else _pending
    if target is None:
        return False
    target['rng'] = rng_state
    return True


def _enlarged_sampler():
    from basicsr.data.data_sampler import EnlargedSampler
    return EnlargedSampler


class ResumableSampler(_enlarged_sampler()):
    """BasicSR's ``EnlargedSampler`` that starts the resumed epoch after its already consumed samples."""

    def __init__(self, dataset, num_replicas, rank, ratio=1):
        global _pending, _armed_sampler
        super().__init__(dataset, num_replicas, rank, ratio)
        self._resume, self._skip_next_iter, self._rng_next_iter = None, 0, None
        if _pending is not None:
            self._resume, _pending, _armed_sampler = _pending, None, self
            per_epoch = self.num_samples // self._resume['batch_size']
            self._resume['skip'] = consumed_batches(self._resume['iter'], self._resume['epoch'], per_epoch) * \
                self._resume['batch_size']

    def set_epoch(self, epoch):
        global _armed_sampler
        super().set_epoch(epoch)
        if self._resume is not None and epoch == self._resume['epoch']:
            self._skip_next_iter, self._rng_next_iter = self._resume['skip'], self._resume['rng']
            self._resume = None
            if _armed_sampler is self:
                _armed_sampler = None

    def __iter__(self):
        indices = list(super().__iter__())
        skip, rng = self._skip_next_iter, self._rng_next_iter
        self._skip_next_iter, self._rng_next_iter = 0, None
        if rng is not None:
            restore_rng_state(rng)
        return iter(indices[skip:])


def install():
    """Make ``basicsr.train.train_pipeline`` build ``ResumableSampler``s (idempotent)."""
    import basicsr.train
    basicsr.train.EnlargedSampler = ResumableSampler
