"""Tests for tta_sr/utils/per_image.py and its hand-over in tta_sr/train.py: one BasicSR run per LR image."""
import subprocess
import sys

import pytest

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils.launch import option_file_from_argv
from tta_sr.utils.per_image import CHILD_FLAG, per_image_runs
from tta_helpers import (TRAIN_PY, make_branch_checkpoint, subprocess_env, train_cmd, tta_options, write_photos,
                         write_yaml)


@pytest.fixture
def setup(tmp_path):
    write_photos(tmp_path / 'lr', 2, 24)
    branch = make_branch_checkpoint(tmp_path / 'branch.pth')
    opt = tta_options(tmp_path / 'lr', branch, name='pi', total_iter=2)
    opt['per_image'] = True
    opt['datasets']['train']['dataset_enlarge_ratio'] = 4  # one image, batch 2: still whole batches
    opt['val']['val_freq'] = 2
    opt['logger']['save_checkpoint_freq'] = 100
    return tmp_path, opt


def test_one_command_per_image(setup):
    tmp_path, opt = setup
    opt_file = write_yaml(tmp_path / 'pi.yml', opt)
    argv = [TRAIN_PY, '-opt', opt_file, '--auto_resume']
    runs = per_image_runs(argv, option_file_from_argv(argv))
    assert len(runs) == 2
    for run, stem in zip(runs, ('img00', 'img01')):
        assert run[0] == sys.executable and run[1:4] == argv[:3] and '--auto_resume' in run
        overrides = run[run.index('--force_yml') + 1:]
        assert CHILD_FLAG in overrides
        assert f'name=pi_{stem}' in overrides
        assert f"datasets:train:image_names=['{stem}']" in overrides
        assert f"datasets:val:image_names=['{stem}']" in overrides
        assert 'datasets:train:split=all' in overrides and 'datasets:val:split=all' in overrides
        assert per_image_runs(run[1:], opt_file) is None  # a child does not fan out again


def test_each_run_gets_its_own_experiments_root(setup):
    tmp_path, opt = setup
    opt['path']['experiments_root'] = str(tmp_path / 'out' / 'pi')
    opt_file = write_yaml(tmp_path / 'rooted.yml', opt)
    runs = per_image_runs([TRAIN_PY, '-opt', opt_file], opt_file)
    roots = [[arg for arg in run if arg.startswith('path:experiments_root=')] for run in runs]
    assert roots == [[f'path:experiments_root={tmp_path}/out/pi_{stem}'] for stem in ('img00', 'img01')]


def test_no_runs_without_per_image(setup):
    tmp_path, opt = setup
    opt['per_image'] = False
    opt_file = write_yaml(tmp_path / 'plain.yml', opt)
    assert per_image_runs([TRAIN_PY, '-opt', opt_file], opt_file) is None


def test_without_val_dataset_only_train_is_overridden(setup):
    tmp_path, opt = setup
    del opt['datasets']['val']
    opt_file = write_yaml(tmp_path / 'noval.yml', opt)
    runs = per_image_runs([TRAIN_PY, '-opt', opt_file], opt_file)
    assert len(runs) == 2 and not any('datasets:val' in arg for run in runs for arg in run)


def test_a_failed_run_does_not_stop_the_others(tmp_path, capsys):
    """A photo whose run fails in the middle is reported; the runs after it still happen; the exit status is the
    first failure's."""
    from tta_sr.utils.per_image import run_per_image
    marker = tmp_path / 'third_ran'
    runs = [[sys.executable, '-c', 'pass'], [sys.executable, '-c', 'raise SystemExit(3)'],
            [sys.executable, '-c', f'open({str(marker)!r}, "w").close()']]
    with pytest.raises(SystemExit) as exit_info:
        run_per_image(runs)
    assert exit_info.value.code == 3 and marker.is_file()
    assert '1 of 3 per-image runs failed' in capsys.readouterr().err


def test_missing_opt_flag_gives_usage():
    with pytest.raises(SystemExit, match='usage'):
        option_file_from_argv([TRAIN_PY])


def test_per_image_training_run(setup):
    """tta_sr/train.py with per_image: true adapts one copy per image: two experiment folders, one output each."""
    tmp_path, opt = setup
    opt_file = write_yaml(tmp_path / 'pi.yml', opt)
    out = subprocess.run(train_cmd(opt_file), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                         timeout=500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    experiments = sorted(p.name for p in (tmp_path / 'experiments').iterdir())
    assert experiments == ['pi_img00', 'pi_img01']
    for stem in ('img00', 'img01'):
        root = tmp_path / 'experiments' / f'pi_{stem}'
        assert [p.name for p in (root / 'results' / 'adapted').glob('*.png')] == [f'{stem}.png']
        assert [p.name for p in (root / 'results' / 'base').glob('*.png')] == [f'{stem}.png']
        assert (root / 'report.html').is_file()
