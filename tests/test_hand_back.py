"""Tests for what an adaptation run hands back: the candidates (tta_sr/models/candidates.py), the projection
(tta_sr/ops/back_projection.py), the GT-free selector (tta_sr/models/selector.py) and HRAwareTTAModel's use of them:
a run made to fail ends with the source weights and says why; a run that helps hands back adapted weights; when the
full adaptation overshoots, a blend is handed back."""
import json
import logging
import math
import os

import pytest
import torch

import tta_sr  # noqa: F401
from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_sr.models.candidates import Candidate, blend_state, candidate_family
from tta_sr.models.selector import choose, degradation_estimate, psnr_y, reference_pair
from tta_sr.ops.back_projection import BackProjected, back_project
from tta_sr.ops.downscalers import downscale, gaussian_blur
from tta_sr.options.schema import OptionError, resolve
from tta_sr.options.stage2 import GATE
from tta_sr.weights.resolver import load_state_dict
from tta_helpers import TINY_ARCHS, build_tta_model, lr_batch, photo, tta_opt, write_photos


def lr_image(size=24):
    return torch.from_numpy(photo(1, size).transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize('name', ['area', 'bicubic_aa'])
def test_back_projection_through_a_known_linear_downscaler_converges_to_the_lr(name):
    torch.manual_seed(0)
    lr = lr_image()
    sr = torch.rand(1, 3, 96, 96)  # far from consistent: its downscale is noise
    def residual(steps):
        return (downscale(back_project(sr, lr, 4, steps, lambda s: downscale(s, 4, name)), 4, name) - lr).abs().max()
    assert residual(0) > 0.2 and residual(3) < residual(1) < residual(0) and residual(40) < 1e-4


def test_a_back_projected_net_is_projected_onto_its_own_input():
    net = torch.nn.Sequential(torch.nn.Upsample(scale_factor=4, mode='nearest'), torch.nn.Hardtanh(0, 0.5))
    x = lr_image()
    out = BackProjected(net, 4, steps=40)(x)
    assert (downscale(out, 4, 'bicubic_aa') - x).abs().max() < 1e-3
    assert (downscale(net(x), 4, 'bicubic_aa') - x).abs().max() > 0.2


def test_the_noise_matched_reference_adds_back_the_noise_the_source_removes_from_x():
    torch.manual_seed(0)
    replicate = torch.nn.Upsample(scale_factor=4, mode='nearest')
    # a source that keeps everything of a flat X (its downscale is X), or only darkens it (a cast is not noise):
    # X_d' is the plain downscale
    flat = torch.full((1, 3, 32, 32), 0.4)
    for source in (replicate, lambda lr: replicate(lr) - 0.1):
        assert torch.allclose(reference_pair(flat, 4, 'noise_matched', source=source)[0],
                              reference_pair(flat, 4, 'bicubic_aa')[0], atol=1e-5)
    # a source that removes noise n from X = flat + n: X_d' = D(X) + the centre 8 x 8 of n, less its slow part
    noise = 0.05 * torch.randn(1, 3, 32, 32)
    noisy, same = reference_pair(flat + noise, 4, 'noise_matched', source=lambda lr: replicate(flat))
    assert torch.equal(same, flat + noise)
    expected = reference_pair(flat + noise, 4, 'bicubic_aa')[0] + (noise - gaussian_blur(noise, 3.0))[..., 12:20, 12:20]
    assert torch.allclose(noisy, expected.clamp(0, 1), atol=1e-5)
    assert (noisy - 0.4).std() > 0.03  # as noisy as X, where D(X) alone is not
    assert (reference_pair(flat + noise, 4, 'bicubic_aa')[0] - 0.4).std() < 0.02


def test_blends_go_from_the_source_to_the_adapted_weights():
    source = {'w': torch.zeros(3), 'n': torch.tensor(0)}
    adapted = {'w': torch.tensor([1.0, 2.0, 4.0]), 'n': torch.tensor(7)}
    assert torch.equal(blend_state(source, adapted, 0)['w'], source['w'])
    assert torch.equal(blend_state(source, adapted, 1)['w'], adapted['w'])
    half = blend_state(source, adapted, 0.5)
    assert torch.allclose(half['w'], torch.tensor([0.5, 1.0, 2.0])) and half['n'] == 7


def test_the_family_holds_the_source_every_checkpoint_the_blends_and_their_projections():
    family = candidate_family([40, 20], [0.5, 1.0, 0.0], ['bicubic_aa'])
    names = [c.name for c in family]
    assert names[:4] == ['source', 'iter 20', 'iter 40', 'iter 40 x0.5'] and family[0].is_source
    assert names[4:] == [n + ' + projection (bicubic_aa)' for n in names[:4]] and not family[4].is_source
    assert candidate_family([], [0.5]) == [Candidate()]


CLEAN = {'blur_sigma': 0.0, 'residual_gate': 0.001}


def row(psnr, lpips, projection=None, name='c', nm=20.0):
    return {'name': name, 'sv_psnr_y': psnr, 'sv_lpips': lpips, 'projection': projection, 'nm_psnr_y': nm}


def test_the_selector_prefers_a_blend_when_the_full_adaptation_trades_lpips_for_psnr():
    opt = resolve(GATE, {}, 'gate')
    source, full, blend = row(30.0, 0.20), row(31.0, 0.23), row(30.5, 0.19)
    assert choose([source, full, blend], opt, CLEAN)[0] == 2
    assert choose([source, full], opt, CLEAN)[0] == 0  # a blur's gain is not one
    chosen, reason = choose([source, row(30.02, 0.15)], opt, CLEAN)
    assert chosen == 0 and 'no candidate gains 0.05 dB' in reason  # under the margin
    assert choose([source, row(math.nan, 0.1), row(30.3, 0.19)], opt, CLEAN)[0] == 2
    projected = [source, row(30.2, 0.19), row(31.0, 0.18, 'bicubic_aa')]
    assert choose(projected, opt, CLEAN)[0] == 2
    assert choose(projected, opt, None)[0] == 1  # no projection without a branch's estimate
    heavy = dict(CLEAN, residual_gate=opt['max_residual_gate'] + 0.1)  # the bank does not explain the LR
    chosen, reason = choose([source, full, blend], opt, heavy)
    assert chosen == 0 and 'not trusted' in reason


@pytest.mark.parametrize('max_loss', [None, 0.0, 0.05])
def test_a_candidate_that_loses_on_the_noise_matched_input_is_refused(max_loss):
    """The clean reference sees a gain (+0.3 dB, lower LPIPS) that the noise-matched input, as noisy as X, calls a
    0.03 dB loss; a blend gains less but loses nothing there."""
    opt = resolve(GATE, {'max_noise_matched_loss_db': max_loss}, 'gate')
    source, noisy_gain, blend = row(30.0, 0.20, nm=20.0), row(30.3, 0.18, nm=19.97), row(30.1, 0.19, nm=20.01)
    chosen, reason = choose([source, noisy_gain, blend], opt, CLEAN)
    assert chosen == (2 if max_loss == 0.0 else 1)
    chosen, reason = choose([source, noisy_gain, row(math.nan, 0.19, nm=math.nan)], opt, CLEAN)
    assert chosen == (0 if max_loss == 0.0 else 1)
    if max_loss == 0.0:
        assert 'no noise-matched loss over 0 dB' in reason


@pytest.mark.parametrize('per_db', [0.0, 0.005])
def test_each_db_of_gain_must_come_with_lower_lpips_when_lpips_per_db_is_set(per_db):
    """A blur-like candidate: +0.8 dB one scale down with LPIPS barely lower (-0.0015); a real gain: +0.6 dB with
    LPIPS 0.010 lower. With ``lpips_per_db`` 0.005 the blur needs LPIPS 0.004 lower and is refused."""
    opt = resolve(GATE, {'lpips_per_db': per_db}, 'gate')
    source, blur, gain = row(30.0, 0.2000), row(30.8, 0.1985), row(30.6, 0.1900)
    assert choose([source, blur, gain], opt, CLEAN)[0] == (2 if per_db else 1)
    chosen, reason = choose([source, blur], opt, CLEAN)
    assert chosen == (0 if per_db else 1)
    if per_db:
        assert '0.005 lower per dB' in reason


def test_self_validation_psnr_and_the_branch_degradation_estimate(tmp_path):
    from basicsr.archs import build_network
    from tta_helpers import TINY_RECON
    x = lr_image(32)
    assert psnr_y(x, x)[0] > 100 and psnr_y(x, (x + 0.1).clamp(0, 1))[0] < 25
    recon = build_network(dict(TINY_RECON, prior=['bicubic_aa', 'gauss2.0']))
    torch.nn.init.zeros_(recon.reconstructor.prior_head.weight)
    with torch.no_grad():
        recon.reconstructor.prior_head.bias.copy_(torch.tensor([0.0, 1.0]))  # weights softmax(t_p * [0, 1])
    t = recon.reconstructor.prior_sharpness
    expected = 2.0 * math.exp(t) / (1 + math.exp(t))
    estimate = degradation_estimate(recon, [x, x])
    assert estimate['blur_sigma'] == pytest.approx(expected, rel=1e-5) and 0 < estimate['residual_gate'] < 1
    assert degradation_estimate(build_network(dict(TINY_RECON, prior=None)), [x]) is None
    assert degradation_estimate(None, [x]) is None


def test_gate_options_are_validated():
    with pytest.raises(OptionError, match=r'unknown option gate\.margin: did you mean gate\.margin_db\?'):
        resolve(GATE, {'margin': 1}, 'gate')
    with pytest.raises(OptionError, match='gate.reference must be one of'):
        resolve(GATE, {'reference': 'bicubic'}, 'gate')
    with pytest.raises(OptionError, match='gate.alphas'):
        resolve(GATE, {'alphas': 0.5}, 'gate')


@pytest.fixture(scope='module')
def dark_source(tmp_path_factory):
    """LR photos, and a tiny compact SR net whose output is the nearest upscale of its input, 0.15 too dark:
    adapting it to the photos' own LR (area x4 consistency) can only make it better."""
    from basicsr.archs import build_network
    root = tmp_path_factory.mktemp('gate')
    write_photos(root / 'lr', 4, 24)
    torch.manual_seed(0)
    net = build_network(dict(TINY_ARCHS['SRVGGNetCompact']))
    last = net.body[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, -0.15)
    torch.save({'params': net.state_dict()}, str(root / 'dark.pth'))
    return root


def train_dark_source(tmp_path, root, lr, iters, gate=None, **train):
    """The dark source model adapted in fixed (area) mode for ``iters`` steps, then the end-of-training save
    (selector on, with ``gate`` overrides). Returns the model and its options."""
    opt = tta_opt(tmp_path, root / 'lr', None, mode='fixed', fixed_degradation='area', total_iter=iters,
                  rec_opt={'type': 'ReconstructionLoss', 'lpips_weight': 0.0},
                  optim_g={'type': 'Adam', 'lr': lr, 'betas': [0.9, 0.999]}, **train)
    opt['path'].update(pretrain_network_g=str(root / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, **(gate or {})}
    model = build_tta_model(opt)
    dataset = LRImageDataset(opt['datasets']['train'])
    for it in range(1, iters + 1):
        torch.manual_seed(it)
        model.feed_data(lr_batch(dataset))
        model.optimize_parameters(it)
    model.save(-1, -1)
    return model, opt


def run_to_end(tmp_path, root, lr, iters=30, **gate):
    _, opt = train_dark_source(tmp_path, root, lr, iters, gate)
    folder = opt['path']['experiments_root']
    with open(os.path.join(folder, 'metrics.json')) as f:
        gate = json.load(f)['gate']
    return gate, load_state_dict(os.path.join(folder, 'models', 'net_g_latest.pth'), param_key='params'), \
        load_state_dict(str(root / 'dark.pth'), param_key='params'), folder


def test_a_run_made_to_fail_ends_with_the_source_weights_and_says_why(tmp_path, dark_source):
    gate, final, source, _ = run_to_end(tmp_path, dark_source, lr=50.0, iters=5)
    assert gate['decision'] == 'source' and gate['chosen'] == 'source'
    assert gate['summary'].startswith('kept the source model: no candidate gains')
    assert all(torch.equal(final[k], source[k]) for k in source)
    scored = {c['name']: c for c in gate['candidates']}
    assert scored['iter 5']['sv_psnr_y'] < scored['source']['sv_psnr_y'] - 1  # the wrecked model, scored and refused


def test_a_run_that_helps_hands_back_adapted_weights_with_every_candidate_scored(tmp_path, dark_source):
    gate, final, source, folder = run_to_end(tmp_path, dark_source, lr=1e-2)
    assert gate['decision'] == 'adapted', gate['reason']
    chosen = next(c for c in gate['candidates'] if c['name'] == gate['chosen'])
    src = gate['candidates'][0]
    assert src['name'] == 'source' and chosen['sv_psnr_y'] > src['sv_psnr_y'] + 1
    assert chosen['nm_psnr_y'] >= src['nm_psnr_y']  # checked on the noise-matched input too (on by default)
    assert [c['name'] for c in gate['candidates']] == ['source', 'iter 30', 'iter 30 x0.25', 'iter 30 x0.5',
                                                       'iter 30 x0.75']
    assert gate['seconds'] > 0 and gate['seconds_per_candidate'] > 0
    assert not all(torch.equal(final[k], source[k]) for k in source)
    adapted = load_state_dict(os.path.join(folder, 'models', 'net_g_adapted_latest.pth'), param_key='params')
    assert not all(torch.equal(final[k], adapted[k]) for k in source) or gate['chosen'] == 'iter 30'
    assert os.path.isfile(os.path.join(folder, 'report.html'))


def test_a_blend_is_handed_back_when_the_full_adaptation_overshoots(tmp_path, dark_source):
    """The source is 0.15 too dark; the 'adapted' checkpoint 0.15 too bright (harmful); the half-way blend is right."""
    opt = tta_opt(tmp_path, dark_source / 'lr', None, mode='fixed', fixed_degradation='area')
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True}
    model = build_tta_model(opt)
    bright = {k: v.clone() for k, v in model.source.state.items()}
    bias = [k for k in bright if k.endswith('bias')][-1]
    bright[bias] = -bright[bias]
    model.get_bare_model(model.net_g).load_state_dict(bright)  # the weights at the end of training
    model.last_iter = 10
    model.select_hand_back()
    scored = {c['name']: c for c in model.gate_result['candidates']}
    assert model.gate_result['chosen'] == 'iter 10 x0.5', model.gate_result['reason']
    assert scored['iter 10']['sv_psnr_y'] < scored['iter 10 x0.5']['sv_psnr_y'] - 5
    assert torch.allclose(model.net_g.state_dict()[bias], torch.zeros_like(bright[bias]), atol=1e-6)


def test_the_noise_matched_reference_with_its_check_scores_its_pairs_once(tmp_path, dark_source, monkeypatch):
    """gate.reference noise_matched with the check on: the check's pairs are the reference pairs, and each weights
    upscale them once, so the check's score is the reference's own."""
    from tta_sr.models.candidates import Candidate
    opt = tta_opt(tmp_path, dark_source / 'lr', None, mode='fixed', fixed_degradation='area')
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, 'reference': 'noise_matched'}
    model = build_tta_model(opt)
    assert model.noise_matched_pairs is model.reference_pairs
    calls, copy = [], model.source.copy

    def counting_copy(*args):
        net = copy(*args)
        net.register_forward_hook(lambda *_: calls.append(1))
        return net
    monkeypatch.setattr(model.source, 'copy', counting_copy)
    [row] = model.score_candidates([Candidate()])
    assert len(calls) == len(model.reference_pairs) > 0
    assert row['nm_psnr_y'] == row['sv_psnr_y']


@pytest.mark.parametrize('gate_offset, handed_back', [(-8.0, 'projection'), (0.0, 'source')])
def test_a_projection_is_handed_back_only_when_the_branch_sees_a_clean_lr(tmp_path, dark_source, gate_offset,
                                                                          handed_back, caplog):
    """Only projections can gain (no training happened): the dark source + projection is handed back when the
    branch's residual gate says its bank explains the LR (gate offset -8: g = 0.0003), and its outputs are then
    consistent with the LR; when the gate is open (g = 0.5: noise, JPEG) the source model is kept, and says why, first
    before training."""
    from tta_helpers import TINY_RECON, make_branch_checkpoint
    recon = dict(TINY_RECON, prior=['bicubic_aa', 'area'], gate_offset=gate_offset)
    opt = tta_opt(tmp_path, dark_source / 'lr', make_branch_checkpoint(tmp_path / 'branch.pth', recon),
                  mode='rec_only')
    opt['network_recon'] = recon
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, 'alphas': [], 'projection': ['bicubic_aa'], 'projection_steps': 10}
    logger = logging.getLogger('basicsr')  # BasicSR's logger does not propagate to caplog's
    logger.addHandler(caplog.handler)
    try:
        model = build_tta_model(opt)
    finally:
        logger.removeHandler(caplog.handler)
    warned = [r.getMessage() for r in caplog.records if 'will keep the source model' in r.getMessage()]
    assert len(warned) == (handed_back == 'source')  # said before training, from the LR alone
    model.last_iter = 1
    model.select_hand_back()
    x = lr_image()
    error = (downscale(model.output_net()(x), 4, 'bicubic_aa') - x).abs().mean()
    if handed_back == 'projection':
        assert model.gate_result['chosen'] in ('source + projection (bicubic_aa)', 'iter 1 + projection (bicubic_aa)')
        assert error < 0.01 < (downscale(model.net_g(x), 4, 'bicubic_aa') - x).abs().mean()
    else:
        assert model.gate_result['decision'] == 'source' and error > 0.05 and 'not trusted' in model.gate_result['reason']
    assert model.gate_result['degradation']['residual_gate'] == pytest.approx(torch.sigmoid(torch.tensor(gate_offset)),
                                                                              rel=1e-4)


@pytest.mark.parametrize('min_images', [1, 4])
def test_a_validation_split_under_min_images_is_judged_on_every_image(tmp_path, dark_source, min_images):
    opt = tta_opt(tmp_path, dark_source / 'lr', None, mode='fixed', fixed_degradation='area',
                  rec_opt={'type': 'ReconstructionLoss', 'lpips_weight': 0.0})
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, 'min_images': min_images}
    val = LRImageDataset(dict(opt['datasets']['val'], phase='val')).paths
    model = build_tta_model(opt)
    assert 1 <= len(val) < 4
    assert sorted(model.gate_images) == sorted(val if min_images == 1 else model.adapted_images)
    assert len(model.adapted_images) == 4


def test_the_validation_after_the_final_save_decides_nothing(tmp_path, dark_source):
    """BasicSR's train loop validates once more after ``save(-1, -1)``: that validation reports its loss, but
    neither records a candidate nor re-runs the selector (which would judge the handed-back model) nor early-stops."""
    model, opt = train_dark_source(tmp_path, dark_source, lr=50.0, iters=2, early_stopping={'patience': 1})
    decided = dict(model.gate_result)
    weights = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    loader = [lr_batch(LRImageDataset(dict(opt['datasets']['train'], phase='val')), (0,))]
    for it in (3, 4):
        model.nondist_validation(loader, it, None, False)
    assert decided['decision'] == 'source' and model.gate_result == decided
    assert list(model.checkpoints) == [2] and not model.stopped
    assert [it for it, _ in model.history['val_ssl_loss']] == [3, 4]
    assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in weights.items())


def test_the_selector_judges_a_bounded_set_of_crops(tmp_path, dark_source):
    """gate.crop_size / crops_per_image / max_crops bound what the selector upscales: four 24 px photos, crops of 16,
    two each, at most 5 in all; the same crops every time."""
    opt = tta_opt(tmp_path, dark_source / 'lr', None, mode='fixed', fixed_degradation='area')
    opt['path'].update(pretrain_network_g=str(dark_source / 'dark.pth'), param_key_g='params')
    opt['gate'] = {'enabled': True, 'min_images': 8, 'crop_size': 16, 'crops_per_image': 2, 'max_crops': 5}
    model = build_tta_model(opt)
    assert len(model.adapted_images) == 4 and [c.shape for c in model.gate_crops] == [(16, 16, 3)] * 5
    opt['gate'].update(crop_size=64)
    assert [c.shape for c in build_tta_model(opt).gate_crops] == [(24, 24, 3)] * 4  # small photos: whole
