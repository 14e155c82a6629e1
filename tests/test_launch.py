"""tta_sr/utils/launch.py: ``path.experiments_root`` (from the option file or ``--force_yml``) is the run's folder;
tta_sr/utils/errors.py: user-facing errors in one line."""
import sys

import pytest

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.utils import launch
from tta_sr.utils.errors import user_errors
from tta_helpers import TRAIN_PY, tta_options, write_yaml


@pytest.fixture
def opt_file(tmp_path):
    return lambda **path: write_yaml(tmp_path / 'opt.yml', {**tta_options(tmp_path / 'lr', 'branch.pth', name='run'),
                                                            'path': {'resume_state': None, **path}})


@pytest.mark.parametrize('in_file, forced, expected', [
    (None, None, '{cwd}/experiments/run'),
    ('{tmp}/out/here', None, '{tmp}/out/here'),
    ('{tmp}/out/here', '{tmp}/forced', '{tmp}/forced'),
    (None, '{tmp}/forced', '{tmp}/forced'),
])
def test_experiments_root_sets_every_run_folder(tmp_path, monkeypatch, opt_file, in_file, forced, expected):
    fill = dict(tmp=str(tmp_path), cwd=str(tmp_path / 'cwd'))
    path = opt_file(**({'experiments_root': in_file.format(**fill)} if in_file else {}))
    argv = [TRAIN_PY, '-opt', path] + (['--force_yml', f'path:experiments_root={forced.format(**fill)}'] if forced else [])
    monkeypatch.setattr(sys, 'argv', argv)
    opt, _ = launch.parse_options(fill['cwd'], is_train=True)
    root = expected.format(**fill)
    assert opt['path']['experiments_root'] == root
    assert opt['path']['models'] == f'{root}/models' and opt['path']['training_states'] == f'{root}/training_states'
    assert opt['path']['log'] == root and opt['path']['visualization'] == f'{root}/visualization'


def test_user_errors_are_one_line_with_status_1():
    from tta_sr.utils.image_io import ImageReadError
    with pytest.raises(SystemExit) as exit_info, user_errors('prog'):
        raise ImageReadError('/x/a.png', 'not a recognised image file')
    message = str(exit_info.value.code)
    assert message.startswith('prog: error: ImageReadError: ') and "'/x/a.png'" in message and '\n' not in message
    with pytest.raises(SystemExit, match='prog: error: PermissionError: .*denied'), user_errors('prog'):
        raise PermissionError(13, 'Permission denied', '/ro/out')
    with pytest.raises(KeyError), user_errors('prog'):  # anything else (a bug) keeps its traceback
        raise KeyError('x')
