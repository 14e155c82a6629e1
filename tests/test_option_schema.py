"""The declared option schema of stage 2 (tta_sr/options): unknown keys, types, defaults, old spellings, and the
files generated from it (templates, quickstart, the docs' tables) being current."""
import copy
import os
import subprocess
import sys
import warnings

import pytest
import yaml

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.commands import adapt_options
from tta_sr.options.schema import Block, Option, OptionError, nearest, resolve
from tta_sr.options.stage2 import GATE, HR_AWARE_TRAIN, controller_options, declares, resolve_stage2
from tta_helpers import REPO_ROOT, write_photos

sys.path.insert(0, os.path.join(REPO_ROOT, 'scripts'))
import generate_options  # noqa: E402


def _quickstart():
    return adapt_options.read_options(adapt_options.QUICKSTART_FILE)


@pytest.mark.parametrize('dotted, typo, guess', [
    ('train', 'early_stoping', 'early_stopping'),
    ('train.early_stopping', 'patiense', 'patience'),
    ('train.controller', 'noise_sdt', 'noise_std'),
    ('train.fisher_opt', 'max_sise', 'max_size'),
    ('gate', 'margin', 'margin_db'),
    ('eval', 'tiles', 'tile'),
    ('val', 'val_frq', 'val_freq'),
    ('logger', 'print_frq', 'print_freq'),
    ('datasets.train', 'lq_sise', 'lq_size'),
    ('datasets.val', 'val_crop', 'val_crop_size'),
])
def test_a_typo_in_any_block_names_the_key_and_its_nearest_neighbour(dotted, typo, guess):
    opt = _quickstart()
    adapt_options.set_key(opt, f'{dotted}.{typo}', 1)
    with pytest.raises(OptionError) as err:
        resolve_stage2(opt)
    assert str(err.value) == f'unknown option {dotted}.{typo}: did you mean {dotted}.{guess}?'


def test_an_unknown_top_level_key_and_a_key_with_no_neighbour():
    opt = _quickstart()
    opt['gatee'] = {}
    with pytest.raises(OptionError, match=r'unknown option <option file>\.gatee: did you mean <option file>\.gate\?'):
        resolve_stage2(opt)
    with pytest.raises(OptionError, match=r'unknown option gate\.zzz: known keys: enabled, reference'):
        resolve(GATE, {'zzz': 1}, 'gate')


@pytest.mark.parametrize('dotted, value, message', [
    ('train.total_iter', '80', 'train.total_iter must be an integer'),
    ('train.ema_decay', True, 'train.ema_decay must be an integer or a number'),
    ('train.mode', 'hr-aware', "train.mode must be one of 'hr_aware', 'lway'"),
    ('gate.enabled', 'yes', 'gate.enabled must be true/false'),
    ('eval.bit_depth', 12, 'eval.bit_depth must be one of 8, 16'),
    ('train.early_stopping', 3, 'train.early_stopping must be a mapping'),
])
def test_values_of_the_wrong_kind_fail(dotted, value, message):
    opt = _quickstart()
    adapt_options.set_key(opt, dotted, value)
    with pytest.raises(OptionError, match=message):
        resolve_stage2(opt)


def test_defaults_are_filled_once_and_resolving_again_changes_nothing():
    opt = resolve_stage2(_quickstart())
    assert opt['gate'] == {k: v.default for k, v in GATE.keys.items()}
    assert opt['train']['fisher_opt'] == {'ratio': 0.0, 'max_size': 64}
    assert opt['train']['early_stopping'] == {'patience': 3}  # the CPU preset's, not the default
    assert opt['datasets']['train']['split'] == 'train' and opt['datasets']['val']['split'] == 'val'
    assert opt['train']['controller'] == {}  # filled later, over the branch's own controller settings
    assert resolve_stage2(copy.deepcopy(opt)) == opt


def test_the_controller_takes_the_branch_settings_between_the_defaults_and_the_file():
    assert controller_options({'noise_std': 0.1}, {})['noise_std'] == 0.1
    assert controller_options({'noise_std': 0.1}, {'noise_std': 0.5})['noise_std'] == 0.5
    assert controller_options(None, None)['noise_std'] == HR_AWARE_TRAIN.keys['controller'].keys['noise_std'].default
    with pytest.raises(OptionError, match='did you mean train.controller.flip_sign'):
        controller_options({}, {'flipsign': True})


def test_the_old_fisher_spelling_is_read_as_the_new_with_a_warning():
    opt = {'model_type': 'SRTTAModel', 'train': {'total_iter': 1, 'fisher_ratio': 0.25, 'fisher_max_size': 16}}
    with pytest.warns(FutureWarning, match='train.fisher_ratio is deprecated: write train.fisher_opt.ratio'):
        resolve_stage2(opt)
    assert opt['train']['fisher_opt'] == {'ratio': 0.25, 'max_size': 16} and 'fisher_ratio' not in opt['train']
    both = {'model_type': 'SRTTAModel', 'train': {'total_iter': 1, 'fisher_ratio': 0.25, 'fisher_opt': {'ratio': 0.5}}}
    with warnings.catch_warnings(), pytest.raises(OptionError, match='both given'):
        warnings.simplefilter('ignore')
        resolve_stage2(both)


def test_srtta_has_its_own_train_block_and_no_gate():
    opt = {'model_type': 'SRTTAModel', 'train': {'total_iter': 1}}
    assert resolve_stage2(opt)['train']['fisher_opt']['ratio'] == 0.5 and 'gate' not in opt
    with pytest.raises(OptionError, match='unknown option train.ema_decay'):
        resolve_stage2({'model_type': 'SRTTAModel', 'train': {'total_iter': 1, 'ema_decay': 0.9}})
    with pytest.raises(OptionError, match='no selector'):
        resolve_stage2({'model_type': 'SRTTAModel', 'train': {'total_iter': 1}, 'gate': {}})
    assert not declares('SRTTAModel', 'train.ema_decay') and declares('HRAwareTTAModel', 'train.early_stopping.patience')


def test_a_nested_block_resolves_like_its_parent():
    inner = Block('inner', {'a': Option(1, (int,), 'a')})
    outer = Block('outer', {'inner': inner, 'b': Option(None, (str,), 'b')}, patterns=(r'x_\w+',))
    assert resolve(outer, {'x_anything': 3}, 'o') == {'inner': {'a': 1}, 'b': None, 'x_anything': 3}
    with pytest.raises(OptionError, match=r'o\.inner\.aa: did you mean o\.inner\.a\?'):
        resolve(outer, {'inner': {'aa': 2}}, 'o')
    assert nearest('tottal_iter', ['total_iter', 'warmup_iter']) == 'total_iter' and nearest('zz', ['a']) is None


def test_the_generated_files_are_current():
    """options/tta/*.yml, the quickstart and docs/adaptation.md's tables are what their sources give: a change to a
    fragment or a default without `python scripts/generate_options.py` fails here."""
    assert generate_options.stale_files() == []
    files = generate_options.generated_files()
    assert len([p for p in files if p.endswith('.yml')]) == len(os.listdir(adapt_options.TEMPLATE_DIR)) + 1
    for path in files:
        if path.endswith('.yml'):  # every generated option file is complete: it validates as it is
            resolve_stage2(yaml.safe_load(open(path)))


def test_a_stale_file_is_found(tmp_path, monkeypatch):
    """The check can fail: a template edited by hand differs from its fragments."""
    path = next(p for p in generate_options.generated_files() if p.endswith('hr_aware_BSRGAN.yml'))
    edited = tmp_path / 'hr_aware_BSRGAN.yml'
    edited.write_text(open(path).read().replace('lq_size: 128', 'lq_size: 96'))
    files = {str(edited): open(path).read()}
    monkeypatch.setattr(generate_options, 'generated_files', lambda: files)
    assert generate_options.stale_files() == [str(edited)]


def test_train_py_fails_on_a_typo_before_reading_any_data(tmp_path):
    """The command line ends with a one-line error naming the key and its neighbour, before training starts."""
    opt = _quickstart()
    write_photos(tmp_path / 'lr', 2, 24)
    for dataset in opt['datasets'].values():
        dataset['dataroot_lq'] = str(tmp_path / 'lr')
    opt['train']['early_stoping'] = {'patience': 2}
    path = tmp_path / 'typo.yml'
    path.write_text(yaml.safe_dump(opt))
    out = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'tta_sr', 'train.py'), '-opt', str(path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    assert 'unknown option train.early_stoping: did you mean train.early_stopping?' in out.stderr
    assert not (tmp_path / 'experiments' / opt['name'] / 'models').exists()


def test_a_key_of_the_old_binary_gate_says_what_replaced_it():
    opt = _quickstart()
    opt['gate'] = {'min_texture_ratio': 0.9}
    with pytest.raises(OptionError, match='gate.min_texture_ratio belonged to the binary acceptance gate'):
        resolve_stage2(opt)
