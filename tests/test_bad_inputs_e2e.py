"""Bad and unusual LR files through a real stage-2 run: unreadable files are skipped and named in the log
(``on_bad_image: warn``) or stop the run with an error naming the file (``raise``); unusual but valid files
(grayscale, RGBA, 16-bit, palette, smaller than ``lq_size``, 6 x 5, 1 x 1) are adapted to, RGBA keeps its alpha,
and the scores a tiny output cannot have (PSNR-Y / SSIM of a 4 x 4 image) are reported as not computed."""
import json
import os

import cv2
import numpy as np
from PIL import Image

from reliability_helpers import (make_branch_checkpoint, run_log, smooth_image, train, tta_options, write_images,
                                 write_yaml)

BAD = ('truncated.png', 'text.png')
UNUSUAL = ('gray.png', 'rgba.png', 'deep16.png', 'palette.png', 'small.png', 'tiny.png', 'one.png')


def _lr_folder(folder):
    """Two ordinary images, the two unreadable files of BAD and the five unusual ones of UNUSUAL."""
    write_images(folder, 2, 24, prefix='plain')
    rgb8 = (smooth_image(7, 24) * 255).round().astype(np.uint8)
    Image.fromarray(rgb8).save(folder / 'whole.png')
    data = (folder / 'whole.png').read_bytes()
    (folder / 'truncated.png').write_bytes(data[:len(data) // 2])
    os.remove(folder / 'whole.png')
    (folder / 'text.png').write_text('this is not an image\n')
    Image.fromarray(rgb8[..., 0]).save(folder / 'gray.png')
    alpha = np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (24, 1))
    Image.fromarray(np.dstack([rgb8, alpha]), 'RGBA').save(folder / 'rgba.png')
    cv2.imwrite(str(folder / 'deep16.png'), (smooth_image(8, 24) * 65535).round().astype(np.uint16)[..., ::-1])
    Image.fromarray(rgb8).quantize(16).save(folder / 'palette.png')
    Image.fromarray(rgb8[:9, :11]).save(folder / 'small.png')  # smaller than lq_size 16
    Image.fromarray(rgb8[:5, :6]).save(folder / 'tiny.png')  # its 24 x 20 output: SSIM undefined after the crop
    Image.fromarray(rgb8[:1, :1]).save(folder / 'one.png')
    return folder


def _options(tmp_path, name, on_bad_image):
    lr = tmp_path / 'lr'
    if not lr.exists():
        lr.mkdir()
        _lr_folder(lr)
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    opt = tta_options(name, lr, branch, total_iter=2, checkpoint_freq=2)
    gt = tmp_path / 'gt'  # ground truth for two of them: scoring the 4 x 4 output of one.png is undefined
    if not gt.exists():
        write_images(gt, 1, 96, prefix='plain')
        Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(gt / 'one.png')
    opt['eval'].update(dataroot_gt=str(gt), metrics=['psnr_y', 'ssim'])
    for dataset in opt['datasets'].values():
        dataset['on_bad_image'] = on_bad_image
    return write_yaml(tmp_path / f'{name}.yml', opt)


def test_bad_files_are_skipped_and_named_and_unusual_files_are_adapted(tmp_path):
    train(_options(tmp_path, 'warn', 'warn'), tmp_path)
    log = run_log(tmp_path, 'warn')
    for name in BAD:
        assert any('Skipping bad image file' in line and name in line for line in log.splitlines()), name
    results = tmp_path / 'experiments' / 'warn' / 'results'
    for variant in ('base', 'adapted'):
        written = sorted(os.listdir(results / variant))
        assert written == sorted(['plain00.png', 'plain01.png'] + list(UNUSUAL)), written
    rgba = cv2.imread(str(results / 'adapted' / 'rgba.png'), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (96, 96, 4)
    assert rgba[..., 3].min() < 30 and rgba[..., 3].max() > 225  # the alpha ramp survived
    assert cv2.imread(str(results / 'adapted' / 'small.png'), cv2.IMREAD_UNCHANGED).shape == (36, 44, 3)
    assert cv2.imread(str(results / 'adapted' / 'gray.png'), cv2.IMREAD_UNCHANGED).shape == (96, 96, 3)
    assert cv2.imread(str(results / 'adapted' / 'tiny.png'), cv2.IMREAD_UNCHANGED).shape == (20, 24, 3)
    assert cv2.imread(str(results / 'adapted' / 'one.png'), cv2.IMREAD_UNCHANGED).shape == (4, 4, 3)
    metrics = json.loads((tmp_path / 'experiments' / 'warn' / 'metrics.json').read_text())
    scores = {img['name']: img['adapted'] for img in metrics['images']}
    assert scores['plain00']['ssim'] is not None and scores['one'] == {'psnr_y': None, 'ssim': None}
    assert any(note.startswith('one (adapted): ssim not computed: ssim: undefined') for note in metrics['notes'])


def test_on_bad_image_raise_stops_naming_the_file(tmp_path):
    res = train(_options(tmp_path, 'strict', 'raise'), tmp_path, check=False, timeout=300)
    assert res.returncode != 0
    assert 'ImageReadError' in res.stdout
    assert 'text.png' in res.stdout or 'truncated.png' in res.stdout, res.stdout[-3000:]
    assert not (tmp_path / 'experiments' / 'strict' / 'models').exists() or \
        not os.listdir(tmp_path / 'experiments' / 'strict' / 'models')
