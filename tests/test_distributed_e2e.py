"""``torchrun --nproc_per_node 2 ... --launcher pytorch`` on CPU (gloo) for both stages: the runs finish and
both ranks hold the same weights, which are also the saved checkpoint's.

The ranks are observed through ``tests/dist_train_dump.py``: BasicSR's train_pipeline as ``tta_sr/train.py``
runs it, after which each rank dumps the weights it holds in memory.
"""
import socket
import subprocess
import sys

import pytest

from reliability_helpers import (REPO_ROOT, checkpoint, env, make_branch_checkpoint, max_abs_diff, pretrain_options,
                                 run_log, tta_options, write_images, write_yaml)

DRIVER = f'{REPO_ROOT}/tests/dist_train_dump.py'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun(tmp_path, opt_file, dump_dir, *extra):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
           '--master_port', str(_free_port()), DRIVER, '-opt', str(opt_file), '--launcher', 'pytorch', *extra]
    res = subprocess.run(cmd, cwd=str(tmp_path), env=dict(env(), TTA_RANK_DUMP_DIR=str(dump_dir)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-6000:]
    return res


def _load(path):
    import torch
    return torch.load(str(path), weights_only=True)


def _check_ranks_agree(tmp_path, name, keys):
    dump = tmp_path / f'dump_{name}'
    rank0, rank1 = _load(dump / 'rank0.pth'), _load(dump / 'rank1.pth')
    assert set(rank0) == set(keys)
    assert max(max_abs_diff(rank0, rank1).values()) == 0.0
    assert max(max_abs_diff(rank0, checkpoint(tmp_path, name)).values()) == 0.0
    log = run_log(tmp_path, name)
    assert 'World size (gpu number): 2' in log and 'End of training' in log


@pytest.mark.slow
def test_stage2_two_cpu_ranks(tmp_path):
    write_images(tmp_path / 'lr', 3, 24)  # 2 train images x 6 / 2 ranks / batch 2: 3 iterations per epoch
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    opt = tta_options('s2', tmp_path / 'lr', branch, total_iter=4, checkpoint_freq=2)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 6
    _torchrun(tmp_path, write_yaml(tmp_path / 's2.yml', opt), tmp_path / 'dump_s2')
    _check_ranks_agree(tmp_path, 's2', {'params', 'params_ema'})
    assert 'Validation @ iter 2' in run_log(tmp_path, 's2')
    assert (tmp_path / 'experiments' / 's2' / 'report.html').exists()


@pytest.mark.slow
def test_stage1_two_cpu_ranks(tmp_path):
    write_images(tmp_path / 'hr', 2, 80)  # 2 images x 4 / 2 ranks / batch 1: 4 iterations per epoch
    opt = pretrain_options('s1', tmp_path / 'hr', total_iter=4, checkpoint_freq=2)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 4
    _torchrun(tmp_path, write_yaml(tmp_path / 's1.yml', opt), tmp_path / 'dump_s1')
    _check_ranks_agree(tmp_path, 's1', {'params', 'params_ema', 'params_far'})


@pytest.mark.slow
def test_stage2_two_cpu_ranks_resume_matches_uninterrupted_run(tmp_path):
    """Stop after the iteration-2 checkpoint (total_iter 2), resume to 5 with --auto_resume: the weights of
    both ranks are those of an uninterrupted 5-iteration run (each rank restores its own RNG states)."""
    write_images(tmp_path / 'lr', 3, 24)
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    opt = tta_options('ref', tmp_path / 'lr', branch, total_iter=5, checkpoint_freq=2)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 6
    _torchrun(tmp_path, write_yaml(tmp_path / 'ref.yml', opt), tmp_path / 'dump_ref')
    opt['name'] = 'run'
    run_yml = write_yaml(tmp_path / 'run.yml', dict(opt, train=dict(opt['train'], total_iter=2)))
    _torchrun(tmp_path, run_yml, tmp_path / 'dump_first')
    _torchrun(tmp_path, run_yml, tmp_path / 'dump_run', '--auto_resume', '--force_yml', 'train:total_iter=5')
    assert 'Resuming training from epoch: 0, iter: 2' in run_log(tmp_path, 'run')
    for rank in (0, 1):
        ref, run = _load(tmp_path / 'dump_ref' / f'rank{rank}.pth'), _load(tmp_path / 'dump_run' / f'rank{rank}.pth')
        assert max(max_abs_diff(ref, run).values()) <= 1e-6


def _grad_worker(rank, port, out):
    import os
    import torch
    import torch.distributed as dist
    from tta_sr.models.model_base import average_gradients, broadcast_from_rank0
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    torch.manual_seed(rank)
    net = torch.nn.Linear(3, 2)
    frozen_grad = torch.nn.Linear(2, 2)  # gradient on rank 1 only
    broadcast_from_rank0([net, frozen_grad])
    net(torch.full((1, 3), float(rank + 1))).sum().backward()
    if rank == 1:
        frozen_grad.weight.grad = torch.ones(2, 2)
    average_gradients([net, frozen_grad])
    torch.save({'w': net.weight.detach(), 'gw': net.weight.grad, 'fw': frozen_grad.weight.grad,
                'fb': frozen_grad.bias.grad}, f'{out}/rank{rank}.pt')
    dist.destroy_process_group()


@pytest.mark.slow
def test_unwrapped_modules_start_equal_and_average_gradients(tmp_path):
    import torch
    import torch.multiprocessing as mp
    mp.spawn(_grad_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1))
    assert torch.equal(r0['w'], r1['w'])  # rank 0's initial weights everywhere
    assert torch.allclose(r0['gw'], torch.full((2, 3), 1.5)) and torch.equal(r0['gw'], r1['gw'])  # mean of 1, 2
    assert torch.equal(r0['fw'], torch.full((2, 2), 0.5)) and torch.equal(r1['fw'], r0['fw'])
    assert r0['fb'] is None and r1['fb'] is None  # no rank had a gradient: stays None
