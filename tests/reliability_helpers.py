"""Tiny end-to-end runs of ``tta_sr/train.py`` for the reliability tests (resume, NaN recovery, bad inputs,
distributed): smooth random images, a tiny untrained reconstruction branch, tiny stage-1/stage-2 YAML
option files, and subprocess helpers. Everything lives under pytest's ``tmp_path``; nothing is downloaded.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.image_io import write_image
from tta_helpers import (REPO_ROOT, TINY_ARCHS, TINY_FAR, TINY_FAR_LOSS, TINY_RECON, TRAIN_PY,  # noqa: F401
                         make_branch_checkpoint, pretrain_options as tiny_pretrain_options, write_yaml)

RECON, FAR, FAR_LOSS = TINY_RECON, TINY_FAR, TINY_FAR_LOSS
SR_NET = TINY_ARCHS['SRVGGNetCompact']


def smooth_image(seed, size):
    """(size, size, 3) float32 in [0, 1]: a blurred random field (texture for the losses to see)."""
    rng = np.random.default_rng(seed)
    small = rng.random((size // 4 + 1, size // 4 + 1, 3)).astype(np.float32)
    big = np.kron(small, np.ones((4, 4, 1), np.float32))[:size, :size]
    noise = 0.1 * rng.random((size, size, 3)).astype(np.float32)
    return np.clip(0.9 * big + noise, 0, 1)


def write_images(folder, count, size, prefix='img'):
    os.makedirs(folder, exist_ok=True)
    return [write_image(os.path.join(str(folder), f'{prefix}{i:02d}.png'), smooth_image(i, size)) for i in range(count)]


def source_weights(folder):
    """``folder/source_sr.pth``: seeded weights of the tiny SR net, the model a stage-2 run adapts (a resumed run
    reloads them as its source model, so a run cannot start from a random initialisation)."""
    path = os.path.join(str(folder), 'source_sr.pth')
    if not os.path.exists(path):
        from basicsr.archs import build_network
        torch.manual_seed(0)
        torch.save({'params': build_network(dict(SR_NET)).state_dict()}, path)
    return path


def tta_options(name, lr_dir, branch, total_iter=4, checkpoint_freq=2, lr=1e-2, val=True, **train):
    """A tiny stage-2 run: 16 x 16 crops, batch 2, SRVGGNetCompact of width 8 from :func:`source_weights` (beside
    the branch file), hr_aware mode with FAR."""
    opt = {
        'name': name, 'model_type': 'HRAwareTTAModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'lr', 'type': 'LRImageDataset', 'dataroot_lq': str(lr_dir), 'lq_size': 16,
                               'split': 'train', 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2,
                               'dataset_enlarge_ratio': 3}},
        'network_g': dict(SR_NET), 'network_recon': dict(RECON), 'network_far': dict(FAR),
        'path': {'pretrain_network_g': source_weights(os.path.dirname(str(branch))), 'param_key_g': 'params',
                 'pretrain_network_recon': str(branch), 'resume_state': None},
        'train': {'mode': 'hr_aware', 'ema_decay': 0.9, 'optim_g': {'type': 'Adam', 'lr': lr, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
                  'total_iter': total_iter, 'warmup_iter': -1, 'rec_opt': {'type': 'ReconstructionLoss'},
                  'far_opt': dict(FAR_LOSS), 'controller': {'noise_std': 0.1}},
        'eval': {'tile': 0, 'metrics': ['psnr_y']},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': checkpoint_freq, 'use_tb_logger': False},
    }
    if val:
        opt['datasets']['val'] = {'name': 'lr_val', 'type': 'LRImageDataset', 'dataroot_lq': str(lr_dir),
                                  'split': 'val', 'val_crop_size': 16}
        opt['val'] = {'val_freq': checkpoint_freq, 'save_img': False}
    opt['train'].update(train)
    return opt


def pretrain_options(name, hr_dir, total_iter=4, checkpoint_freq=2):
    """A tiny stage-1 run (``tta_helpers.pretrain_options``) with EMA 0.9, lr 1e-2 and enlarge ratio 2."""
    opt = tiny_pretrain_options(hr_dir, name=name, total_iter=total_iter, save_checkpoint_freq=checkpoint_freq)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 2
    opt['train'].update(ema_decay=0.9, optim_g={'type': 'Adam', 'lr': 1e-2, 'betas': [0.9, 0.999]})
    return opt


def env():
    """A child's environment: one thread, the repo importable."""
    out = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    out['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, out.get('PYTHONPATH')) if p)
    return out


def train(opt_file, cwd, *extra, timeout=600, check=True):
    """Run ``tta_sr/train.py -opt opt_file`` in ``cwd``; return the CompletedProcess (stdout + stderr)."""
    res = subprocess.run([sys.executable, TRAIN_PY, '-opt', str(opt_file), *extra], cwd=str(cwd), env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f'train.py {opt_file} {extra} failed ({res.returncode}):\n{res.stdout[-6000:]}')
    return res


def train_and_kill(opt_file, cwd, wait_for, timeout=600):
    """Start a run, SIGKILL it as soon as ``wait_for`` (a path) exists; return whether it was still running."""
    proc = subprocess.Popen([sys.executable, TRAIN_PY, '-opt', str(opt_file)], cwd=str(cwd), env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while not os.path.exists(wait_for) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    return running


def checkpoint(root, name, which='latest'):
    return torch.load(os.path.join(str(root), 'experiments', name, 'models', f'net_g_{which}.pth'),
                      weights_only=True)


def max_abs_diff(a, b):
    """Largest absolute difference over every tensor of two ``{param_key: state_dict}`` checkpoints."""
    assert a.keys() == b.keys()
    return {key: max((a[key][k].double() - b[key][k].double()).abs().max().item() for k in a[key]) for key in a}


def run_log(root, name):
    """Text of the run's BasicSR log files (all of them: a resumed run writes a second one)."""
    folder = os.path.join(str(root), 'experiments', name)
    return '\n'.join(open(os.path.join(folder, f)).read() for f in sorted(os.listdir(folder)) if f.endswith('.log'))
