import tta_sr  # noqa: F401  (must precede basicsr)
import os
import subprocess
import sys

import torch
import yaml
from basicsr.archs import build_network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPT = os.path.join(REPO, 'options', 'examples', 'train_my_sr_arch.yml')
sys.path.insert(0, os.path.join(REPO, 'examples', 'custom_arch'))
from make_tiny_data import make_tiny_pairs  # noqa: E402


def _options():
    with open(OPT) as f:
        return yaml.safe_load(f)


def test_example_module_registers_and_builds_from_the_yaml_network_g():
    opt = _options()
    assert opt['import_modules'] == ['examples.custom_arch.my_sr_arch']
    import importlib
    importlib.import_module(opt['import_modules'][0])
    net = build_network(dict(opt['network_g']))
    assert type(net).__name__ == 'MySRNet'
    x = torch.rand(1, 3, 5, 7)
    out = net(x)
    assert out.shape == (1, 3, 20, 28)
    # the zero-initialised tail makes the untrained net exactly bicubic
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False)
    assert torch.allclose(out, bicubic)


def test_example_yaml_trains_a_few_iterations_through_tta_sr_train(tmp_path):
    data = tmp_path / 'datasets' / 'example_tiny'
    make_tiny_pairs(str(data))
    opt = _options()
    opt['datasets']['train']['dataroot_gt'] = str(data / 'hr')
    opt['datasets']['train']['dataroot_lq'] = str(data / 'lr')
    opt_path = tmp_path / 'opt.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    res = subprocess.run([sys.executable, os.path.join(REPO, 'tta_sr', 'train.py'), '-opt', str(opt_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    weights = tmp_path / 'experiments' / opt['name'] / 'models' / 'net_g_latest.pth'
    assert weights.is_file()
    from examples.custom_arch.my_sr_arch import MySRNet
    net = MySRNet(**{k: v for k, v in opt['network_g'].items() if k != 'type'})
    net.load_state_dict(torch.load(weights, map_location='cpu', weights_only=True)['params'], strict=True)
    assert net.tail[0].weight.abs().sum() > 0  # trained away from the zero init
