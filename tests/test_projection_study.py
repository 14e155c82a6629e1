"""benchmarks/projection_study.py: the images a set contributes and the verdict counts on either side of the residual
gate, on constructed records; benchmarks/datasets.py reads BSDS500's JPEGs."""
import os
import sys

from tta_helpers import REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, 'benchmarks'))
from datasets import _hr_paths  # noqa: E402
from projection_study import report, spread  # noqa: E402


def test_spread_takes_images_from_the_whole_set():
    pairs = [(f'{i:03d}', None, None) for i in range(10)]
    assert [p[0] for p in spread(pairs, 3)] == ['000', '003', '006']
    assert spread(pairs, 0) == pairs and spread(pairs, 20) == pairs


def row(kind, steps, verdict, d_psnr=0.1):
    return {'kind': kind, 'steps': steps, 'verdict': verdict, 'd_psnr': d_psnr, 'd_lpips': -0.01, 'sv_d_psnr': 0.5,
            'noise_matched_d_psnr': 0.2 if kind == 'bicubic_aa' else None}


def study_record(name, gate, verdicts):
    return {'set': name, 'model': 'm', 'noise_mad': 2.0, 'degradation': {'residual_gate': gate, 'blur_sigma': 1.0},
            'rows': [row('bicubic_aa', 1, verdicts[0]), row('branch', 1, verdicts[1])]}


def test_report_counts_verdicts_on_either_side_of_the_gate_and_sorts_by_it():
    records = [study_record('heavy', 0.3, ('harm', 'harm')), study_record('mild', 0.01, ('gain', 'neutral')),
               study_record('clean', 0.0, ('gain', 'gain'))]
    lines = report(records, max_gate=0.05)
    table = [line for line in lines if line.startswith('| ') and not line.startswith(('| set', '| ---'))]
    assert [line.split(' | ')[0] for line in table] == ['| clean', '| mild', '| heavy']
    assert '- bicubic_aa x1: 2/0/0 at most, 0/0/1 above' in lines
    assert '- branch x1: 1/1/0 at most, 0/0/1 above' in lines


def test_hr_folders_may_hold_jpegs(tmp_path):
    for name in ('b.jpg', 'a.png', 'c.jpeg', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert [os.path.basename(p) for p in _hr_paths(str(tmp_path))] == ['a.png', 'b.jpg', 'c.jpeg']
