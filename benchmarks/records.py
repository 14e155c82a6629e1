"""What a benchmark run records: its comparable settings, the machine, the branch checkpoints it used, the
JSON results (written atomically, merged from parallel runs) and its log file."""
import json
import logging
import os
import platform

import psutil
import torch

from tta_sr.utils.atomic import atomic_write_text
from tta_sr.weights.resolver import sha256_file


def run_settings(cfg, pairs):
    """What makes two runs comparable (stored as ``settings`` in results.json / curves.json; merges and the
    sweep's reuse check compare it)."""
    settings = {k: cfg[k] for k in ('model', 'lr_dir', 'gt_dir', 'preset', 'iters', 'batch', 'lq_size', 'learning_rate',
                                    'ema_decay', 'seed', 'tile', 'tile_overlap', 'far_weight', 'noise_std', 'device',
                                    'overrides')}
    settings['images'] = [p[0] for p in pairs]
    settings['srtta'] = dict(cfg['srtta'])
    return settings


def branch_record(path):
    """{'path', 'sha256' (first 12 hex digits)} of a branch checkpoint, or None (a method without a branch)."""
    return {'path': path, 'sha256': sha256_file(path)[:12]} if path else None


def machine_info(cfg):
    """Platform, versions, CPUs, threads, load and memory of this machine (and the GPU's name on cuda)."""
    info = {'platform': platform.platform(), 'python': platform.python_version(), 'torch': torch.__version__,
            'cpu_count_logical': os.cpu_count(), 'torch_threads': torch.get_num_threads(), 'device': cfg['device'],
            'load_avg_at_start': os.getloadavg(), 'ram_gb': round(psutil.virtual_memory().total / 2 ** 30, 1)}
    if cfg['device'] == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def dump_json(path, data):
    """``data`` as indented JSON at ``path``, atomically (values JSON lacks written as ``str``)."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str))


def write_records(out, stem, record, lines):
    """``<out>/<stem>.json`` (``record`` and the command line) and ``<out>/<stem>.md`` (``lines``), both atomic;
    prints the lines."""
    import sys
    dump_json(os.path.join(out, f'{stem}.json'), {'command': 'python ' + ' '.join(sys.argv), **record})
    atomic_write_text(os.path.join(out, f'{stem}.md'), '\n'.join(lines) + '\n')
    print('\n'.join(lines))


def setup_logging(out):
    """BasicSR's root logger to ``<out>/bench.log`` (the model logs there)."""
    from basicsr.utils import get_root_logger  # after tta_sr (its torchvision shim comes before basicsr)
    os.makedirs(out, exist_ok=True)
    return get_root_logger(log_level=logging.INFO, log_file=os.path.join(out, 'bench.log'))


def merge_results(results, folders, filename, settings):
    """Copy the methods of ``folder/filename`` (same ``settings`` only) into ``results`` for each folder."""
    for folder in folders:
        with open(os.path.join(folder, filename)) as f:
            other = json.load(f)
        if other.get('settings') != settings:
            raise SystemExit(f'--merge-from {folder}: its settings differ from this run\'s; not merged')
        results['methods'].update(other['methods'])
        results.setdefault('merged_from', []).append({'folder': folder, 'command': other.get('command')})
