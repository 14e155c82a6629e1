"""tta_sr/utils/resume.py: RNG states in the training state, the sampler resuming mid-epoch, and (slow)
``kill -9`` + ``--auto_resume`` giving the weights of an uninterrupted run for both stages."""
import io
import os
import random

import numpy as np
import pytest
import torch

from reliability_helpers import (checkpoint, make_branch_checkpoint, max_abs_diff, pretrain_options, run_log, train,
                                 train_and_kill, tta_options, write_images, write_yaml)
from tta_sr.utils import resume


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_rng_state_round_trip_through_weights_only_load():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in NumPy's state
    random.gauss(0, 1)
    buf = io.BytesIO()
    torch.save({'rng_states': resume.gather_rng_states()}, buf)
    expected = _draws() + (np.random.randn(), random.gauss(0, 1))
    _draws(), _draws()
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)['rng_states']
    resume.restore_rng_state(resume.rng_state_of_rank(loaded, 0))
    assert _draws() + (np.random.randn(), random.gauss(0, 1)) == expected


def test_preserved_rng_state_forks_the_generators():
    torch.manual_seed(0)
    with resume.preserved_rng_state():
        first = _draws()
    assert _draws() == first


def test_consumed_batches_arithmetic():
    # epoch e holds iterations e*N+1 .. (e+1)*N
    assert resume.consumed_batches(3, 0, 10) == 3
    assert resume.consumed_batches(13, 1, 10) == 3
    assert resume.consumed_batches(20, 1, 10) == 10  # last batch of epoch 1: epoch 1 resumes empty
    with pytest.raises(ValueError, match='does not fit 10 iterations per epoch'):
        resume.consumed_batches(35, 1, 10)
    assert resume.train_batch_size({'datasets': {'train': {'batch_size_per_gpu': 3}}, 'num_gpu': 0}) == 3
    assert resume.train_batch_size({'datasets': {'train': {'batch_size_per_gpu': 3}}, 'num_gpu': 2}) == 6
    assert resume.train_batch_size({'datasets': {'train': {'batch_size_per_gpu': 3}}, 'num_gpu': 2,
                                    'dist': True}) == 3


def _batches(sampler, epoch, batch_size):
    loader = torch.utils.data.DataLoader(list(range(7)), batch_size=batch_size, sampler=sampler, drop_last=True)
    sampler.set_epoch(epoch)
    return [b.tolist() for b in loader]


@pytest.mark.parametrize('resume_iter,resume_epoch', [(9, 1), (7, 0), (14, 1), (1, 0)])
def test_resumed_sampler_continues_the_uninterrupted_sequence(resume_iter, resume_epoch):
    data, batch_size = list(range(7)), 3
    reference = resume.ResumableSampler(data, 1, 0, ratio=3)  # 21 samples: N = 21 // 3 = 7
    per_epoch = len(reference) // batch_size
    uninterrupted = [b for e in range(3) for b in _batches(reference, e, batch_size)]
    opt = {'datasets': {'train': {'batch_size_per_gpu': batch_size}}, 'num_gpu': 0}
    resume.arm(opt, {'epoch': resume_epoch, 'iter': resume_iter})
    try:
        resumed_sampler = resume.ResumableSampler(data, 1, 0, ratio=3)
    finally:
        resume.disarm()
    resumed = [b for e in range(resume_epoch, 3) for b in _batches(resumed_sampler, e, batch_size)]
    assert per_epoch == 7
    assert resumed == uninterrupted[resume_iter:]


def test_sampler_restores_the_rng_when_the_resumed_epoch_starts():
    opt = {'datasets': {'train': {'batch_size_per_gpu': 2}}, 'num_gpu': 0}
    resume.arm(opt, {'epoch': 0, 'iter': 1})
    try:
        sampler = resume.ResumableSampler(list(range(4)), 1, 0)
        torch.manual_seed(5)
        saved, expected = resume.rng_state_for_checkpoint(), _draws()
        assert resume.hand_rng_to_sampler(saved)
        _draws()  # e.g. the DataLoader iterator's base seed
        sampler.set_epoch(0)
        assert len(list(iter(sampler))) == 2
        assert _draws() == expected
    finally:
        resume.disarm()


def test_unarmed_sampler_is_basicsr_enlarged_sampler():
    from basicsr.data.data_sampler import EnlargedSampler
    data = list(range(5))
    ours, theirs = resume.ResumableSampler(data, 2, 1, ratio=2), EnlargedSampler(data, 2, 1, ratio=2)
    for epoch in (0, 3):
        ours.set_epoch(epoch), theirs.set_epoch(epoch)
        assert list(ours) == list(theirs)


# ---------------------------------------------------------------------------------------- end to end (slow)
def _kill_resume_compare(tmp_path, opt, kill_at):
    write_yaml(tmp_path / 'ref.yml', dict(opt, name='ref'))
    write_yaml(tmp_path / 'run.yml', dict(opt, name='run'))
    train(tmp_path / 'ref.yml', tmp_path)
    state = tmp_path / 'experiments' / 'run' / 'training_states' / f'{kill_at}.state'
    assert train_and_kill(tmp_path / 'run.yml', tmp_path, state), 'the run ended before it could be killed'
    assert not (tmp_path / 'experiments' / 'run' / 'models' / 'net_g_latest.pth').exists()
    train(tmp_path / 'run.yml', tmp_path, '--auto_resume')
    assert 'Resuming training from epoch' in run_log(tmp_path, 'run')
    diffs = max_abs_diff(checkpoint(tmp_path, 'ref'), checkpoint(tmp_path, 'run'))
    assert max(diffs.values()) <= 1e-6, diffs
    return diffs


@pytest.mark.slow
@pytest.mark.parametrize('checkpoint_freq', [2, 3], ids=['mid_epoch', 'end_of_epoch'])
def test_stage2_kill_and_auto_resume_matches_uninterrupted_run(tmp_path, checkpoint_freq):
    write_images(tmp_path / 'lr', 3, 24)  # 2 train images x enlarge 3 / batch 2: 3 iterations per epoch
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    opt = tta_options('x', tmp_path / 'lr', branch, total_iter=10, checkpoint_freq=checkpoint_freq)
    diffs = _kill_resume_compare(tmp_path, opt, kill_at=checkpoint_freq)
    assert set(diffs) == {'params', 'params_ema'}


@pytest.mark.slow
def test_stage1_kill_and_auto_resume_matches_uninterrupted_run(tmp_path):
    write_images(tmp_path / 'hr', 2, 80)  # 2 images x enlarge 2 / batch 1: 4 iterations per epoch
    opt = pretrain_options('x', tmp_path / 'hr', total_iter=7, checkpoint_freq=2)
    diffs = _kill_resume_compare(tmp_path, opt, kill_at=2)
    assert set(diffs) == {'params', 'params_ema', 'params_far'}


@pytest.mark.slow
def test_training_state_holds_rng_states_and_loads_weights_only(tmp_path):
    write_images(tmp_path / 'lr', 3, 24)
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    write_yaml(tmp_path / 'a.yml', tta_options('a', tmp_path / 'lr', branch, total_iter=2, checkpoint_freq=2,
                                               val=False))
    train(tmp_path / 'a.yml', tmp_path)
    state = torch.load(os.path.join(tmp_path, 'experiments', 'a', 'training_states', '2.state'), weights_only=True)
    assert {'epoch', 'iter', 'optimizers', 'schedulers', 'rng_states'} <= set(state)
    assert len(state['rng_states']) == 1 and {'python', 'numpy', 'torch'} <= set(state['rng_states'][0])
