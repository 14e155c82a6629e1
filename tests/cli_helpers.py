"""Shared by the ``tta-sr`` command tests: exit statuses of in-process runs, tiny model files, a read-only folder."""
import os
import shutil
import subprocess

import pytest
import torch
import yaml

from tta_helpers import TINY_ARCHS, subprocess_env


def status(argv):
    """Exit status ``tta-sr <argv>`` would end with (``main`` returns it or raises ``SystemExit``), and the
    one-line message of a ``SystemExit(str)`` (Python prints it and exits 1)."""
    from tta_sr.cli import main
    try:
        return main([str(a) for a in argv]), None
    except SystemExit as exit_info:
        code = exit_info.code
        return (code, None) if isinstance(code, int) or code is None else (1, str(code))


def tiny_model_files(folder, arch='SRVGGNetCompact', seed=0):
    """``(arch yaml, weights)`` of a tiny random network: ``{'params': ...}`` and an option fragment naming it.

    The RRDBNet's weights are scaled up (x4, its last layer's down, bias 0.5) so that its output varies
    across the image instead of sitting near 0 (BasicSR initialises it at a tenth of the default).
    """
    from basicsr.archs import build_network
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    net = build_network(dict(TINY_ARCHS[arch]))
    if arch == 'RRDBNet':
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(4)
            net.conv_last.weight.mul_(0.05)
            net.conv_last.bias.fill_(0.5)
    weights = os.path.join(str(folder), f'tiny_{arch}.pth')
    torch.save({'params': net.state_dict()}, weights)
    arch_yaml = os.path.join(str(folder), f'tiny_{arch}.yml')
    with open(arch_yaml, 'w') as f:
        yaml.safe_dump({'scale': 4, 'network_g': dict(TINY_ARCHS[arch]), 'path': {'pretrain_network_g': weights}}, f)
    return arch_yaml, weights


def run_cli(*argv, cwd=None, timeout=300):
    """``python -m tta_sr.cli <argv>`` in a child process (one thread): the CompletedProcess."""
    import sys
    return subprocess.run([sys.executable, '-m', 'tta_sr.cli', *map(str, argv)], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nothing can be written into, even by root (``chattr +i``; ``chmod`` otherwise); skips when neither
    works here. Made writable again afterwards."""
    folder = tmp_path / 'read_only'
    folder.mkdir()
    use_chattr = os.geteuid() == 0  # root ignores permission bits
    if use_chattr:
        if not shutil.which('chattr') or subprocess.run(['chattr', '+i', str(folder)], capture_output=True).returncode:
            pytest.skip('running as root without chattr +i: cannot make a read-only folder here')
    else:
        folder.chmod(0o555)

    def undo():
        if use_chattr:
            subprocess.run(['chattr', '-i', str(folder)], check=True)
        else:
            folder.chmod(0o755)

    try:
        (folder / 'probe').write_text('x')
        os.remove(folder / 'probe')
    except OSError:
        pass
    else:
        undo()
        pytest.skip('the folder stayed writable: cannot make a read-only folder here')
    try:
        yield folder
    finally:
        undo()
