"""tta_sr.report: tables, crops and curves of a run, from synthetic data."""
import csv
import json
import re

import tta_sr  # noqa: F401
import cv2
import numpy as np
import pytest
from skimage import data

from tta_sr.report import format_table, pick_crop_box, write_report


def test_pick_crop_box_finds_the_difference():
    base = np.zeros((120, 200, 3), np.float32)
    adapted = base.copy()
    adapted[70:90, 150:170] = 1.0
    top, left, h, w = pick_crop_box(base, adapted, 32)
    assert (h, w) == (32, 32)
    assert top <= 70 and top + h >= 90 and left <= 150 and left + w >= 170
    assert pick_crop_box(base, base, 32) == (44, 84, 32, 32)  # identical: centred
    assert pick_crop_box(base[:20], adapted[:20], 32)[2:] == (20, 32)  # clipped to the image


@pytest.fixture(scope='module')
def synthetic_images():
    hr = data.astronaut().astype(np.float32) / 255.0  # 512 x 512
    images = []
    for i, (top, left) in enumerate([(0, 0), (200, 240)]):
        gt = np.ascontiguousarray(hr[top:top + 208, left:left + 208])  # two 96-px NIQE blocks per side after crop
        lr = cv2.resize(gt, (52, 52), interpolation=cv2.INTER_AREA)
        base = np.clip(cv2.resize(lr, (208, 208), interpolation=cv2.INTER_LINEAR), 0, 1)
        adapted = np.clip(0.5 * base + 0.5 * gt, 0, 1)  # closer to GT: every full-reference metric improves
        images.append({'name': f'img {i}/x', 'lr': lr, 'base': base, 'adapted': adapted, 'gt': gt})
    images.append({'name': 'no_gt', 'lr': images[0]['lr'], 'base': images[0]['base'], 'adapted': images[0]['adapted']})
    return images


def test_report_rows_files_and_links(tmp_path, synthetic_images):
    curves = {'loss_rec': [(i * 10, 1.0 / (i + 1)) for i in range(20)], 'lpips': [(0, 0.3), (50, 0.25), (100, 0.26)]}
    out = write_report(tmp_path / 'run', synthetic_images, metrics=['psnr_y', 'ssim', 'lpips', 'niqe', 'nrqm'],
                       curves=curves, scale=4, extra={'iterations': 100})
    run = tmp_path / 'run'
    doc = json.loads((run / 'metrics.json').read_text())
    assert [img['name'] for img in doc['images']] == ['img 0/x', 'img 1/x', 'no_gt']
    assert set(doc['metrics']) == {'psnr_y', 'ssim', 'lpips', 'niqe'} or 'nrqm' in doc['metrics']
    if 'nrqm' not in doc['metrics']:
        assert 'NRQM_model.mat' in doc['skipped_metrics']['nrqm']
    assert doc['metrics']['lpips']['lower_better'] is True and doc['metrics']['psnr_y']['lower_better'] is False
    first = doc['images'][0]
    assert first['adapted']['psnr_y'] > first['base']['psnr_y']
    assert first['adapted']['lpips'] < first['base']['lpips']
    assert doc['images'][2]['base']['psnr_y'] is None and doc['images'][2]['base']['niqe'] is not None
    assert doc['count']['base']['psnr_y'] == 2 and doc['count']['base']['niqe'] == 3
    mean_psnr = np.mean([doc['images'][i]['adapted']['psnr_y'] for i in (0, 1)])
    assert doc['mean']['adapted']['psnr_y'] == pytest.approx(mean_psnr)

    with open(run / 'metrics.csv', newline='') as f:
        table = list(csv.reader(f))
    assert [r[0] for r in table] == ['image', 'img 0/x', 'img 1/x', 'no_gt', 'mean']
    assert 'psnr_y_base' in table[0] and 'psnr_y_adapted' in table[0]

    page = (run / 'report.html').read_text()
    for name in ('img 0/x', 'img 1/x', 'no_gt'):
        assert name in page
    # opens offline: no external assets (a URL may appear in text, e.g. where to get NRQM weights)
    assert not re.search(r'(src|href)="\w+:', page) and '<script' not in page and '<link' not in page
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any('curves/loss_rec.png' in link for link in links) and any('_GT.png' in link for link in links)
    for link in links:
        assert (run / link).is_file(), link
    assert len([l for l in set(links) if '/crops/' in l]) == 3 * 4 - 1  # bicubic|base|adapted|GT, no GT for no_gt
    assert 'class="better"' in page  # adapted is better on PSNR/SSIM/LPIPS of the GT images
    assert sorted(out['curves']) == ['report_files/curves/loss_rec.png', 'report_files/curves/lpips.png']


def test_report_rejects_mismatched_shapes(tmp_path, synthetic_images):
    bad = dict(synthetic_images[0], adapted=synthetic_images[0]['adapted'][:64])
    with pytest.raises(ValueError, match='same size'):
        write_report(tmp_path, [bad], metrics=['psnr_y'])
    with pytest.raises(ValueError, match='appears twice'):
        write_report(tmp_path, [synthetic_images[0], synthetic_images[0]], metrics=['psnr_y'])


def test_report_notes_a_gt_of_another_size(tmp_path, synthetic_images):
    """A GT larger by less than the scale is mod-cropped; any other size is left out with a note, not an error."""
    first, second = synthetic_images[0], synthetic_images[1]
    images = [dict(first, gt=np.pad(first['gt'], ((0, 3), (0, 2), (0, 0)))), dict(second, gt=second['gt'][:100])]
    out = write_report(tmp_path, images, metrics=['psnr_y'], crops=False)
    doc = json.loads(open(out['json']).read())
    assert doc['images'][0]['base']['psnr_y'] is not None
    assert doc['images'][1]['base']['psnr_y'] is None
    assert any('img 1/x: GT is 208 x 100 but the output is 208 x 208' in note for note in doc['notes'])


def test_format_table_has_mean(synthetic_images):
    from tta_sr.report import build_metrics, score_image
    metrics, _ = build_metrics(['psnr_y', 'niqe'])
    rows = [score_image(item, metrics, ('base', 'adapted'), []) for item in synthetic_images]
    text = format_table(rows, metrics, ('base', 'adapted'))
    assert 'psnr_y↑ base' in text and 'niqe↓ adapted' in text and text.splitlines()[-1].startswith('mean')


def test_report_holds_one_image_at_a_time(tmp_path, synthetic_images):
    """Memory does not grow with the number of images: when the report asks for image k, the arrays of image k - 2
    and earlier are gone (weak references); only scores and crop files stay. The same holds for 3 and 9 images."""
    import gc
    import weakref

    for count in (3, 9):
        alive_when_asked = []
        refs = []

        def images():
            for k in range(count):
                gc.collect()
                alive_when_asked.append(sum(ref() is not None for ref in refs[:-1]))  # all but the last one handed out
                item = {key: np.array(value, copy=True) if isinstance(value, np.ndarray) else value
                        for key, value in dict(synthetic_images[k % len(synthetic_images)], name=f'img{k}').items()}
                refs.append(weakref.ref(item['base']))
                yield item

        out = write_report(tmp_path / f'run{count}', images(), metrics=['psnr_y'])
        assert alive_when_asked == [0] * count
        assert len(json.loads(open(out['json']).read())['images']) == count


def test_the_candidates_plot_has_a_noise_matched_panel_where_it_was_scored(tmp_path):
    from tta_sr.report.curves import plot_candidates

    def selection(nm):
        rows = [{'name': n, 'iteration': it, 'alpha': a, 'projection': None, 'sv_psnr_y': p, 'sv_lpips': 0.2,
                 **({'nm_psnr_y': p - 1} if nm else {})}
                for n, it, a, p in (('source', None, 0.0, 30.0), ('iter 20', 20, 1.0, 30.2), ('iter 40', 40, 1.0, 30.4),
                                    ('iter 40 x0.5', 40, 0.5, 30.3))]
        return {'candidates': rows, 'chosen': 'iter 40'}
    widths = [cv2.imread(plot_candidates(str(tmp_path / f'{nm}.png'), selection(nm))).shape[1] for nm in (False, True)]
    assert widths[1] > widths[0] * 1.3
    assert plot_candidates(str(tmp_path / 'none.png'), {'candidates': [], 'chosen': 'source'}) is None
