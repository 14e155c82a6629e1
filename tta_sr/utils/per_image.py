"""Per-image adaptation (``per_image: true``): one adapted copy of M per LR image.

Each image gets its own BasicSR run, in its own process (BasicSR's logger is process-wide), named
``<name>_<stem>`` (in ``<path.experiments_root>_<stem>`` when the option file sets that folder), training
and validating on that image alone (``--force_yml`` overrides).
"""
import os
import subprocess
import sys

import yaml

from tta_sr.utils.image_io import scan_images

CHILD_FLAG = 'per_image=false'  # the --force_yml entry that marks a per-image child run


def per_image_runs(argv, opt_path):
    """Command lines (lists) of the per-image runs, or None when ``per_image`` is not set."""
    with open(opt_path) as f:
        opt = yaml.safe_load(f)
    if not opt.get('per_image') or CHILD_FLAG in argv:
        return None
    stems = [os.path.splitext(os.path.basename(p))[0]
             for p in scan_images(opt['datasets']['train']['dataroot_lq'], on_error='warn')]
    runs = []
    for stem in stems:
        overrides = [f'name={opt["name"]}_{stem}', CHILD_FLAG, f"datasets:train:image_names=['{stem}']",
                     'datasets:train:split=all']
        if (opt.get('path') or {}).get('experiments_root'):
            overrides.append(f'path:experiments_root={opt["path"]["experiments_root"]}_{stem}')
        if 'val' in opt['datasets']:
            overrides += [f"datasets:val:image_names=['{stem}']", 'datasets:val:split=all']
        runs.append([sys.executable, *argv, '--force_yml', *overrides])
    return runs


def run_per_image(runs):
    """Run each command line in turn, one process each (memory is one run's, whatever the number of photos). A run
    that fails (a bad photo in the middle) is reported and the others still run; at the end, when any failed, exit
    with the first failure's status, naming every failed run."""
    failed = []
    for cmd in runs:
        print(f'[tta_sr] per-image run: {" ".join(cmd)}', flush=True)
        code = subprocess.run(cmd).returncode
        if code != 0:
            print(f'[tta_sr] per-image run failed with exit status {code}: {" ".join(cmd)}', file=sys.stderr, flush=True)
            failed.append((code, cmd))
    if failed:
        print(f'[tta_sr] {len(failed)} of {len(runs)} per-image runs failed: '
              + '; '.join(' '.join(cmd) for _, cmd in failed), file=sys.stderr)
        raise SystemExit(failed[0][0])
