"""Bad input wherever a user passes images (docs/bad_input.md): tta-sr evaluate / adapt / upscale and the YAML route
(python tta_sr/train.py). Each case checks the documented outcome and exit status: 1 with one line naming the path
for a missing, empty or imageless folder and an output folder that cannot be written; 0 with a warning when corrupt
files sit among good ones; 0 for tiny images (1 x 1, 6 x 5, smaller than the crop), whose undefined metrics are
reported as such. (The YAML route's corrupt and small files: tests/test_bad_inputs_e2e.py.)"""
import json
import os
import subprocess

import cv2
import pytest

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.image_io import write_image
from cli_helpers import read_only_dir, run_cli, status, tiny_model_files  # noqa: F401  (read_only_dir: a fixture)
from tta_helpers import make_branch_checkpoint, photo, subprocess_env, train_cmd, tta_options, write_yaml


@pytest.fixture(scope='module')
def arch_yaml(tmp_path_factory):
    return tiny_model_files(tmp_path_factory.mktemp('model'))[0]


@pytest.fixture
def no_child(monkeypatch):
    """tta-sr adapt without its training run: records the child command lines instead of running them."""
    from tta_sr.commands import adapt
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(adapt.subprocess, 'run', fake_run)
    return calls


def _folders(tmp_path):
    """missing (no such path), empty (a folder), noimages (a folder with a text file only), good (two photos)."""
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'noimages').mkdir()
    (tmp_path / 'noimages' / 'notes.txt').write_text('no images here')
    for i in range(2):
        write_image(tmp_path / 'good' / f'img{i}.png', photo(i, 24))
    return {k: tmp_path / k for k in ('missing', 'empty', 'noimages', 'good')}


def _commands(kind, folders, arch_yaml, out):
    """The command lines that pass the folder ``kind`` where a user passes images."""
    bad, good = folders[kind], folders['good']
    return {
        'evaluate --sr': ['evaluate', '--sr', bad, '--out', out, '--no-progress'],
        'evaluate --gt': ['evaluate', '--sr', good, '--gt', bad, '--out', out, '--no-progress'],
        'adapt': ['adapt', bad, '--arch-yaml', arch_yaml, '-o', out],
        'adapt --gt': ['adapt', good, '--gt', bad, '--arch-yaml', arch_yaml, '-o', out],
        'upscale': ['upscale', '-i', bad, '-o', out, '--arch-yaml', arch_yaml],
    }


@pytest.mark.parametrize('kind, words', [('missing', 'does not exist'), ('empty', 'no '), ('noimages', 'no ')])
def test_missing_empty_or_imageless_folder_is_one_line_with_status_1(tmp_path, arch_yaml, no_child, kind, words):
    folders = _folders(tmp_path)
    for command, argv in _commands(kind, folders, arch_yaml, tmp_path / 'out').items():
        code, message = status(argv)
        assert code == 1, command
        assert message.startswith(f'tta-sr {argv[0]}: error: ') and '\n' not in message, (command, message)
        assert str(folders[kind]) in message and words in message, (command, message)
    assert no_child == []


def test_the_process_exit_status_and_stderr_are_that_one_line(tmp_path):
    res = run_cli('upscale', '-i', tmp_path / 'nowhere', '-o', tmp_path / 'out')
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    assert res.stderr.strip() == f"tta-sr upscale: error: '{tmp_path / 'nowhere'}' does not exist"


def _with_corrupt_files(folder):
    write_image(folder / 'a.png', photo(0, 24))
    write_image(folder / 'b.png', photo(1, 24))
    (folder / 'text.png').write_text('this is not an image')
    data = (folder / 'b.png').read_bytes()
    (folder / 'truncated.png').write_bytes(data[:len(data) // 2])
    return folder


def test_corrupt_files_among_good_ones_warn_and_the_good_ones_are_processed(tmp_path, arch_yaml, no_child,
                                                                          warnings_log, capsys):
    folder = _with_corrupt_files(tmp_path / 'mixed')
    assert status(['upscale', '-i', folder, '-o', tmp_path / 'up', '--arch-yaml', arch_yaml]) == (0, None)
    assert sorted(os.listdir(tmp_path / 'up')) == ['a_out.png', 'b_out.png']
    assert status(['adapt', folder, '--arch-yaml', arch_yaml, '-o', tmp_path / 'ad']) == (0, None)
    assert len(no_child) == 1 and no_child[0][-2:] == ['-opt', str(tmp_path / 'ad' / 'tta_hr_aware_RealESRGAN_x4plus_mixed.yml')]
    for name in ('text.png', 'truncated.png'):
        assert sum(name in w and 'Skipping bad image file' in w for w in warnings_log) == 2, name  # upscale, adapt
    capsys.readouterr()
    assert status(['evaluate', '--sr', folder, '--metrics', 'psnr_y', '--no-progress']) == (0, None)
    printed = capsys.readouterr()
    assert 'warning: skipping text' in printed.err and 'warning: skipping truncated' in printed.err
    doc = json.loads((folder / 'metrics.json').read_text())
    assert [img['name'] for img in doc['images']] == ['a', 'b']


def test_only_corrupt_files_is_status_1(tmp_path, arch_yaml):
    folder = tmp_path / 'bad'
    folder.mkdir()
    (folder / 'text.png').write_text('no')
    code, message = status(['upscale', '-i', folder, '-o', tmp_path / 'out', '--arch-yaml', arch_yaml])
    assert code == 1 and '1 bad image file(s) skipped' in message and str(folder) in message
    code, message = status(['upscale', '-i', folder / 'text.png', '-o', tmp_path / 'out', '--arch-yaml', arch_yaml])
    assert code == 1 and 'not a recognised image file' in message and 'text.png' in message


SMALL = {'one.png': (1, 1), 'six.png': (5, 6), 'twelve.png': (12, 14)}  # name -> (h, w)


def test_tiny_images_are_upscaled(tmp_path, arch_yaml):
    for name, (h, w) in SMALL.items():
        write_image(tmp_path / 'lr' / name, photo(2, 16)[:h, :w])
    assert status(['upscale', '-i', tmp_path / 'lr', '-o', tmp_path / 'sr', '--arch-yaml', arch_yaml, '--suffix', '',
                   '--tile', '4', '--tile-overlap', '2', '--outscale', '2']) == (0, None)
    for name, (h, w) in SMALL.items():
        assert cv2.imread(str(tmp_path / 'sr' / name)).shape == (2 * h, 2 * w, 3)


def test_tiny_pairs_are_scored_with_undefined_metrics_reported(tmp_path, capsys):
    """The issue's 6 x 5 pair (and 1 x 1) : PSNR-Y and SSIM undefined after the 4-px crop; 14 x 12: PSNR-Y defined,
    SSIM not (6 x 4 left, under its 11 x 11 window); every image is listed, the exit status is 0."""
    for name, (h, w) in {**SMALL, 'big.png': (40, 40)}.items():
        write_image(tmp_path / 'sr' / name, photo(2, 40)[:h, :w])
        write_image(tmp_path / 'gt' / name, photo(3, 40)[:h, :w])
    assert status(['evaluate', '--sr', tmp_path / 'sr', '--gt', tmp_path / 'gt', '--metrics', 'psnr_y,ssim,niqe',
                   '--no-progress']) == (0, None)
    printed = capsys.readouterr()
    scores = {img['name']: img['sr'] for img in json.loads((tmp_path / 'sr' / 'metrics.json').read_text())['images']}
    assert scores['one'] == scores['six'] == {'psnr_y': None, 'ssim': None, 'niqe': None}
    assert scores['twelve']['psnr_y'] is not None and scores['twelve']['ssim'] is None
    assert scores['big']['psnr_y'] is not None and scores['big']['ssim'] is not None
    assert 'six: ssim not computed: ssim: undefined for a 6 x 5 image' in printed.err
    assert 'one: psnr_y not computed: psnr_y: undefined for a 1 x 1 image' in printed.err
    assert 'Traceback' not in printed.err and 'mean' in printed.out


def test_outputs_that_cannot_be_written_are_status_1(tmp_path, arch_yaml, read_only_dir, no_child):
    write_image(tmp_path / 'in' / 'a.png', photo(0, 16))
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    for argv in (['upscale', '-i', tmp_path / 'in', '-o', read_only_dir, '--arch-yaml', arch_yaml],
                 ['upscale', '-i', tmp_path / 'in', '-o', read_only_dir / 'sub', '--arch-yaml', arch_yaml],
                 ['evaluate', '--sr', tmp_path / 'in', '--out', read_only_dir, '--metrics', 'psnr_y'],
                 ['adapt', tmp_path / 'in', '-o', read_only_dir, '--arch-yaml', arch_yaml],
                 ['upscale', '-i', tmp_path / 'in', '-o', a_file, '--arch-yaml', arch_yaml]):
        code, message = status(argv)
        assert code == 1 and '\n' not in message, argv
        target = str(argv[argv.index('-o' if '-o' in argv else '--out') + 1])
        assert message.startswith(f'tta-sr {argv[0]}: error: ') and target in message, message
        assert 'cannot write to the output folder' in message or 'is a file' in message, message
    assert os.listdir(read_only_dir) == [] and no_child == []


def _yaml_route(tmp_path, **dataset_and_path):
    """A tiny stage-2 option file whose LR folder and run folder are given; returns train.py's CompletedProcess."""
    lr = tmp_path / 'lr'
    if not lr.exists():
        for i in range(2):
            write_image(lr / f'img{i}.png', photo(i, 24))
    opt = tta_options(dataset_and_path.get('dataroot_lq', lr), make_branch_checkpoint(tmp_path / 'branch.pth'))
    opt['path']['experiments_root'] = str(dataset_and_path.get('experiments_root', tmp_path / 'run'))
    path = write_yaml(tmp_path / 'opt.yml', opt)
    return subprocess.run(train_cmd(path), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)


def _last_line(res):
    return [line for line in res.stderr.splitlines() if line.strip()][-1]


def test_yaml_route_missing_image_folder_is_one_line_with_status_1(tmp_path):
    res = _yaml_route(tmp_path, dataroot_lq=tmp_path / 'nowhere')
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    assert _last_line(res) == (f"tta_sr/train.py: error: FileNotFoundError: image folder '{tmp_path / 'nowhere'}' "
                               'not found; check the dataroot/path option')


def test_yaml_route_read_only_output_is_one_line_with_status_1(tmp_path, read_only_dir):
    res = _yaml_route(tmp_path, experiments_root=read_only_dir / 'run')
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    assert _last_line(res).startswith('tta_sr/train.py: error: PermissionError: ') and \
        str(read_only_dir / 'run') in _last_line(res)


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['empty', 'noimages'])
def test_yaml_route_empty_or_imageless_folder_is_one_line_with_status_1(tmp_path, kind):
    folder = _folders(tmp_path)[kind]
    res = _yaml_route(tmp_path, dataroot_lq=folder)
    assert res.returncode == 1 and 'Traceback' not in res.stderr
    assert _last_line(res).startswith(f"tta_sr/train.py: error: ImageReadError: no usable image in the folder "
                                      f"'{folder}': no readable image in the folder")


def test_clashing_outputs_failed_writes_and_broken_model_files_are_status_1(tmp_path, arch_yaml, monkeypatch):
    write_image(tmp_path / 'in' / 'a.png', photo(0, 16))
    write_image(tmp_path / 'in' / 'a.jpg', photo(1, 16))
    upscale = ['upscale', '-i', tmp_path / 'in', '-o', tmp_path / 'out', '--arch-yaml', arch_yaml]
    code, message = status(upscale + ['--ext', 'png'])
    assert code == 1 and 'would both be written to' in message and 'a_out.png' in message
    (tmp_path / 'broken.yml').write_text('network_g: [oops\n')
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    for extra, words in ((['--arch-yaml', tmp_path / 'broken.yml'], 'cannot read --arch-yaml'),
                         (['--weights', tmp_path / 'text.pth'], 'WeightsIntegrityError: weights file')):
        code, message = status(['upscale', '-i', tmp_path / 'in' / 'a.png', '-o', tmp_path / 'o2', *extra]
                               + ([] if '--arch-yaml' in extra else ['--arch-yaml', arch_yaml]))
        assert code == 1 and words in message and '\n' not in message, message
    def disk_full(path, img, bit_depth=8):
        raise OSError(28, 'No space left on device', str(path))

    monkeypatch.setattr('tta_sr.utils.image_io.write_image', disk_full)
    code, message = status(['upscale', '-i', tmp_path / 'in' / 'a.png', '-o', tmp_path / 'o3', '--arch-yaml', arch_yaml])
    assert code == 1 and message.startswith('tta-sr upscale: error: OSError: [Errno 28] No space left on device')
