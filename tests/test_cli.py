"""tta-sr evaluate (pairing, tables, files), test.py with an example option file, 16-bit PNG round trip."""
import json
import os
import subprocess
import sys

import tta_sr  # noqa: F401
import cv2
import numpy as np
import pytest
import torch
import yaml
from skimage import data

from tta_sr.cli import main
from tta_sr.commands.evaluate import match_by_stem
from tta_sr.utils.image_io import read_image, write_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_match_by_stem_rule(tmp_path):
    gt = ['g/0801.png', 'g/0802.png', 'g/0803_hr.png', 'g/0804.jpg']
    sr = ['s/0801.png', 's/0802_out.png', 's/0803.png', 's/0804_RealESRGAN_x4.png', 's/0805.png', 's/08010.png']
    pairs = match_by_stem(sr, gt, scale=4)
    assert pairs == {'s/0801.png': 'g/0801.png', 's/0802_out.png': 'g/0802.png', 's/0803.png': 'g/0803_hr.png',
                     's/0804_RealESRGAN_x4.png': 'g/0804.jpg', 's/0805.png': None, 's/08010.png': None}
    assert match_by_stem(['s/0801.png'], ['l/0801x4.png', 'l/0801x2.png'], scale=4) == {'s/0801.png': 'l/0801x4.png'}
    with pytest.raises(SystemExit, match='equally well'):
        match_by_stem(['s/a.png'], ['g/a_1.png', 'g/a_2.png'])


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('eval')
    hr = data.astronaut().astype(np.float32) / 255.0
    for sub in ('gt', 'sr', 'lr'):
        os.makedirs(root / sub)
    for i, (top, left) in enumerate([(0, 0), (200, 240)]):
        gt = hr[top:top + 210, left:left + 209]  # not a multiple of 4: mod-crop to 208 x 208
        lr = cv2.resize(gt[:208, :208], (52, 52), interpolation=cv2.INTER_AREA)
        sr = np.clip(cv2.resize(lr, (208, 208), interpolation=cv2.INTER_LINEAR) * 0.5 + gt[:208, :208] * 0.5, 0, 1)
        write_image(root / 'gt' / f'im{i}.png', gt)
        write_image(root / 'lr' / f'im{i}x4.png', lr)
        write_image(root / 'sr' / f'im{i}_out.png', sr)
    return root


def test_evaluate_writes_table_and_files(folders, capsys):
    out = folders / 'out'
    assert main(['evaluate', '--sr', str(folders / 'sr'), '--gt', str(folders / 'gt'), '--lr', str(folders / 'lr'),
                 '--metrics', 'psnr_y,ssim,niqe', '--scale', '4', '--out', str(out), '--no-progress']) == 0
    printed = capsys.readouterr()
    assert 'im0_out' in printed.out and 'mean' in printed.out and 'psnr_y↑ sr' in printed.out
    assert 'mod-cropped' in printed.err
    doc = json.loads((out / 'metrics.json').read_text())
    assert [img['name'] for img in doc['images']] == ['im0_out', 'im1_out']
    assert doc['variants'] == ['sr', 'bicubic']
    for img in doc['images']:
        assert img['sr']['psnr_y'] > img['bicubic']['psnr_y']  # the "SR" is half-way to the GT
    # the table equals BasicSR's functions on the written files
    from basicsr.metrics import calculate_psnr
    sr = cv2.imread(str(folders / 'sr' / 'im0_out.png'))
    gt = cv2.imread(str(folders / 'gt' / 'im0.png'))[:208, :208]
    assert doc['images'][0]['sr']['psnr_y'] == pytest.approx(calculate_psnr(sr, gt, 4, test_y_channel=True), abs=1e-9)
    assert (out / 'metrics.csv').read_text().splitlines()[-1].startswith('mean,')


def test_evaluate_explains_unusable_input(folders, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match='no images'):
        main(['evaluate', '--sr', str(tmp_path), '--no-progress'])
    import torch.hub
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    with pytest.raises(SystemExit, match='NRQM_model.mat'):
        main(['evaluate', '--sr', str(folders / 'sr'), '--metrics', 'nrqm', '--out', str(tmp_path), '--no-progress'])


def test_sixteen_bit_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.integers(0, 65536, (17, 23, 3)) / 65535.0).astype(np.float32)
    write_image(tmp_path / 'a.png', img, bit_depth=16)
    back, alpha = read_image(tmp_path / 'a.png')
    assert alpha is None and back.dtype == np.float32
    assert cv2.imread(str(tmp_path / 'a.png'), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert np.abs(back - img).max() < 1.0 / 65535


def test_test_py_runs_example_options(tmp_path):
    """The example option file, shrunk to a tiny random RRDBNet on CPU, runs end to end through test.py."""
    from basicsr.archs.rrdbnet_arch import RRDBNet
    with open(os.path.join(REPO, 'options', 'test', 'test_RealESRGAN_x4plus_folder.yml')) as f:
        opt = yaml.safe_load(f)
    small = dict(num_feat=8, num_block=1, num_grow_ch=4)
    opt['network_g'].update(small)
    torch.manual_seed(0)
    net = RRDBNet(3, 3, scale=4, **small)
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'tiny.pth')
    opt['path']['pretrain_network_g'] = str(tmp_path / 'tiny.pth')
    lr_dir = tmp_path / 'lr'
    write_image(lr_dir / 'a.png', data.astronaut()[:50, :52].astype(np.float32) / 255.0)
    opt['datasets']['test_1']['dataroot_lq'] = str(lr_dir)
    opt['val']['pbar'] = False
    assert opt['val']['metrics']['niqe']['type'] == 'calculate_niqe'
    del opt['val']['metrics']  # NIQE of a random tiny net's flat output is undefined (SVD fails)
    opt_path = tmp_path / 'opt.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': REPO + os.pathsep + os.environ.get('PYTHONPATH', '')}
    res = subprocess.run([sys.executable, os.path.join(REPO, 'tta_sr', 'test.py'), '-opt', str(opt_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / 'results' / opt['name'] / 'visualization' / 'lr_folder' / 'a_out.png'
    assert out.is_file()
    assert cv2.imread(str(out)).shape == (200, 208, 3)
