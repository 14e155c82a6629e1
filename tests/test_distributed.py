"""Tests for tta_sr/utils/distributed.py: two CPU ranks (gloo) through BasicSR's option parsing and DDP."""
import os
import socket
import sys

import pytest
import torch
from torch import nn

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.distributed import (default_backend, init_dist_any_device, patch_basicsr_options_for_cpu_dist,
                                      wrap_model_for_device)

LR = 0.1


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _data(rank):
    g = torch.Generator().manual_seed(100 + rank)
    return torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))


def _worker(rank, world_size, port, root, opt_path):
    """One rank: BasicSR's parse_options (patched) -> gloo group -> DDP on CPU -> one SGD step."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    import tta_sr  # noqa: F401
    from basicsr.utils.options import parse_options
    from torch.nn.parallel import DistributedDataParallel
    patch_basicsr_options_for_cpu_dist()
    sys.argv = ['train.py', '-opt', opt_path, '--launcher', 'pytorch']
    opt, _ = parse_options(root, is_train=True)
    assert opt['dist'] and opt['rank'] == rank and opt['world_size'] == world_size
    assert dist.get_backend() == 'gloo' and opt['num_gpu'] == 0

    net = _net(seed=rank)  # different initial weights per rank: DDP broadcasts rank 0's
    frozen = wrap_model_for_device(nn.Linear(2, 2).requires_grad_(False), 'cpu', opt)
    assert not isinstance(frozen, DistributedDataParallel)  # nothing to synchronise: left unwrapped
    model = wrap_model_for_device(net, torch.device('cpu'), opt)
    assert isinstance(model, DistributedDataParallel) and model.device_ids is None
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = _data(rank)  # different data per rank
    nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
    torch.save(net.state_dict(), os.path.join(root, f'rank{rank}.pth'))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.skipif(torch.cuda.is_available(), reason='exercises the CPU (gloo) path')
def test_two_cpu_ranks_hold_identical_weights_after_one_step(tmp_path):
    import torch.multiprocessing as mp
    opt_path = tmp_path / 'dist.yml'
    opt_path.write_text('name: dist_test\nmodel_type: SRModel\nnum_gpu: auto\nmanual_seed: 0\n'
                        'datasets: {}\npath: {}\n')
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path), str(opt_path)), nprocs=2, join=True,
                       start_method='spawn')
    w0 = torch.load(tmp_path / 'rank0.pth', weights_only=True)
    w1 = torch.load(tmp_path / 'rank1.pth', weights_only=True)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k

    # expected: rank 0's initial weights, stepped with the gradient averaged over both ranks' batches
    ref = _net(seed=0)
    grads = []
    for rank in range(2):
        ref.zero_grad()
        x, y = _data(rank)
        nn.functional.mse_loss(ref(x), y).backward()
        grads.append([p.grad.clone() for p in ref.parameters()])
    with torch.no_grad():
        for p, g0, g1 in zip(ref.parameters(), *grads):
            p -= LR * (g0 + g1) / 2
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(w0[k], v, rtol=1e-5, atol=1e-6)
    assert not torch.equal(w0['0.weight'], _net(seed=0).state_dict()['0.weight'])  # the step happened


def test_wrap_model_for_device_without_dist():
    net = nn.Linear(3, 3)
    assert wrap_model_for_device(net, 'cpu', {'dist': False, 'num_gpu': 0}) is net
    assert wrap_model_for_device(net, torch.device('cpu'), {'dist': False, 'num_gpu': 2}) is net  # no DataParallel on CPU


def test_init_dist_any_device_rejects_bad_arguments():
    with pytest.raises(ValueError, match='launcher'):
        init_dist_any_device('none')
    if not torch.cuda.is_available():
        assert default_backend() == 'gloo'
        with pytest.raises(RuntimeError, match='nccl needs CUDA'):
            init_dist_any_device('pytorch', backend='nccl')


def test_patch_rebinds_only_options_init_dist():
    import basicsr.utils.dist_util as dist_util
    import basicsr.utils.options as options
    original = options.init_dist
    try:
        previous = patch_basicsr_options_for_cpu_dist()
        assert previous is original
        assert options.init_dist is init_dist_any_device
        assert dist_util.init_dist is not init_dist_any_device  # BasicSR's own module untouched
        assert patch_basicsr_options_for_cpu_dist() is init_dist_any_device  # idempotent
    finally:
        options.init_dist = original
