"""benchmarks/selection_accuracy.py: the GT verdicts of candidates and what a rule's evaluation counts (harmful
hand-backs, gains handed back, regret), on constructed records."""
import math
import os
import sys

import pytest

from tta_helpers import REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, 'benchmarks'))
from selection_accuracy import (common_records, evaluate, load_records, main, product_rule,  # noqa: E402
                                rank_correlation, signal_ranking, tune, verdict)
from tta_sr.options.schema import OptionError  # noqa: E402

BASE = {'psnr_y': 25.0, 'lpips': 0.300}


def test_a_gain_needs_both_metrics_and_harm_either():
    assert verdict({'psnr_y': 25.05, 'lpips': 0.302}, BASE) == 'gain'
    assert verdict({'psnr_y': 25.5, 'lpips': 0.304}, BASE) == 'neutral'  # PSNR bought with LPIPS: no gain
    assert verdict({'psnr_y': 26.0, 'lpips': 0.306}, BASE) == 'harm'
    assert verdict({'psnr_y': 24.94, 'lpips': 0.2}, BASE) == 'harm'


def candidate(name, gt_psnr, gt_lpips, sv_psnr, sv_lpips, iteration=None, alpha=0.0, projection=None, nm=20.0):
    """``nm``: the noise-matched self-validation PSNR-Y (None: not recorded)."""
    gt = {'psnr_y': gt_psnr, 'lpips': gt_lpips}
    sv = {'bicubic_aa': {'sv_psnr_y': sv_psnr, 'sv_lpips': sv_lpips}}
    if nm is not None:
        sv['noise_matched'] = {'sv_psnr_y': nm, 'sv_lpips': sv_lpips}
    return {'name': name, 'iteration': iteration, 'alpha': alpha, 'projection': projection, 'gt': gt,
            'verdict': verdict(gt, BASE), 'sv': sv}


def record(*candidates, gate=0.01, nm=20.0):
    return {'set': 's', 'method': 'hr_aware', 'model': 'm', 'lr': 5e-6, 'noise_mad': 1.0,
            'degradation': {'blur_sigma': 0.0, 'residual_gate': gate},
            'candidates': [candidate('source', 25.0, 0.300, 30.0, 0.20, nm=nm)] + list(candidates)}


def test_harm_gains_and_regret_are_counted_against_the_ground_truth():
    rule = dict(product_rule(), projection=('bicubic_aa',), max_residual_gate=0.05)
    fooled = record(candidate('iter 80', 24.0, 0.35, 31.0, 0.19, 80, 1.0),  # the signal says gain, GT harm
                    candidate('iter 80 x0.5', 25.3, 0.29, 30.2, 0.199, 80, 0.5))
    right = record(candidate('iter 80', 25.4, 0.28, 30.5, 0.18, 80, 1.0),
                   candidate('source + projection (bicubic_aa)', 25.6, 0.28, 30.3, 0.19, None, 0.0, 'bicubic_aa'))
    blocked = record(candidate('source + projection (bicubic_aa)', 25.6, 0.28, 31.0, 0.1, None, 0.0, 'bicubic_aa'),
                     gate=0.5)  # a noisy LR: the projection may not be handed back
    result = evaluate([fooled, right, blocked], rule)
    assert result['runs'] == 3 and result['harmful'] == 1
    assert result['gain_available'] == 3 and result['gain_handed'] == 1
    # regret: fooled 25.3 - 24.0, right 25.6 - 25.4, blocked 25.6 - 25.0 (the GT-best of everything recorded)
    assert result['regret_db'] == pytest.approx((1.3 + 0.2 + 0.6) / 3)
    assert [r['chosen'] for r in result['per_run']] == ['iter 80', 'iter 80', 'source']


def test_gains_and_regret_are_also_counted_against_the_candidates_the_rule_offers():
    """Without projections in the rule's family, a gain only a projection reaches is not counted as offered."""
    rule = dict(product_rule(), projection=(), max_residual_gate=0.05)
    right = record(candidate('iter 80', 25.4, 0.28, 30.5, 0.18, 80, 1.0),
                   candidate('source + projection (bicubic_aa)', 25.6, 0.28, 30.3, 0.19, None, 0.0, 'bicubic_aa'))
    only_projection = record(candidate('source + projection (bicubic_aa)', 25.6, 0.28, 31.0, 0.1, None, 0.0,
                                       'bicubic_aa'))
    result = evaluate([right, only_projection], rule)
    assert (result['gain_available'], result['gain_handed']) == (2, 1)
    assert (result['gain_available_offered'], result['gain_handed_offered']) == (1, 1)
    assert result['regret_db'] == pytest.approx((0.2 + 0.6) / 2)
    assert result['regret_offered_db'] == pytest.approx(0.0)


def test_the_noise_matched_check_refuses_what_loses_on_a_noisy_input_and_needs_its_scores():
    """The clean reference calls iter 80 a gain (the GT: harm); on the noise-matched input it loses 0.1 dB."""
    noisy = record(candidate('iter 80', 24.0, 0.35, 31.0, 0.19, 80, 1.0, nm=19.9),
                   candidate('iter 80 x0.5', 25.3, 0.29, 30.2, 0.199, 80, 0.5, nm=20.0))
    checked, unchecked = product_rule(), dict(product_rule(), max_noise_matched_loss_db=None)
    assert [r['chosen'] for r in evaluate([noisy], checked)['per_run']] == ['iter 80 x0.5']
    assert [r['chosen'] for r in evaluate([noisy], unchecked)['per_run']] == ['iter 80']
    # a record without the noise-matched scores: not evaluated by the check, unless the residual gate keeps the
    # source before any score is read
    old = record(candidate('iter 80', 25.4, 0.28, 30.5, 0.18, 80, 1.0), nm=None)
    assert evaluate([old], checked)['runs'] == 0 and evaluate([old], unchecked)['runs'] == 1
    distrusted = evaluate([record(candidate('iter 80', 25.4, 0.28, 30.5, 0.18, 80, 1.0), nm=None, gate=0.5)], checked)
    assert [r['chosen'] for r in distrusted['per_run']] == ['source']


def test_the_tuner_judges_every_rule_on_the_same_runs():
    """A record without the noise-matched scores would be skipped by the rules that read them and counted by the
    others; the tuner leaves it out for all."""
    with_nm = record(candidate('iter 80', 25.4, 0.28, 30.5, 0.18, 80, 1.0, nm=20.1))
    without = record(candidate('iter 80', 24.0, 0.35, 31.0, 0.19, 80, 1.0), nm=None)
    assert common_records([with_nm, without]) == [with_nm]
    assert {res['runs'] for _, res in tune(common_records([with_nm, without]))} == {1}


def test_rank_correlation_orders_not_values():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 35, 100]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties share a rank
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def with_consistency(c, value):
    return dict(c, gt=dict(c['gt'], lr_consistency=value))


def test_each_signal_alone_is_scored_by_its_ranking_and_its_first_choice():
    """Self-validation ranks these weights as the GT does; the LR consistency prefers the harmful one."""
    runs = [record(with_consistency(candidate('iter 40', 25.3, 0.29, 30.3, 0.19, 40, 1.0), 31.0),
                   with_consistency(candidate('iter 80', 24.0, 0.35, 29.5, 0.19, 80, 1.0), 33.0),
                   with_consistency(candidate('iter 80 + projection (bicubic_aa)', 26.0, 0.2, 35.0, 0.1, 80, 1.0,
                                              'bicubic_aa'), 40.0))]  # projections are left out
    runs[0]['candidates'][0] = with_consistency(runs[0]['candidates'][0], 30.0)
    ranking = signal_ranking(runs, margin_db=0.05)
    sv = ranking['self-validation PSNR-Y (bicubic_aa)']
    lr = ranking['LR consistency PSNR(D(S), X), whole images']
    assert sv['rho_psnr'] == pytest.approx(1.0)
    assert (sv['harmful'], sv['gain_handed'], sv['gain_available']) == (0, 1, 1)
    assert lr['rho_psnr'] == pytest.approx(-0.5) and (lr['harmful'], lr['gain_handed']) == (1, 0)
    assert 'self-validation PSNR-Y (branch)' not in ranking  # not recorded


def test_a_rule_tried_lays_validated_gate_options_over_the_defaults(tmp_path):
    """--rule max_residual_gate=...: a run whose residual gate lies between the default and the tried value keeps
    the source under the defaults and hands back its gain under the tried rule, in a report of its own; an unknown
    key or a value of the wrong kind is refused."""
    import json
    default = product_rule()['max_residual_gate']
    run = record(candidate('iter 80', 25.4, 0.28, 30.5, 0.18, 80, 1.0), gate=default + 0.02)
    assert [r['chosen'] for r in evaluate([run], product_rule())['per_run']] == ['source']
    wider = product_rule({'max_residual_gate': default + 0.05})
    assert wider == dict(product_rule(), max_residual_gate=default + 0.05)
    assert [r['chosen'] for r in evaluate([run], wider)['per_run']] == ['iter 80']
    with pytest.raises(OptionError, match='did you mean gate.max_residual_gate'):
        product_rule({'max_residual_gat': 0.1})
    with pytest.raises(OptionError, match='must be'):
        product_rule({'max_residual_gate': 'high'})
    (tmp_path / 'runs').mkdir()
    (tmp_path / 'runs' / 'run.json').write_text(json.dumps(run))
    main(['--evaluate', '--out', str(tmp_path), '--rule', f'max_residual_gate={default + 0.05}'])
    tried = json.loads((tmp_path / f'selection_accuracy_max_residual_gate-{default + 0.05}.json').read_text())
    assert tried['result']['per_run'][0]['chosen'] == 'iter 80'
    assert not (tmp_path / 'selection_accuracy.json').exists()  # the defaults' report is not overwritten
    with pytest.raises(SystemExit, match='--rule: unknown option'):
        main(['--evaluate', '--out', str(tmp_path), '--rule', 'margin=0.1'])


def test_a_run_recorded_in_two_folders_counts_once_from_the_first(tmp_path):
    import json
    old, new = record(nm=None), record()
    for folder, run in (('old', old), ('new', new)):
        (tmp_path / folder / 'runs').mkdir(parents=True)
        (tmp_path / folder / 'runs' / 'set__m__hr_aware.json').write_text(json.dumps(run))
    (tmp_path / 'old' / 'runs' / 'other.json').write_text(json.dumps(old))
    assert load_records([tmp_path / 'new', tmp_path / 'old']) == [new, old]
