"""Shared helpers for the stage-1 / stage-2 tests: tiny images, tiny option dicts and YAML files, a tiny
reconstruction-branch checkpoint. Nothing here reads /work/shared or downloads anything.

Sizes: LR crops 16 x 16, HR patches 64 x 64, networks a few thousand parameters, so that a model builds
and steps in well under a second on a loaded CPU.
"""
import copy
import os
import sys

import numpy as np
import torch
import yaml

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.image_io import write_image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_PY = os.path.join(REPO_ROOT, 'tta_sr', 'train.py')

# The reconstruction branch and FAR as small as they go: E_img width 8, FAR on AlexNet stage 1 (64 ch).
TINY_RECON = {'type': 'LRReconNet', 'scale': 4, 'emb_dim': 8, 'num_feat': 8, 'deg_num_block': 1,
              'img_num_block': 1, 'rec_num_block': 1}
TINY_FAR = {'type': 'LPIPSBackboneEncoder', 'net': 'alex', 'stage': 1}
TINY_FAR_LOSS = {'type': 'FARLoss', 'in_channels': 8, 'loss_weight': 0.1}
FAR_CHANNELS = 64  # LPIPSBackboneEncoder(alex, stage 1).out_channels

TINY_ARCHS = {
    'SRVGGNetCompact': {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2,
                        'upscale': 4, 'act_type': 'prelu'},
    'RRDBNet': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                'num_grow_ch': 4, 'scale': 4},
}

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera', 'coins')


def photo(index, size):
    """(size, size, 3) float32 RGB in [0, 1]: a crop of one of scikit-image's sample photos."""
    from skimage import data
    img = getattr(data, PHOTOS[index % len(PHOTOS)])()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    top, left = (h - size) // 2 + 7 * index, (w - size) // 2 - 5 * index
    top, left = min(max(top, 0), h - size), min(max(left, 0), w - size)
    return img[top:top + size, left:left + size, :3].astype(np.float32) / 255.0


def write_photos(folder, count, size, prefix='img'):
    """Write ``count`` PNG photo crops of ``size`` x ``size`` into ``folder``; return their paths (sorted)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(str(folder), f'{prefix}{i:02d}.png')
        write_image(path, photo(i, size))
        paths.append(path)
    return sorted(paths)


def make_branch_checkpoint(path, recon_opt=None, seed=0):
    """Save a tiny untrained LRReconNet + FARLoss as ``{'params', 'params_ema', 'params_far'}``; return path."""
    from basicsr.archs import build_network
    from tta_sr.losses.far_loss import FARLoss
    recon_opt = dict(recon_opt or TINY_RECON)
    torch.manual_seed(seed)
    net = build_network(dict(recon_opt))
    far = FARLoss(in_channels=recon_opt['num_feat'], target_channels=FAR_CHANNELS)
    params = {k: v.clone() for k, v in net.state_dict().items()}
    torch.save({'params': params, 'params_ema': params, 'params_far': far.state_dict()}, str(path))
    return str(path)


def tta_options(lr_dir, branch_path, arch='SRVGGNetCompact', mode='hr_aware', gt_dir=None, name='tta', **train):
    """A tiny stage-2 option dict as in a YAML file: 16 x 16 LR crops, batch 2, lr 1e-2 (steps show), no gate."""
    opt = {
        'name': name, 'model_type': 'HRAwareTTAModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'lr', 'type': 'LRImageDataset', 'dataroot_lq': str(lr_dir), 'lq_size': 16,
                      'split': 'train', 'return_hf_weight': mode == 'lway', 'num_worker_per_gpu': 0,
                      'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1},
            'val': {'name': 'lr_val', 'type': 'LRImageDataset', 'dataroot_lq': str(lr_dir), 'split': 'val',
                    'val_crop_size': 16, 'return_hf_weight': mode == 'lway'},
        },
        'network_g': copy.deepcopy(TINY_ARCHS[arch]),
        'network_recon': dict(TINY_RECON),
        'network_far': dict(TINY_FAR),
        'path': {'pretrain_network_g': None, 'pretrain_network_recon': str(branch_path), 'resume_state': None,
                 'strict_load_g': True},
        'train': {'mode': mode, 'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-2, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5}, 'total_iter': 4,
                  'warmup_iter': -1, 'rec_opt': {'type': 'ReconstructionLoss'}, 'far_opt': dict(TINY_FAR_LOSS),
                  'controller': {'noise_std': 0.1}},
        'eval': {'tile': 0, 'metrics': ['psnr_y']},
        'gate': {'enabled': False},  # tests of the gate switch it on (tests/test_acceptance_gate.py)
        'val': {'val_freq': 2, 'save_img': False},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }
    if gt_dir is not None:
        opt['eval']['dataroot_gt'] = str(gt_dir)
    opt['train'].update(train)
    return opt


def srtta_options(lr_dir, arch='RRDBNet', name='srtta', **train):
    """A tiny SRTTAModel option dict as in a YAML file: whole images, 2 steps of 2 patches of 16 per image,
    fixed types (blur, noise, jpeg: no classifier), lr 1e-2 (steps show)."""
    return {
        'name': name, 'model_type': 'SRTTAModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'lr', 'type': 'LRImageDataset', 'dataroot_lq': str(lr_dir), 'lq_size': 0,
                               'split': 'all', 'use_hflip': False, 'use_rot': False, 'num_worker_per_gpu': 0,
                               'batch_size_per_gpu': 1, 'dataset_enlarge_ratio': 1}},
        'network_g': copy.deepcopy(TINY_ARCHS[arch]),
        'path': {'pretrain_network_g': None, 'resume_state': None, 'strict_load_g': True},
        'train': dict({'types': ['blur', 'noise', 'jpeg'], 'iterations_per_image': 2, 'patch_size': 16,
                       'patch_batch': 2, 'fisher_opt': {'ratio': 0.5, 'max_size': 16},
                       'optim_g': {'type': 'Adam', 'lr': 1e-2, 'betas': [0.9, 0.999]},
                       'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
                       'total_iter': 2, 'warmup_iter': -1}, **train),
        'eval': {'tile': 0, 'metrics': ['psnr_y']},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 100, 'use_tb_logger': False},
    }


def tta_opt(tmp_path, lr_dir, branch_path, **kwargs):
    """:func:`tta_options` as BasicSR's ``parse_options`` hands it to ``build_model`` (experiments in tmp_path)."""
    return parsed(tta_options(lr_dir, branch_path, **kwargs), tmp_path)


def build_tta_model(opt):
    """The stage-2 model of a :func:`tta_opt` dict."""
    return build_model(opt)


def lr_batch(dataset, indices=(0, 1)):
    """A batch dict from ``dataset`` items (as BasicSR's default collate would make it)."""
    from torch.utils.data import default_collate
    return default_collate([dataset[i] for i in indices])


def pretrain_options(hr_dir, name='pre', total_iter=4, save_checkpoint_freq=2):
    """A tiny stage-1 option dict as in a YAML file (HR patches 64 x 64, LRReconNet of width 8, FAR and
    controller on)."""
    return {
        'name': name, 'model_type': 'LRReconPretrainModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'gt_size': 64,
        'datasets': {'train': {'name': 'hr', 'type': 'HRDegradationDataset', 'dataroot_gt': str(hr_dir),
                               'gt_size': 64, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 1,
                               'dataset_enlarge_ratio': 4}},
        'network_g': dict(TINY_RECON), 'network_far': dict(TINY_FAR),
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'train': {'ema_decay': 0.999, 'optim_g': {'type': 'Adam', 'lr': 2e-4, 'betas': [0.9, 0.999]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5},
                  'total_iter': total_iter, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'ReconstructionLoss', 'l1_weight': 1.0, 'lpips_weight': 1.0},
                  'far_opt': dict(TINY_FAR_LOSS), 'controller': {'enabled': True, 'noise_std': 1.0}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': save_checkpoint_freq, 'use_tb_logger': False},
    }


def parsed(opt, tmp_path, name=None):
    """What BasicSR's ``parse_options`` adds for training: dist/rank keys, dataset phases, experiment paths."""
    opt = copy.deepcopy(opt)
    opt.update({'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1, 'auto_resume': False})
    for phase, dataset in opt.get('datasets', {}).items():
        dataset['phase'] = phase.split('_')[0]
        dataset['scale'] = opt['scale']
    root = os.path.join(str(tmp_path), 'experiments', name or opt['name'])
    opt['path'].update({'experiments_root': root, 'models': os.path.join(root, 'models'),
                        'training_states': os.path.join(root, 'training_states'), 'log': root,
                        'visualization': os.path.join(root, 'visualization')})
    return opt


def build_model(opt):
    """``basicsr.models.build_model`` on a deep copy of a parsed ``opt`` (models mutate their options)."""
    from basicsr.models import build_model as basicsr_build_model
    for key in ('experiments_root', 'models', 'training_states', 'visualization'):
        os.makedirs(opt['path'][key], exist_ok=True)
    return basicsr_build_model(copy.deepcopy(opt))


def write_yaml(path, opt):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return str(path)


def subprocess_env():
    """Environment for a child ``tta_sr/train.py``: one thread, the repo importable."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
    return env


def train_cmd(opt_file, *extra):
    return [sys.executable, TRAIN_PY, '-opt', str(opt_file), *extra]
