"""Distributed training on CPU (gloo) as well as GPU (nccl) with BasicSR's launcher.

BasicSR 1.4.2 cannot run ``--launcher pytorch`` on a CPU-only machine:

- ``basicsr.utils.dist_util.init_dist`` calls ``torch.cuda.set_device(rank % torch.cuda.device_count())``
  (a ZeroDivisionError without a GPU) and always uses the ``nccl`` backend;
- ``BaseModel.model_to_device`` wraps networks in ``DistributedDataParallel`` with
  ``device_ids=[torch.cuda.current_device()]``.

This module provides device-aware replacements:

- ``init_dist_any_device(launcher, backend=None, **kwargs)``: ``gloo`` on CPU, ``nccl`` on GPU;
- ``wrap_model_for_device(net, device, opt)``: ``model_to_device`` with ``device_ids=None`` on CPU;
- ``patch_basicsr_options_for_cpu_dist()``: the one override needed for BasicSR's own option parsing.
  ``basicsr.utils.options.parse_options`` calls the module-level name ``init_dist`` (imported from
  ``dist_util``) as ``init_dist(args.launcher)`` or, for slurm with ``dist_params`` in the options,
  ``init_dist(args.launcher, **opt['dist_params'])``. The patch rebinds that single name,
  ``basicsr.utils.options.init_dist``, to ``init_dist_any_device``; ``basicsr.utils.dist_util`` itself and
  every other caller are left untouched.

Launch on CPU: ``torchrun --nproc_per_node 2 tta_sr/train.py -opt X.yml --launcher pytorch`` with
``num_gpu: 0`` (or ``auto`` on a CPU-only machine) in the options.
"""
import os
import subprocess

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DataParallel, DistributedDataParallel


def default_backend():
    """``'nccl'`` when CUDA is available, else ``'gloo'``."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def _set_cuda_device(local_rank):
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())


def init_dist_any_device(launcher, backend=None, **kwargs):
    """Initialise the default process group for BasicSR's ``pytorch`` or ``slurm`` launcher on any device.

    Args:
        launcher (str): ``'pytorch'`` (``torchrun``/``torch.distributed.launch``: reads ``RANK``,
            ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) or ``'slurm'``.
        backend (str | None): ``None`` picks ``nccl`` with CUDA and ``gloo`` without. An explicit
            ``'nccl'`` on a machine without CUDA raises ``RuntimeError`` (nccl needs GPUs).
        **kwargs: ``port`` for slurm (as in BasicSR's ``dist_params``); other keys go to
            ``torch.distributed.init_process_group``.

    Does nothing when the default process group already exists. Returns ``(rank, world_size)``.
    """
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f"Invalid launcher type: {launcher!r}; expected 'pytorch' or 'slurm'")
    if backend is None:
        backend = default_backend()
    if backend == 'nccl' and not torch.cuda.is_available():
        raise RuntimeError('dist backend nccl needs CUDA, which is not available here; remove dist_params.backend '
                           '(gloo is chosen on CPU) or run on a GPU machine')
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')  # as BasicSR does
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    port = kwargs.pop('port', None)  # BasicSR's dist_params.port: used by slurm; torchrun sets MASTER_PORT
    if launcher == 'pytorch':
        rank = int(os.environ['RANK'])
        _set_cuda_device(int(os.environ.get('LOCAL_RANK', rank)))
        dist.init_process_group(backend=backend, **kwargs)
    else:  # slurm
        proc_id = int(os.environ['SLURM_PROCID'])
        ntasks = int(os.environ['SLURM_NTASKS'])
        node_list = os.environ['SLURM_NODELIST']
        local_rank = int(os.environ.get('SLURM_LOCALID', proc_id))  # slurm sets the rank within the node
        _set_cuda_device(local_rank)
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        else:
            os.environ.setdefault('MASTER_PORT', '29500')
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
        os.environ['WORLD_SIZE'] = str(ntasks)
        os.environ['LOCAL_RANK'] = str(local_rank)
        os.environ['RANK'] = str(proc_id)
        dist.init_process_group(backend=backend, **kwargs)
    return dist.get_rank(), dist.get_world_size()


def _has_trainable_params(net):
    return any(p.requires_grad for p in net.parameters())


def wrap_model_for_device(net, device, opt):
    """BasicSR's ``BaseModel.model_to_device`` for CPU and GPU.

    Moves ``net`` to ``device``; then, with ``opt['dist']``, wraps it in ``DistributedDataParallel``
    (``device_ids=None`` on CPU/gloo, ``[torch.cuda.current_device()]`` on GPU,
    ``find_unused_parameters`` from ``opt``); without it and with ``opt['num_gpu'] > 1`` on CUDA, in
    ``DataParallel``. A network without any trainable parameter (a frozen encoder, a teacher) is not
    wrapped: DDP refuses such modules and there is nothing to synchronise.

    Args:
        net (nn.Module): the network.
        device (torch.device | str): target device (``BaseModel.device``).
        opt (dict): BasicSR options (``dist``, ``num_gpu``, ``find_unused_parameters``).
    """
    device = torch.device(device)
    net = net.to(device)
    if not _has_trainable_params(net):
        return net
    if opt.get('dist', False):
        device_ids = [torch.cuda.current_device()] if device.type == 'cuda' else None
        return DistributedDataParallel(
            net, device_ids=device_ids, find_unused_parameters=opt.get('find_unused_parameters', False))
    num_gpu = opt.get('num_gpu', 0)
    if device.type == 'cuda' and isinstance(num_gpu, int) and num_gpu > 1:
        return DataParallel(net)
    return net


def patch_basicsr_options_for_cpu_dist():
    """Make ``basicsr.utils.options.parse_options`` initialise distributed runs with ``init_dist_any_device``.

    Rebinds only ``basicsr.utils.options.init_dist`` (see the module docstring); idempotent. Call before
    ``train_pipeline``/``test_pipeline`` parses the options. Returns the function that was bound before.
    """
    import basicsr.utils.options as options
    previous = options.init_dist
    options.init_dist = init_dist_any_device
    return previous
