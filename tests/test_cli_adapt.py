"""tta-sr adapt (tta_sr/commands/adapt.py, adapt_options.py) with a tiny SR model: end to end it writes its option
file, the weights, the images and the report, with a progress bar and a short summary; the option file repeats the
run through tta_sr/train.py; the options are the shipped templates (plus the quickstart's CPU values); the
gate's decision is printed when metrics.json has one."""
import json
import os
import subprocess

import pytest
import torch
import yaml

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.commands import adapt_options
from tta_sr.commands.adapt import gate_line, summary_lines
from cli_helpers import status, tiny_model_files
from tta_helpers import write_photos
from tta_helpers import REPO_ROOT, subprocess_env, train_cmd, write_photos


def test_adapt_end_to_end_and_its_option_file_repeats_the_run(tmp_path, capfd):
    photos = write_photos(tmp_path / 'photos', 3, 32)
    write_photos(tmp_path / 'gt', 3, 128)
    arch_yaml, _ = tiny_model_files(tmp_path / 'model')
    out = tmp_path / 'out'
    assert status(['adapt', tmp_path / 'photos', '--arch-yaml', arch_yaml, '--iters', '2', '--gt', tmp_path / 'gt',
                   '-o', out, '--device', 'cpu', '--export']) == (0, None)
    printed = capfd.readouterr()

    name = 'tta_hr_aware_RealESRGAN_x4plus_photos'
    option_file, run = out / f'{name}.yml', out / name
    opt = yaml.safe_load(option_file.read_text())
    assert opt['path']['experiments_root'] == str(run) and opt['train']['total_iter'] == 2
    assert opt['datasets']['train']['dataroot_lq'] == str(tmp_path / 'photos')
    assert opt['eval']['dataroot_gt'] == str(tmp_path / 'gt') and opt['network_g']['num_feat'] == 8
    weights = run / 'models' / 'net_g_latest.pth'
    assert weights.is_file() and (run / 'report.html').is_file() and (run / 'metrics.json').is_file()
    stems = sorted(os.path.basename(p) for p in photos)
    for variant in ('base', 'adapted'):
        assert sorted(os.listdir(run / 'results' / variant)) == stems
    doc = json.loads((run / 'metrics.json').read_text())
    assert doc['images'][0]['adapted']['psnr_y'] is not None  # scored against --gt
    # the progress bar (child's stderr): iterations, loss, ETA; BasicSR's INFO lines only in the log file
    assert 'adapt: 100%' in printed.err and '2/2' in printed.err and 'loss=' in printed.err
    assert 'INFO:' not in printed.err + printed.out and 'Start training' in ''.join(
        open(run / f).read() for f in os.listdir(run) if f.endswith('.log'))
    assert 'upscaled once per weights (twice with the noise-matched check)' in printed.out  # the plan
    for line in (f'adapted weights: {weights}', f'report:          {run / "report.html"}',
                 f'upscaled images: {run / "results" / "adapted"}/', f'-opt {option_file}'):
        assert line in printed.out, line
    with open(run / 'metrics.json') as f:
        gate = json.load(f)['gate']  # the acceptance gate decides, and the summary says what it kept
    assert gate['decision'] in ('adapted', 'source') and gate['summary'] in printed.out

    # the option file repeats the run: same weights, same images (BasicSR archives the first run's folder)
    res = subprocess.run(train_cmd(option_file), cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    archived = [p for p in out.iterdir() if p.name.startswith(f'{name}_archived_')]
    assert len(archived) == 1
    first, again = torch.load(archived[0] / 'models' / 'net_g_latest.pth'), torch.load(weights)
    assert first.keys() == again.keys()
    for key in first:
        for k in first[key]:
            assert torch.equal(first[key][k], again[key][k]), k
    for stem in stems:
        assert (archived[0] / 'results' / 'adapted' / stem).read_bytes() == \
            (run / 'results' / 'adapted' / stem).read_bytes()


def test_without_export_no_whole_photo_is_upscaled_and_the_report_shows_crops(tmp_path, capfd):
    """tta-sr adapt without --export: no results/ folder, the plan is printed before training, and the report
    scores one crop of each photo (eval.crop_size 16 of 40 px photos: 64 px outputs), GT cut to match."""
    write_photos(tmp_path / 'photos', 3, 40)
    write_photos(tmp_path / 'gt', 3, 160)
    arch_yaml, _ = tiny_model_files(tmp_path / 'model')
    overlay = yaml.safe_load(open(arch_yaml))
    overlay.update(eval={'crop_size': 16}, gate={'crop_size': 16, 'max_crops': 4})
    (tmp_path / 'overlay.yml').write_text(yaml.safe_dump(overlay))
    out = tmp_path / 'out'
    assert status(['adapt', tmp_path / 'photos', '--arch-yaml', tmp_path / 'overlay.yml', '--iters', '2', '--gt',
                   tmp_path / 'gt', '-o', out, '--device', 'cpu']) == (0, None)
    printed = capfd.readouterr().out
    run = out / 'tta_hr_aware_RealESRGAN_x4plus_photos'
    assert not (run / 'results').exists() and 'upscaled images:' not in printed
    assert 'photos:          3, 0.00 LR megapixels' in printed and 'judged at the end on at most 4 LR crops of at most 16 x 16' in printed
    assert 'the report, on one crop of each photo' in printed and '--export for whole photos' in printed
    assert 'estimate:        about' in printed and 'min of SR-network time' in printed
    doc = json.loads((run / 'metrics.json').read_text())
    assert len(doc['images']) == 3 and all(image['adapted']['psnr_y'] is not None for image in doc['images'])
    crops = sorted((run / 'report_files' / 'crops').glob('*_GT.png'))
    assert len(crops) == 3


def test_option_files_are_the_templates_with_the_command_line_on_top(tmp_path):
    """Every template (model x mode) gives, with --preset gpu, itself plus only the command line's keys; --preset cpu
    lays the CPU preset's values over the keys the template has a section for, and nothing else."""
    found = adapt_options.templates()
    assert {'hr_aware', 'lway', 'fixed', 'srtta'} <= set(found['RealESRGAN_x4plus']) and 'realesr-animevideov3' in found
    preset = adapt_options.cpu_preset()
    assert preset['train.total_iter'] == 80 and preset['datasets.train.lq_size'] == 32
    for model, modes in found.items():
        for mode, path in modes.items():
            template = adapt_options.read_options(path)
            if template['model_type'] == 'SRTTAModel':
                continue  # an iteration per photo: see test_srtta_iterations_are_per_photo
            assert template['train']['mode'] == mode and template['path']['pretrain_network_g'] == model
            gpu = adapt_options.adapt_options(str(tmp_path / 'pics'), path, str(tmp_path / 'o'), preset='gpu')
            cpu = adapt_options.adapt_options(str(tmp_path / 'pics'), path, str(tmp_path / 'o'), preset='cpu', iters=7)
            run_keys = {'name': f'{template["name"]}_pics', 'path.experiments_root': str(tmp_path / 'o' / gpu['name']),
                        'logger.progress_bar': True, 'eval.dataroot_gt': None, 'eval.export': False}
            run_keys.update({f'datasets.{d}.dataroot_lq': str(tmp_path / 'pics') for d in template['datasets']})
            expected = yaml.safe_load(yaml.safe_dump(template))
            for dotted, value in run_keys.items():
                adapt_options.set_key(expected, dotted, value)
            assert gpu == expected, path
            for dotted, value in preset.items():
                adapt_options.set_key(expected, dotted, value)
            adapt_options.set_key(expected, 'train.total_iter', 7)
            assert cpu == expected, path


def test_the_cpu_preset_skips_what_srtta_does_not_have(tmp_path):
    """An SRTTA run has no EMA, early stopping or validation set: the CPU preset leaves those out (and the run
    validates), and keeps the number of photos as train.total_iter."""

    write_photos(tmp_path / 'pics', 3, 24)
    path = adapt_options.templates()['RealESRGAN_x4plus']['srtta']
    cpu = adapt_options.adapt_options(str(tmp_path / 'pics'), path, str(tmp_path / 'o'), preset='cpu')
    assert 'ema_decay' not in cpu['train'] and 'early_stopping' not in cpu['train'] and 'val' not in cpu['datasets']
    assert cpu['train']['total_iter'] == 3 and cpu['num_gpu'] == 0


def test_srtta_iterations_are_per_photo(tmp_path):
    """SRTTA adapts to one whole photo per iteration: total_iter is the number of photos, --iters the steps per
    photo, and the CPU preset adds no validation split the template does not have."""
    write_photos(tmp_path / 'pics', 3, 16)
    path = adapt_options.templates()['RealESRGAN_x4plus']['srtta']
    opt = adapt_options.adapt_options(str(tmp_path / 'pics'), path, str(tmp_path / 'o'), preset='cpu', iters=4)
    assert opt['train']['total_iter'] == 3 and opt['train']['iterations_per_image'] == 4
    assert 'val' not in opt['datasets'] and opt['model_type'] == 'SRTTAModel'


def test_arch_yaml_replaces_network_g_and_merges_the_rest(tmp_path):
    path = adapt_options.templates()['RealESRGAN_x4plus']['hr_aware']
    fragment = tmp_path / 'mine.yml'
    fragment.write_text(yaml.safe_dump({'import_modules': ['my_arch'], 'scale': 4, 'network_g': {'type': 'MyNet'},
                                        'path': {'pretrain_network_g': 'w.pth'}, 'train': {'far_opt': {'x': 1}}}))
    opt = adapt_options.adapt_options(str(tmp_path / 'pics'), path, str(tmp_path), arch_yaml=str(fragment))
    assert opt['network_g'] == {'type': 'MyNet'} and opt['import_modules'] == ['my_arch']
    assert opt['path']['pretrain_network_g'] == 'w.pth' and opt['path']['pretrain_network_recon'] == 'hr_aware_cpu'
    assert opt['train']['far_opt'] == {'type': 'FARLoss', 'loss_weight': 0.1, 'x': 1}


@pytest.mark.parametrize('extra, message', [
    (['-n', 'RealESRNet_x4plus'], 'models with templates: '),
    (['--mode', 'no_such_mode'], "--mode 'no_such_mode' is not offered for RealESRGAN_x4plus; choose from fixed, hr_aware, lway"),
    (['--iters', '0'], 'expected a positive integer'),
])
def test_unknown_model_or_mode_exits_2(tmp_path, capsys, extra, message):
    write_photos(tmp_path / 'photos', 1, 16)
    assert status(['adapt', tmp_path / 'photos', '-o', tmp_path / 'out', *extra]) == (2, None)
    err = capsys.readouterr().err
    assert 'usage: tta-sr adapt' in err and message in err
    assert not (tmp_path / 'out').exists()


def test_gate_decision_is_printed_only_when_metrics_json_has_it(tmp_path):
    runs = {}
    for stem, gate in (('kept', {'decision': 'adapted', 'reason': 'self-validation +0.3 dB',
                                 'summary': 'handed back iter 80 x0.5 (self-validation +0.3 dB)'}),
                       ('reverted', {'decision': 'source', 'reason': 'NIQE rose by 0.8 on 4 of 6 photos'}),
                       ('nogate', None)):
        runs[stem] = tmp_path / f'run_{stem}'
        runs[stem].mkdir()
        doc = {'mean': {}} if gate is None else {'mean': {}, 'gate': gate}
        (runs[stem] / 'metrics.json').write_text(json.dumps(doc))
    assert gate_line(runs['kept']) == 'handed back iter 80 x0.5 (self-validation +0.3 dB)'
    assert gate_line(runs['reverted']) == 'kept the source model: NIQE rose by 0.8 on 4 of 6 photos'
    assert gate_line(runs['nogate']) is None and gate_line(tmp_path / 'missing') is None
    for stem, expected in (('kept', 'handed back iter 80 x0.5'), ('reverted', 'kept the source model: NIQE rose'),
                           ('nogate', None)):
        lines = summary_lines(str(tmp_path / 'opt.yml'), [str(runs[stem])], '-n RealESRGAN_x4plus')
        gate_lines = [line for line in lines if line.startswith(('kept the', 'handed back'))]
        assert (gate_lines[0].startswith(expected) if expected else gate_lines == []), stem
        other = [line for line in lines if line.startswith('other points:')]
        assert (len(other) == 1 and '--strength A' in other[0] and 'net_g_adapted_latest.pth' in other[0]
                if expected else other == []), stem
    per_image = summary_lines(str(tmp_path / 'opt.yml'), {s: str(r) for s, r in runs.items()}, '-n X')
    assert 'kept: handed back iter 80 x0.5 (self-validation +0.3 dB)' in per_image
    assert 'nogate: ' not in ' '.join(per_image)
    assert any(line.startswith('reverted: kept the source model: NIQE rose') for line in per_image)


def test_templates_need_the_options_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(adapt_options, 'TEMPLATE_DIR', str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='pip install -e'):
        adapt_options.templates()
    assert os.path.isdir(os.path.join(REPO_ROOT, 'options', 'tta'))
