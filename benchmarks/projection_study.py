"""When the LR-consistency projection (``tta_sr.ops.back_projection``) of the source model helps, and whether a GT-free
signal can tell.

For each set (``lr/`` and ``gt/``) and the source model M_0 alone (no adaptation), every projection kind
(``bicubic_aa``, ``branch``) at every step count of ``--steps`` gets:
- its GT verdict on the whole images, against M_0's (``selection_accuracy.verdict``: a *gain* is PSNR-Y >= base +
  0.05 dB with LPIPS <= base + 0.002, *harm* PSNR-Y < base - 0.05 or LPIPS > base + 0.005);
- the GT-free signals the selector could use: its self-validation PSNR-Y gain over M_0 one scale down
  (``score_candidates``, reference ``bicubic_aa``); the same with the noise-matched input X_d' of ``selector.reference_pair``
  (X_d plus the centre crop of the high-pass of X's own LR residual X - D(M_0(X)): what the model removes from X,
  noise and JPEG included; the study in ``docs/adaptation.md`` was recorded before the high-pass and the clamp to
  [0, 1] were added); and, per set, the branch's degradation estimate (residual gate, blur sigma) and Donoho's MAD
  noise.

The images of a set are spread over it (every k-th of the sorted stems), so that sets built from one HR folder with
different seeds do not all hold the same photos. Writes ``<out>/projection_study.{json,md}``; a set recorded already
(``<out>/sets/<set>__<model>.json``) is read back, so an interrupted study resumes.

Example (the development sets of ``docs/adaptation.md``)::

    python benchmarks/projection_study.py --sets benchmarks/data/bsd68_mild_x4,benchmarks/data/bsd68_synth_x4 \
        --model realesr-animevideov3 --out benchmarks/runs/projection_dev
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

KINDS = ('bicubic_aa', 'branch')


def spread(pairs, n):
    """``n`` of the sorted ``pairs``, evenly spaced (all of them when n is 0 or larger than the set)."""
    if not n or n >= len(pairs):
        return pairs
    return [pairs[i * len(pairs) // n] for i in range(n)]


def noise_matched_gains(model, steps):
    """{steps: mean over the judged crops of PSNR-Y(P(M_0(X_d'), X_d'), X) - PSNR-Y(M_0(X_d'), X)}, P the neutral
    projection with that many steps and X_d' the noise-matched input of ``selector.reference_pair`` (the model's
    ``noise_matched_pairs``)."""
    import torch
    from tta_sr.models.candidates import Candidate
    from tta_sr.models.selector import psnr_y
    from tta_sr.ops.back_projection import back_project
    net, scale = model.candidate_net(Candidate()), model.opt['scale']
    gains = {k: [] for k in steps}
    with torch.no_grad():
        for noisy, x in model.noise_matched_pairs:
            out = net(noisy).float()
            base = float(psnr_y(out.clamp(0, 1), x)[0])
            for k in steps:
                gains[k].append(float(psnr_y(back_project(out, noisy, scale, k).clamp(0, 1), x)[0]) - base)
    return {k: sum(v) / len(v) for k, v in gains.items()}


def study_set(set_dir, args, logger):
    """The record of one set (module docstring)."""
    from compare import parse_config
    from run_options import build_tta_model, model_options
    from scoring import Scorer, image_pairs, read_gts
    from selection_accuracy import degradation_signals, gt_scores, model_signals, verdict
    from tta_sr.models.candidates import candidate_family
    name = os.path.basename(set_dir.rstrip('/'))
    _, cfg = parse_config(['--lr', os.path.join(set_dir, 'lr'), '--gt', os.path.join(set_dir, 'gt'),
                           '--model', args.model, '--methods', 'hr_aware', '--iters', '0', '--tile', '0',
                           '--max-images', '0', '--out', args.out])
    pairs = spread(image_pairs(cfg), args.max_images)
    opt, _ = model_options(cfg, 'hr_aware', pairs, os.path.join(args.out, 'work', name))
    opt['eval']['export'] = False
    model = build_tta_model(opt)
    family = candidate_family([], (), KINDS)  # the source, then its projection of each kind
    scorer, gts = Scorer(cfg, model.opt['scale'], metrics=('psnr_y', 'lpips')), read_gts(pairs)
    noise_matched = noise_matched_gains(model, args.steps)
    rows, outputs = [], {}  # the source's whole outputs, computed once for every step count
    for steps in args.steps:
        model.gate_opt['projection_steps'] = steps
        sv = model_signals(model, family, ['bicubic_aa'])['bicubic_aa']
        gt, _ = gt_scores(model, family, pairs, scorer, gts, outputs)
        for i, candidate in enumerate(family[1:], start=1):
            rows.append({'kind': candidate.projection, 'steps': steps, 'gt': gt[i], 'verdict': verdict(gt[i], gt[0]),
                         'd_psnr': gt[i]['psnr_y'] - gt[0]['psnr_y'], 'd_lpips': gt[i]['lpips'] - gt[0]['lpips'],
                         'sv_d_psnr': sv[i]['sv_psnr_y'] - sv[0]['sv_psnr_y'],
                         'sv_d_lpips': sv[i]['sv_lpips'] - sv[0]['sv_lpips'],
                         'noise_matched_d_psnr': (noise_matched[steps] if candidate.projection == 'bicubic_aa'
                                                  else None)})
    logger.info(f'{name}: ' + '; '.join(f'{r["kind"]} x{r["steps"]} {r["d_psnr"]:+.2f} dB / {r["d_lpips"]:+.4f} '
                                        f'({r["verdict"]})' for r in rows))
    return {'set': name, 'model': args.model, 'images': [p[0] for p in pairs], 'source': gt[0],
            **degradation_signals(model), 'rows': rows}


def report(records, max_gate):
    """Markdown lines: one row per set (sorted by residual gate) and the verdict counts of each projection on either
    side of the selector's ``max_residual_gate``."""
    variants = [(r['kind'], r['steps']) for r in records[0]['rows']]
    head = ' | '.join(f'{k} x{s}: GT ΔPSNR-Y / ΔLPIPS, self-val ΔPSNR-Y'
                      + (', noise-matched' if k == 'bicubic_aa' else '') for k, s in variants)
    lines = [f'| set | model | residual gate | MAD noise | {head} |', '| --- ' * (4 + len(variants)) + '|']
    for rec in sorted(records, key=lambda r: (r['model'], r['degradation']['residual_gate'])):
        cells = []
        for r in rec['rows']:
            nm = f', {r["noise_matched_d_psnr"]:+.2f}' if r['noise_matched_d_psnr'] is not None else ''
            cells.append(f'{r["d_psnr"]:+.2f} / {r["d_lpips"]:+.3f} **{r["verdict"]}**, {r["sv_d_psnr"]:+.2f}{nm}')
        lines.append(f'| {rec["set"]} | {rec["model"]} | {rec["degradation"]["residual_gate"]:.3f} | '
                     f'{rec["noise_mad"]:.2f} | ' + ' | '.join(cells) + ' |')
    lines += ['', f'Verdicts (gain / neutral / harm) with the residual gate at most {max_gate:g} and above it:', '']
    for i, (kind, steps) in enumerate(variants):
        counts = []
        for side in (True, False):
            verdicts = [rec['rows'][i]['verdict'] for rec in records
                        if (rec['degradation']['residual_gate'] <= max_gate) == side]
            counts.append('/'.join(str(verdicts.count(v)) for v in ('gain', 'neutral', 'harm')))
        lines.append(f'- {kind} x{steps}: {counts[0]} at most, {counts[1]} above')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sets', required=True, help='comma list of set folders, each with lr/ and gt/')
    parser.add_argument('--model', default='realesr-animevideov3', help='SR model (manifest name)')
    parser.add_argument('--steps', default='1,3', help='comma list of back-projection step counts')
    parser.add_argument('--max-images', type=int, default=6, help='images per set, spread over it (0: all)')
    parser.add_argument('--out', required=True, help='output folder')
    args = parser.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(',')]
    import json
    from records import dump_json, setup_logging, write_records
    from tqdm import tqdm
    from tta_sr.options.stage2 import GATE
    logger = setup_logging(args.out)
    records = []
    for set_dir in tqdm(args.sets.split(','), desc='projection study', unit='set'):
        path = os.path.join(args.out, 'sets', f'{os.path.basename(set_dir.rstrip("/"))}__{args.model}.json')
        if os.path.isfile(path):
            with open(path) as f:
                records.append(json.load(f))
            continue
        records.append(study_set(set_dir, args, logger))
        dump_json(path, records[-1])
    lines = ['# The projection of the source model, per set', ''] + report(records, GATE.default('max_residual_gate'))
    write_records(args.out, 'projection_study', {'sets': records}, lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
