"""How well the GT-free selector (``tta_sr.models.selector``) chooses what an adaptation run hands back.

Over a grid of runs (sets x methods x learning rates; the iterations are the checkpoints every
``--candidate-every`` iterations of each run), each run is trained as ``benchmarks/compare.py`` trains it (same
sampler, preset and options), then every candidate of ``tta_sr.models.candidates`` (the source, every checkpoint, the
blends of the last one, each with every projection kind) gets:
- its GT-free signals: downscaled self-validation PSNR-Y and LPIPS for each reference (``bicubic_aa``, ``branch``),
  computed by the model's own ``score_candidates`` on its bounded set of LR crops; the branch's degradation estimate
  (``tta_sr.models.selector.degradation_estimate``) and, for comparison, a plain noise estimate of the crops (Donoho's
  MAD of the finest Haar band); and the full-scale LR consistency PSNR(D(S), X) of its whole outputs;
- its GT verdict on the whole images: a *gain* is PSNR-Y >= base + 0.05 dB and LPIPS <= base + 0.002, a *harm*
  PSNR-Y < base - 0.05 or LPIPS > base + 0.005 (base: the source model).

``--evaluate`` reads the records (``<out>/runs/*.json``, and ``--include`` folders) and applies a selection rule,
the product's :func:`tta_sr.models.selector.choose` with a reference, thresholds and candidate kinds; it prints the
harmful hand-backs, the share of runs with a GT gain available where a gain was handed back, and the regret (mean
PSNR-Y of the GT-best non-harmful candidate minus the chosen one's), and how each GT-free signal alone ranks the
weight candidates (its rank correlation with the GT, and the verdicts of handing back its first choice). ``--tune``
searches the rule on the records given (development sets only) and prints the best rules; ``--rule KEY=VALUE``
evaluates the defaults with a ``gate`` option changed (a rule tried, e.g. ``--rule max_residual_gate=0.1``).

Example (development sets, the compact model)::

    python benchmarks/selection_accuracy.py --sets benchmarks/data/bsd68_mild_x4,benchmarks/data/city100_dev_x4 \
        --model realesr-animevideov3 --methods hr_aware,lway --lrs 5e-6,2e-5 --out benchmarks/runs/selection_dev
    python benchmarks/selection_accuracy.py --evaluate --tune --out benchmarks/runs/selection_dev
"""
import argparse
import dataclasses
import gc
import glob
import itertools
import json
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GAIN_PSNR, GAIN_LPIPS, HARM_PSNR, HARM_LPIPS = 0.05, 0.002, 0.05, 0.005
REFERENCES = ('bicubic_aa', 'branch', 'noise_matched')
PROJECTIONS = ('bicubic_aa', 'branch')


def verdict(gt, base):
    """'gain', 'harm' or 'neutral' of a candidate's GT scores against the source's (module docstring)."""
    if gt['psnr_y'] < base['psnr_y'] - HARM_PSNR or gt['lpips'] > base['lpips'] + HARM_LPIPS:
        return 'harm'
    if gt['psnr_y'] >= base['psnr_y'] + GAIN_PSNR and gt['lpips'] <= base['lpips'] + GAIN_LPIPS:
        return 'gain'
    return 'neutral'


# ---------------------------------------------------------------------------------------------------- one run
def mad_noise(x):
    """Noise estimate of an LR crop (1, 3, H, W) in 8-bit levels: Donoho's MAD of the finest Haar diagonal band of Y,
    median(|(a - b - c + d) / 2|) / 0.6745 over 2 x 2 blocks [[a, b], [c, d]] (recorded to compare with the branch's
    estimate; textures raise it as much as noise does)."""
    import torch
    from tta_sr.models.selector import Y_WEIGHTS
    y = (x * torch.tensor(Y_WEIGHTS, dtype=x.dtype).view(1, 3, 1, 1) * 255).sum(1)[0]
    y = y[:y.shape[0] // 2 * 2, :y.shape[1] // 2 * 2]
    return float(((y[0::2, 0::2] - y[0::2, 1::2] - y[1::2, 0::2] + y[1::2, 1::2]) / 2).abs().median() / 0.6745)


def degradation_signals(model):
    """The branch's estimate (``model.degradation``) and the MAD noise of the judged crops."""
    crops = [x for _, x in model.reference_pairs]
    return {'degradation': model.degradation, 'noise_mad': sum(map(mad_noise, crops)) / len(crops)}


def model_signals(model, family, references):
    """{reference: [candidate row with sv_psnr_y, sv_lpips]} by the model's own scoring. The noise-matched check is
    off meanwhile: its score is the ``noise_matched`` reference's sv_psnr_y, so scoring it beside every reference
    would repeat that work. The model's gate options and cached pairs are as before when it returns."""
    def forget_pairs():  # the cached (X_d, X) of another reference or check setting
        for cached in ('reference_pairs', 'noise_matched_pairs'):
            model.__dict__.pop(cached, None)
    gate_opt, signals = dict(model.gate_opt), {}
    model.gate_opt['max_noise_matched_loss_db'] = None
    for reference in references:
        model.gate_opt['reference'] = reference
        forget_pairs()
        signals[reference] = model.score_candidates(family)
    model.gate_opt.update(gate_opt)
    forget_pairs()
    return signals


def gt_scores(model, family, pairs, scorer, gts, outputs=None):
    """(rows, output blends): per candidate, GT PSNR-Y and LPIPS of its whole outputs and their LR consistency
    PSNR(D(S), X) in dB; and the same for the output-space blends S_0 + a (S - S_0) of the source and the last
    checkpoint, one per ``gate.alphas`` (to set beside the weight-space blends). The net runs once per weights; each
    projection is applied to those whole outputs (tile 0: what ``BackProjected`` gives an untiled image).
    ``outputs``: a dict {(iteration, alpha): {stem: output}} that is filled and reused, so that calls with other
    projection settings on the same model and images run no net again."""
    import torch
    from tta_sr.models.selector import psnr_y
    from tta_sr.ops.back_projection import back_project
    from tta_sr.ops.downscalers import downscale
    from tta_sr.utils.image_io import read_image, to_tensor
    lrs = {stem: to_tensor(read_image(lr)[0], model.device) for stem, lr, _ in pairs}
    net, rows, scale = None, [], model.opt['scale']
    outputs = {} if outputs is None else outputs
    last, output_blends = max((c.iteration or 0) for c in family), []

    def score(srs):
        scores = scorer.score_images({s: t[0].permute(1, 2, 0).cpu().numpy() for s, t in srs.items()}, gts)
        consistency = [float(psnr_y(downscale(sr, scale, 'bicubic_aa').clamp(0, 1), lrs[stem])[0])
                       for stem, sr in srs.items()]
        return {name: value['mean'] for name, value in scores.items()} | \
            {'lr_consistency': sum(consistency) / len(consistency)}
    for candidate in family:
        key = (candidate.iteration, candidate.alpha)
        if key not in outputs:  # kept for the projections that come later in the family
            net = model.candidate_net(dataclasses.replace(candidate, projection=None), net)
            outputs[key] = {stem: to_tensor(img, model.device) for stem, img in scorer.upscale_all(net, pairs).items()}
        srs = outputs[key]
        if candidate.projection:
            with torch.no_grad():
                srs = {stem: back_project(sr, lrs[stem], scale, model.gate_opt['projection_steps'],
                                          model.degrader(candidate.projection)(lrs[stem])
                                          if candidate.projection == 'branch' else None).clamp(0, 1)
                       for stem, sr in srs.items()}
        if candidate.is_source:
            source_srs = srs
        rows.append(score(srs))
        if candidate.iteration == last and candidate.alpha == 1 and not candidate.projection:
            output_blends = [dict(score({s: source_srs[s] + a * (srs[s] - source_srs[s]) for s in srs}), alpha=a)
                             for a in model.gate_opt['alphas']]
    return rows, output_blends


def run_one(cfg, method, logger):
    """Train one run as compare.py does, score every candidate; returns its record."""
    import torch
    from compare import train_with_candidates
    from run_options import build_tta_model, model_options
    from sampling import make_sampler
    from scoring import image_pairs
    pairs = image_pairs(cfg)
    opt, _ = model_options(cfg, method, pairs, os.path.join(cfg['out'], 'work', method))
    opt['eval']['export'] = False
    opt['gate'] = dict(opt.get('gate') or {}, enabled=True)
    torch.manual_seed(cfg['seed'])
    model = build_tta_model(opt)
    times, losses = [], []
    train_with_candidates(model, make_sampler(opt, cfg), cfg, times, losses)
    record = candidate_record(model, cfg, method, pairs, sum(times), logger)
    del model
    gc.collect()
    return record


def candidate_record(model, cfg, method, pairs, train_s, logger):
    """The record of a trained model (its checkpoints kept): every candidate's signals, GT scores and verdict."""
    from scoring import Scorer, read_gts
    from tta_sr.models.candidates import candidate_family
    references = [r for r in REFERENCES if r != 'branch' or model.net_recon is not None]
    projections = [p for p in PROJECTIONS if p != 'branch' or model.net_recon is not None]
    family = candidate_family(list(model.checkpoints), model.gate_opt['alphas'], projections)
    t0 = time.perf_counter()
    signals = model_signals(model, family, references)
    signal_s = time.perf_counter() - t0
    gt, output_blends = gt_scores(model, family, pairs, Scorer(cfg, model.opt['scale'], metrics=('psnr_y', 'lpips')),
                                  read_gts(pairs))
    rows = [dict(candidate.as_dict(), gt=gt[i], verdict=verdict(gt[i], gt[0]),
                 sv={r: {k: signals[r][i][k] for k in ('sv_psnr_y', 'sv_lpips')} for r in references})
            for i, candidate in enumerate(family)]
    logger.info(f'[{method}] {len(family)} candidates; train {train_s:.0f} s, signals {signal_s:.0f} s')
    return {'set': os.path.basename(os.path.dirname(cfg['lr_dir'].rstrip('/'))), 'method': method, 'model': cfg['model'],
            'lr_dir': cfg['lr_dir'], 'lr': cfg['learning_rate'], 'iters': cfg['iters'], 'images': [p[0] for p in pairs],
            **degradation_signals(model),
            'train_s': train_s, 'signal_s': signal_s, 'signal_s_per_candidate': signal_s / len(family) / len(references),
            'candidates': rows, 'output_blends': output_blends}


def record_name(set_dir, model, method, lr, iters):
    return f'{os.path.basename(set_dir.rstrip("/"))}__{model}__{method}__lr{lr:g}__it{iters}'


def run_grid(args):
    from compare import parse_config
    from records import dump_json, setup_logging
    logger = setup_logging(args.out)
    grid = list(itertools.product(args.sets.split(','), args.methods.split(','), args.lrs.split(',')))
    from tqdm import tqdm
    for set_dir, method, lr in tqdm(grid, desc='selection grid', unit='run'):
        name = record_name(set_dir, args.model, method, float(lr), args.iters)
        path = os.path.join(args.out, 'runs', f'{name}.json')
        if os.path.isfile(path):
            logger.info(f'{name}: recorded already, skipped')
            continue
        argv = ['--lr', os.path.join(set_dir, 'lr'), '--gt', os.path.join(set_dir, 'gt'), '--model', args.model,
                '--methods', method, '--learning-rate', lr, '--iters', str(args.iters), '--seed', str(args.seed),
                '--out', args.out, '--tile', '0', '--max-images', str(args.max_images)] + \
            (['--candidate-every', str(args.candidate_every)] if args.candidate_every else []) + \
            [f'--set={item}' for item in args.overrides]
        _, cfg = parse_config(argv)
        record = run_one(cfg, method, logger)
        record['command'] = 'python ' + ' '.join([os.path.relpath(__file__)] + sys.argv[1:])
        dump_json(path, record)


# ---------------------------------------------------------------------------------------------------- evaluation
def load_records(folders):
    """The records of ``<folder>/runs/*.json``; a run recorded in several folders (the same file name) counts once,
    from the first of them, so that a run recorded again goes before the folder of its older record."""
    records, seen = [], set()
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(folder, 'runs', '*.json'))):
            if os.path.basename(path) not in seen:
                seen.add(os.path.basename(path))
                with open(path) as f:
                    records.append(json.load(f))
    return records


def product_rule(overrides=None):
    """The rule of the product's declared defaults (``tta_sr.options.stage2.GATE``), with ``overrides`` ({gate key:
    value}, validated by that schema) laid over them."""
    from tta_sr.options.schema import resolve
    from tta_sr.options.stage2 import GATE
    gate = resolve(GATE, overrides or {}, 'gate')
    d = {k: gate[k] for k in ('reference', 'margin_db', 'max_lpips_increase', 'lpips_per_db',
                              'max_noise_matched_loss_db', 'max_residual_gate', 'projection', 'checkpoints')}
    return dict(d, projection=tuple(d['projection']))


def offered(record, rule):
    """The candidates of a record that the rule's family holds (its projection kinds; all checkpoints or the last)."""
    last = max(c['iteration'] or 0 for c in record['candidates'])
    return [c for c in record['candidates'] if (c['projection'] is None or c['projection'] in rule['projection'])
            and (rule['checkpoints'] or c['iteration'] in (None, last))]


def select(record, rule):
    """Index (into record['candidates']) of the candidate the rule hands back, or None when a score the rule reads
    (its reference, the noise-matched check's) was not recorded."""
    from tta_sr.models.selector import choose, distrust_reason
    rows = offered(record, rule)
    check = rule['max_noise_matched_loss_db'] is not None
    if rule['reference'] not in rows[0]['sv'] or (check and 'noise_matched' not in rows[0]['sv']):
        # the source is kept before any score is read where the residual gate distrusts the LR
        return 0 if distrust_reason(record['degradation'], rule) else None
    scored = [dict(c, **c['sv'][rule['reference']],
                   nm_psnr_y=c['sv']['noise_matched']['sv_psnr_y'] if check else None) for c in rows]
    chosen, _ = choose(scored, rule, record['degradation'])
    return record['candidates'].index(rows[chosen])


def evaluate(records, rule):
    """{'runs', 'harmful', 'gain_available', 'gain_handed', 'regret_db', 'per_run'} of a rule over the records,
    against every recorded candidate (projections included); the same three with ``_offered`` against the candidates
    the rule's family holds (``offered``)."""
    per_run, harmful, counts, regrets = [], 0, {'': [0, 0], '_offered': [0, 0]}, {'': [], '_offered': []}
    for record in records:
        i = select(record, rule)
        if i is None:
            continue
        cands = record['candidates']
        chosen = cands[i]
        harmful += chosen['verdict'] == 'harm'
        bests = {}
        for suffix, pool in (('', cands), ('_offered', offered(record, rule))):
            safe = [c for c in pool if c['verdict'] != 'harm']
            bests[suffix] = max(safe, key=lambda c: c['gt']['psnr_y'])  # the GT-best of the pool
            has_gain = any(c['verdict'] == 'gain' for c in safe)
            counts[suffix][0] += has_gain
            counts[suffix][1] += has_gain and chosen['verdict'] == 'gain'
            regrets[suffix].append(bests[suffix]['gt']['psnr_y'] - chosen['gt']['psnr_y'])
        best = bests['']
        per_run.append({'set': record['set'], 'method': record['method'], 'model': record['model'], 'lr': record['lr'],
                        'chosen': chosen['name'], 'verdict': chosen['verdict'], 'gt_best': best['name'],
                        'd_psnr': chosen['gt']['psnr_y'] - cands[0]['gt']['psnr_y'],
                        'd_lpips': chosen['gt']['lpips'] - cands[0]['gt']['lpips'],
                        'best_d_psnr': best['gt']['psnr_y'] - cands[0]['gt']['psnr_y'],
                        'best_d_lpips': best['gt']['lpips'] - cands[0]['gt']['lpips'],
                        'residual_gate': (record['degradation'] or {}).get('residual_gate', math.nan),
                        'noise_mad': record['noise_mad']})
    n, result = len(per_run), {'runs': len(per_run), 'harmful': harmful, 'per_run': per_run}
    for suffix, (available, handed) in counts.items():
        result.update({f'gain_available{suffix}': available, f'gain_handed{suffix}': handed,
                       f'gain_share{suffix}': handed / available if available else math.nan,
                       f'regret{suffix}_db': sum(regrets[suffix]) / n if n else math.nan})
    return result


SIGNALS = {  # GT-free scores of a candidate in a record, higher meaning better
    'self-validation PSNR-Y (bicubic_aa)': lambda c: c['sv'].get('bicubic_aa', {}).get('sv_psnr_y'),
    'self-validation PSNR-Y (branch)': lambda c: c['sv'].get('branch', {}).get('sv_psnr_y'),
    'self-validation PSNR-Y (noise_matched)': lambda c: c['sv'].get('noise_matched', {}).get('sv_psnr_y'),
    'LR consistency PSNR(D(S), X), whole images': lambda c: c['gt'].get('lr_consistency'),
}


def rank_correlation(a, b):
    """Spearman's rank correlation of two equal-length sequences (tied values share their mean rank); NaN when
    either is flat."""
    import numpy as np

    def ranks(x):
        x = np.asarray(x, dtype=float)
        r = np.empty(len(x))
        r[np.argsort(x, kind='stable')] = np.arange(len(x))
        for value in np.unique(x):
            r[x == value] = r[x == value].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def signal_ranking(records, margin_db):
    """{signal: {'rho_psnr', 'rho_lpips', 'runs', 'harmful', 'gain_available', 'gain_handed'}} over the weight
    candidates (no projection) of each record: the median over records of the signal's rank correlation with the GT
    PSNR-Y and with the GT LPIPS, and the GT verdicts of the plainest rule on it alone: hand back the candidate it
    ranks first when that beats the source's score by ``margin_db``, else the source."""
    import numpy as np
    out = {}
    for name, score in SIGNALS.items():
        rhos, verdicts, available = [], [], 0
        for record in records:
            weights = [c for c in record['candidates'] if c['projection'] is None]
            scores = [score(c) for c in weights]
            if len(weights) < 2 or any(v is None for v in scores):
                continue
            rhos.append((rank_correlation(scores, [c['gt']['psnr_y'] for c in weights]),
                         rank_correlation(scores, [c['gt']['lpips'] for c in weights])))
            best = int(np.argmax(scores))
            chosen = weights[best] if scores[best] >= scores[0] + margin_db else weights[0]
            verdicts.append(chosen['verdict'])
            available += any(c['verdict'] == 'gain' for c in weights)
        if rhos:
            rho = np.nanmedian(np.array(rhos), axis=0)
            out[name] = {'rho_psnr': float(rho[0]), 'rho_lpips': float(rho[1]), 'runs': len(verdicts),
                         'harmful': verdicts.count('harm'), 'gain_available': available,
                         'gain_handed': verdicts.count('gain')}
    return out


def common_records(records):
    """The records that hold every self-validation reference any of them holds, so that every rule is judged on
    the same runs (a rule that reads a score a record lacks would skip that run)."""
    seen = set().union(*(r['candidates'][0]['sv'] for r in records))
    return [r for r in records if set(r['candidates'][0]['sv']) >= seen]


def tune(records):
    """Every rule of a small grid, ranked: no harmful hand-back first, then the share of gains handed back, then
    the regret; ``records``: :func:`common_records`' ones."""
    results = []
    for reference, margin, lpips, per_db, nm_loss, gate, projection, checkpoints in itertools.product(
            REFERENCES, (0.0, 0.05, 0.1, 0.2, 0.3), (-0.005, -0.002, 0.0, 0.002), (0.0, 0.005, 0.01, 0.02),
            (None, 0.0, 0.05), (0.01, 0.02, 0.05, 0.1, 0.2, 1.0), ((), ('bicubic_aa',), ('branch',), PROJECTIONS),
            (True, False)):
        rule = {'reference': reference, 'margin_db': margin, 'max_lpips_increase': lpips, 'lpips_per_db': per_db,
                'max_noise_matched_loss_db': nm_loss, 'max_residual_gate': gate, 'projection': projection,
                'checkpoints': checkpoints}
        result = evaluate(records, rule)
        if result['runs']:
            results.append((rule, result))
    results.sort(key=lambda rr: (rr[1]['harmful'], -rr[1]['gain_share'] if rr[1]['gain_share'] == rr[1]['gain_share']
                                 else 0, rr[1]['regret_db']))
    return results


def rule_text(rule):
    noise = ('' if rule.get('max_noise_matched_loss_db') is None else
             f'noise-matched loss at most {rule["max_noise_matched_loss_db"]:g} dB, ')
    return (f'reference {rule["reference"]}, margin {rule["margin_db"]} dB, LPIPS within {rule["max_lpips_increase"]:+} '
            f'and {rule["lpips_per_db"]:g} lower per dB, {noise}'
            f'trusted up to residual gate {rule["max_residual_gate"]:g}, projection {",".join(rule["projection"]) or "none"}, '
            f'checkpoints {"all" if rule["checkpoints"] else "last only"}')


def report_lines(title, result, rule):
    lines = [f'## {title}', '', f'rule: {rule_text(rule)}', '',
             f'- runs: {result["runs"]}; harmful hand-backs: **{result["harmful"]}**; a GT gain available in '
             f'{result["gain_available"]}, handed back in {result["gain_handed"]} '
             f'(**{100 * result["gain_share"]:.0f}%**); mean regret **{result["regret_db"]:.3f} dB** PSNR-Y (against '
             f'every recorded candidate, projections included)',
             f'- against the candidates this rule offers: a gain available in {result["gain_available_offered"]}, '
             f'handed back in {result["gain_handed_offered"]} ({100 * result["gain_share_offered"]:.0f}%); mean regret '
             f'{result["regret_offered_db"]:.3f} dB', '',
             '| set | model | method | lr | handed back | GT verdict | ΔPSNR-Y | ΔLPIPS | GT-best | its ΔPSNR-Y / ΔLPIPS '
             '| residual gate | MAD noise |', '| --- ' * 12 + '|']
    for r in result['per_run']:
        lines.append(f'| {r["set"]} | {r["model"]} | {r["method"]} | {r["lr"]:g} | {r["chosen"]} | {r["verdict"]} | '
                     f'{r["d_psnr"]:+.2f} | {r["d_lpips"]:+.4f} | {r["gt_best"]} | {r["best_d_psnr"]:+.2f} / '
                     f'{r["best_d_lpips"]:+.4f} | {r["residual_gate"]:.3f} | {r["noise_mad"]:.2f} |')
    return lines


def run_evaluation(args):
    from presets import parse_overrides
    from records import write_records
    records = load_records([args.out] + args.include)
    if not records:
        raise SystemExit(f'no records in {args.out}/runs (run the grid first)')
    from tta_sr.options.schema import OptionError
    try:
        rule = product_rule(parse_overrides(args.rule, '--rule', 'max_residual_gate=0.1'))
    except OptionError as error:
        raise SystemExit(f'--rule: {error}')
    result = evaluate(records, rule)
    title = "the product's rule (defaults" + ''.join(f', {item}' for item in args.rule) + ')'
    lines = [f'# Selection accuracy over {len(records)} runs', ''] + report_lines(title, result, rule)
    ranking = signal_ranking(records, rule['margin_db'])
    lines += ['', '## each GT-free signal alone, over the weight candidates', '',
              '| signal | rank correlation with GT PSNR-Y (median) | with GT LPIPS | its first choice: harmful | '
              'gains handed back |', '| --- | --- | --- | --- | --- |']
    lines += [f'| {name} | {r["rho_psnr"]:+.2f} | {r["rho_lpips"]:+.2f} | {r["harmful"]} of {r["runs"]} | '
              f'{r["gain_handed"]} of {r["gain_available"]} |' for name, r in ranking.items()]
    record = {'rule': rule, 'result': result, 'signals': ranking}
    if args.tune:
        common = common_records(records)
        ranked = tune(common)
        lines += ['', f'## best rules on the {len(common)} runs that recorded every reference (--tune)', '',
                  '| rule | harmful | gains handed back | regret (dB) |', '| --- | --- | --- | --- |']
        for rule_, res in ranked[:args.top]:
            lines.append(f'| {rule_text(rule_)} | {res["harmful"]} | {res["gain_handed"]}/{res["gain_available"]} | '
                         f'{res["regret_db"]:.3f} |')
        record['tuned'] = [{'rule': r, **{k: v for k, v in res.items() if k != 'per_run'}} for r, res in ranked[:args.top]]
    stem = 'selection_accuracy' + ''.join('_' + re.sub(r'[^\w.-]', '-', item) for item in args.rule)
    write_records(args.out, stem, record, lines)  # a rule tried does not overwrite the defaults' report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder: runs/<run>.json, selection_accuracy.{json,md}')
    parser.add_argument('--sets', help='comma list of set folders, each with lr/ and gt/')
    parser.add_argument('--model', default='RealESRGAN_x4plus', help='SR model (manifest name)')
    parser.add_argument('--methods', default='hr_aware', help='comma list of HRAwareTTAModel modes')
    parser.add_argument('--lrs', default='5e-6', help='comma list of Adam learning rates')
    parser.add_argument('--iters', type=int, default=80, help='iterations per run (the cpu preset\'s 80)')
    parser.add_argument('--candidate-every', type=int, default=None, help='checkpoint interval (preset: 20)')
    parser.add_argument('--max-images', type=int, default=5, help='images per set (0: all)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='option override for every run (as compare.py --set)')
    parser.add_argument('--evaluate', action='store_true', help='evaluate the records instead of running the grid')
    parser.add_argument('--include', nargs='*', default=[], help='more record folders to evaluate with --out\'s')
    parser.add_argument('--rule', action='append', default=[], metavar='KEY=VALUE',
                        help='with --evaluate: a gate option laid over the defaults, e.g. max_residual_gate=0.1')
    parser.add_argument('--tune', action='store_true', help='with --evaluate: rank rules on these records')
    parser.add_argument('--top', type=int, default=10, help='rules listed by --tune')
    args = parser.parse_args(argv)
    if args.evaluate:
        run_evaluation(args)
    else:
        if not args.sets:
            parser.error('--sets is required to run the grid')
        run_grid(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
