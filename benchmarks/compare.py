"""Compare base / rec_only / lway / hr_aware test-time adaptation of one SR model on one LR/GT set
(the HR-aware paper's Table 1, at the scale the preset allows).

For each TTA method an HRAwareTTAModel is built in-process from an option dict (as ``parse_options``
would make it; the model writes its base outputs into ``<out>/runs/<method>/results/base`` at init),
trained ``--iters`` iterations on the SAME LR crops (private seeded sampler), the same batch size,
learning rate and seed; GT is used for scoring only. Then the full LR images are upscaled (tiled) by the
adapted net (the EMA copy when ``--ema`` > 0, else the raw net) and scored: PSNR-Y, SSIM, LPIPS, NIQE.
``base`` is M before adaptation (the model's own base export).
lway uses ``--lway-branch`` (LWay's stage 1), hr_aware ``--branch``, rec_only ``--lway-branch``.
``srtta`` is an SRTTAModel (``options/tta/srtta_<model>.yml``): per image, reset to M, the classifier's types,
``--srtta-iters`` steps of ``--srtta-batch`` patches of ``--srtta-patch`` (the preset's srtta budget), then
that image is upscaled; its per-image seconds (adaptation, and total with the upscale) are recorded.

Writes ``<out>/results.json`` (method -> metric -> mean and per image, s/iter, peak memory, settings;
methods from earlier runs into the same --out are kept unless rerun), ``results.md`` and ``results.png``.

Example (2 CPU cores, about 20 minutes)::

    python benchmarks/datasets.py
    python benchmarks/compare.py --lr benchmarks/data/city100_x4_c480/lr --gt benchmarks/data/city100_x4_c480/gt \
        --model RealESRGAN_x4plus --methods base,rec_only,lway,hr_aware --seed 0 --preset cpu \
        --out benchmarks/runs/city100_realesrgan_cpu
"""
import argparse
import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from presets import ALL_METHODS, METHOD_COLORS, add_run_args, resolve_args  # noqa: E402
from records import branch_record, dump_json, machine_info, merge_results, run_settings, setup_logging  # noqa: E402
from run_options import build_tta_model, model_options, srtta_options  # noqa: E402
from sampling import make_sampler  # noqa: E402
from scoring import METRICS, Scorer, eval_net, image_pairs, read_folder, read_gts  # noqa: E402
from timing import PeakMemory, summary, train_steps  # noqa: E402

LABELS = {'base': 'base (no TTA)', 'rec_only': 'rec_only (L_rec, LWay branch)', 'lway': 'LWay',
          'hr_aware': 'HR-aware (ours)', 'fixed': 'fixed (known degradation, headroom)', 'srtta': 'SRTTA (per image)'}
ARROWS = {'psnr_y': 'PSNR-Y ↑', 'ssim': 'SSIM ↑', 'lpips': 'LPIPS ↓', 'niqe': 'NIQE ↓'}


def run_method(cfg, method, pairs, scorer, gts, logger, score_base):
    """Adapt, time, measure and score one TTA method; returns its result dict and the base outputs.
    ``score_base(outputs)``: the base outputs' scores, which a method whose selector kept the source ends with."""
    import torch
    root = os.path.join(cfg['out'], 'runs', method)
    opt, branch_path = model_options(cfg, method, pairs, root)
    torch.manual_seed(cfg['seed'])
    t_build = time.perf_counter()
    model = build_tta_model(opt)
    t_build = time.perf_counter() - t_build
    sampler = make_sampler(opt, cfg)
    times, losses = [], []
    logger.info(f'[{method}] training {cfg["iters"]} iterations')
    with PeakMemory(cfg['device']) as mem:
        train_with_candidates(model, sampler, cfg, times, losses)
    srs = scorer.upscale_all(eval_net(model, cfg), pairs, os.path.join(root, 'results', 'adapted'))
    scores = scorer.score_images(srs, gts)
    if not os.path.isdir(os.path.join(root, 'results', 'base')):
        raise RuntimeError(f'{root}/results/base missing: the model did not export its base outputs')
    base = read_folder(os.path.join(root, 'results', 'base'), pairs)
    if cfg.get('score_candidates') and model.gate_opt['enabled']:
        from records import dump_json
        from selection_accuracy import candidate_record, record_name
        record = candidate_record(model, cfg, method, pairs, sum(times), logger)
        dump_json(os.path.join(cfg['out'], 'selection', 'runs', record_name(
            os.path.dirname(cfg['lr_dir'].rstrip('/')), cfg['model'], method, cfg['learning_rate'], cfg['iters']) +
            '.json'), record)
    t_select = time.perf_counter()
    model.select_hand_back()  # on the LR images alone
    t_select = time.perf_counter() - t_select
    result = {'metrics': scores, 's_per_iter': summary(times), 'peak_mb': mem.peak_mb,
              'peak_delta_mb': mem.delta_mb, 'build_s': t_build, 's_per_image': sum(times) / len(pairs),
              'train_s': sum(times), 'select_s': t_select, 'branch': branch_record(branch_path),
              'loss_first': losses[0] if losses else None, 'loss_last': losses[-1] if losses else None,
              'loss_curve': losses, 'steps_skipped': getattr(getattr(model, 'health', None), 'skipped', None),
              'scored_net': 'net_g_ema' if cfg['ema_decay'] > 0 else 'net_g',
              'lpips_in_loss': getattr(model.cri_rec, 'lpips_name', None), 'gate': model.gate_result}
    if model.gate_result:
        result['metrics_before_gate'] = scores  # the full adaptation; the method ends with what the selector chose
        result['metrics'] = score_base(base) if model.gate_result['decision'] == 'source' else scorer.score_images(
            scorer.upscale_all(model.output_net(), pairs, os.path.join(root, 'results', 'handed_back')), gts)
    del model
    gc.collect()
    return result, base


def train_with_candidates(model, sampler, cfg, times, losses):
    """``cfg['iters']`` steps, keeping the weights every ``cfg['candidate_every']`` iterations (and at the end) as
    the selector's checkpoints, as a run's validations would."""
    every = cfg['candidate_every'] or cfg['iters']
    for start in range(0, cfg['iters'], every):
        stop = min(start + every, cfg['iters'])
        train_steps(model, sampler, start, stop, cfg['device'], times, losses)
        model.record_candidate(stop)


def fmt(metric, value):
    return f'{value:.2f}' if metric == 'psnr_y' else f'{value:.4f}' if metric in ('ssim', 'lpips') else f'{value:.3f}'


def run_srtta(cfg, pairs, scorer, gts, logger):
    """SRTTA on each image in turn (the model resets itself per image); returns its result dict and the base outputs."""
    import random
    import numpy as np
    import torch
    root = os.path.join(cfg['out'], 'runs', 'srtta')
    opt = srtta_options(cfg, pairs, root)
    random.seed(cfg['seed'])
    np.random.seed(cfg['seed'])
    torch.manual_seed(cfg['seed'])
    t_build = time.perf_counter()
    model = build_tta_model(opt)  # writes results/base, estimates the Fisher masks
    t_build = time.perf_counter() - t_build
    from tta_sr.utils.image_io import read_image, to_tensor
    logger.info(f'[srtta] {cfg["srtta"]["iters"]} steps per image on {len(pairs)} images')
    with PeakMemory(cfg['device']) as mem:
        for it, (stem, lr_path, _) in enumerate(pairs, start=1):
            model.feed_data({'lq': to_tensor(read_image(lr_path)[0]), 'lq_path': [lr_path]})
            model.optimize_parameters(it)  # adapts, then writes results/adapted/<stem>.png
    logs = model.image_log
    fisher_share = model.fisher_seconds / len(pairs)
    srs = read_folder(os.path.join(root, 'results', 'adapted'), pairs)
    result = {'metrics': scorer.score_images(srs, gts), 's_per_iter': summary(model.step_times) if model.step_times else None,
              's_per_image': float(np.mean([logs[s]['adapt_s'] for s, _, _ in pairs])) + fisher_share,
              'total_s_per_image': {s: logs[s]['total_s'] + fisher_share for s, _, _ in pairs},
              'fisher_s': model.fisher_seconds, 'peak_mb': mem.peak_mb, 'peak_delta_mb': mem.delta_mb,
              'build_s': t_build, 'budget': dict(cfg['srtta']), 'types': {s: logs[s]['types'] for s, _, _ in pairs},
              'loss_curve': [v for _, v in model.history['l_srtta']], 'scored_net': 'net_g (8-bit PNG output)',
              'classifier': model.report_extra()['classifier'], 'trainable': opt['train'].get('trainable')}
    base = read_folder(os.path.join(root, 'results', 'base'), pairs)
    del model
    gc.collect()
    return result, base


def write_markdown(path, results, cfg):
    methods = [m for m in ALL_METHODS if m in results['methods']]
    metric_names = [m for m in METRICS if any(m in results['methods'][x]['metrics'] for x in methods)]
    lines = [f'# {cfg["model"]} on `{cfg["lr_dir"]}`', '',
             '| method | ' + ' | '.join(ARROWS[m] for m in metric_names) +
             ' | handed back | full adaptation (PSNR-Y / LPIPS) | s/iter | s/image | selection s | peak MB |',
             '| --- ' * (len(metric_names) + 7) + '|']
    for m in methods:
        r = results['methods'][m]
        cells = [fmt(name, r['metrics'][name]['mean']) for name in metric_names]
        gate = r.get('gate') or {}
        gate_cell = gate.get('chosen', '—')
        before = r.get('metrics_before_gate')
        before_cell = (f'{fmt("psnr_y", before["psnr_y"]["mean"])} / {fmt("lpips", before["lpips"]["mean"])}'
                       if before and 'lpips' in before else '—')
        spi = f'{r["s_per_iter"]["median"]:.2f}' if r.get('s_per_iter') else '—'
        peak = f'{r["peak_mb"]:.0f}' if r.get('peak_mb') else '—'
        spim = f'{r["s_per_image"]:.1f}' if r.get('s_per_image') else '—'
        sel = f'{r["select_s"]:.0f}' if r.get('select_s') else '—'
        lines.append(f'| {LABELS[m]} | ' + ' | '.join(cells) + f' | {gate_cell} | {before_cell} | {spi} | {spim} | {sel} '
                     f'| {peak} |')
    s = results['settings']
    lines += ['', f'- images ({len(s["images"])}): {", ".join(s["images"])}',
              f'- preset {s["preset"]}: {s["iters"]} iterations, batch {s["batch"]} of {s["lq_size"]}x{s["lq_size"]} LR '
              f'crops, Adam lr {s["learning_rate"]:.3g}, seed {s["seed"]}, same crops for every method',
              f'- scored net: {"EMA (decay %g)" % s["ema_decay"] if s["ema_decay"] > 0 else "raw adapted net (no EMA)"}; '
              f'full images, tiled inference (tile {s["tile"]}, overlap {s["tile_overlap"]})',
              f'- LPIPS (metric): {results["metric_info"].get("lpips", {}).get("weights", "n/a")}; PSNR-Y/SSIM on Y, '
              f'crop {results["metric_info"].get("psnr_y", {}).get("crop_border", "?")} px; NIQE: basicsr',
              f'- srtta: per image (reset after each), {s["srtta"]["iters"]} steps of {s["srtta"]["batch"]} patches of '
              f'{s["srtta"]["patch"]}x{s["srtta"]["patch"]}, Adam lr {s["srtta"]["lr"]:.3g}, Fisher on '
              f'{s["srtta"]["fisher_size"]} px centre crops; scored from its 8-bit PNG outputs',
              f'- s/image: adaptation seconds per image (joint methods: all iterations / images; srtta: classifier, '
              f'steps and its share of the Fisher estimate, without the upscale)',
              f'- s/iter: median over iterations 2..N; peak MB: {"process RSS (psutil) during training" if s["device"] == "cpu" else "torch.cuda.max_memory_allocated during training"}',
              f'- machine: {results["machine"]["platform"]}, {results["machine"]["cpu_count_logical"]} logical CPUs, '
              f'torch {results["machine"]["torch"]} with {results["machine"]["torch_threads"]} threads, load avg at '
              f'start {", ".join(f"{x:.1f}" for x in results["machine"]["load_avg_at_start"])}']
    for m in methods:
        b = results['methods'][m].get('branch')
        if b:
            lines.append(f'- {m} branch: `{b["path"]}` (sha256 {b["sha256"]}…)')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def plot(path, results):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    methods = [m for m in ALL_METHODS if m in results['methods']]
    names = [m for m in METRICS if all(m in results['methods'][x]['metrics'] for x in methods)]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
    for ax, name in zip(list(axes) if len(names) > 1 else [axes], names):
        vals = [results['methods'][m]['metrics'][name]['mean'] for m in methods]
        ax.bar(range(len(methods)), vals, color=[METHOD_COLORS[m] for m in methods])
        lo, hi = min(vals), max(vals)
        pad = (hi - lo) * 0.6 + 1e-6 * max(abs(hi), 1)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=30, fontsize=8)
        ax.set_title(ARROWS[name])
    fig.suptitle(f'{results["settings"]["model"]}: {os.path.basename(os.path.dirname(results["settings"]["lr_dir"].rstrip("/")))}',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_config(argv=None):
    """(args, cfg) of a compare.py command line (``argv`` None: sys.argv)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(parser, 'base,rec_only,lway,hr_aware')
    parser.add_argument('--score-candidates', action='store_true',
                        help='also record every candidate\'s GT-free signals and GT scores (selection_accuracy.py\'s '
                             'record) into <out>/selection/runs/, for selection_accuracy.py --evaluate --include')
    args = parser.parse_args(argv)
    return args, resolve_args(args)


def main(argv=None):
    args, cfg = parse_config(argv)
    logger = setup_logging(cfg['out'])
    pairs = image_pairs(cfg)
    from tta_sr.weights.resolver import manifest_entry
    scale = manifest_entry(cfg['model'])['scale']
    scorer = Scorer(cfg, scale)
    gts = read_gts(pairs)
    results_path = os.path.join(cfg['out'], 'results.json')
    settings = run_settings(cfg, pairs)
    results = {'settings': settings, 'methods': {}}
    if os.path.isfile(results_path):  # keep methods measured earlier with the same settings
        with open(results_path) as f:
            old = json.load(f)
        if old.get('settings') == settings:
            results['methods'] = old.get('methods', {})
        else:
            logger.info(f'{results_path}: settings differ from this run; earlier methods are dropped')
    merge_results(results, args.merge_from, 'results.json', settings)
    results.update(machine=machine_info(cfg), metric_info=scorer.info(),
                   command='python ' + ' '.join([os.path.relpath(__file__)] + (argv or sys.argv[1:])))
    base_outputs, base_cache = None, {}

    def score_base(outputs):
        """Scores of the base outputs, computed once per run: every method exports the same ones."""
        if 'metrics' not in base_cache:
            base_cache['metrics'] = scorer.score_images(outputs, gts)
        return base_cache['metrics']

    for method in cfg['methods']:
        if method == 'base':
            continue
        logger.info(f'=== {method} ===')
        if method == 'srtta':
            result, base_outputs = run_srtta(cfg, pairs, scorer, gts, logger)
        else:
            result, base_outputs = run_method(cfg, method, pairs, scorer, gts, logger, score_base)
        results['methods'][method] = result
        dump_json(results_path, results)
        logger.info(f'[{method}] ' + ', '.join(f'{k} {v["mean"]:.4f}' for k, v in result['metrics'].items()) +
                    f', {(result["s_per_iter"] or {}).get("median", float("nan")):.2f} s/iter, '
                    f'peak {result["peak_mb"]:.0f} MB')
    if 'base' in cfg['methods']:
        if base_outputs is None:  # no TTA method run: upscale with the pretrained net directly
            from tta_sr.weights.resolver import build_pretrained
            net = build_pretrained(cfg['model'], device=cfg['device'])
            base_outputs = scorer.upscale_all(net, pairs, os.path.join(cfg['out'], 'runs', 'base'))
        results['methods']['base'] = {'metrics': score_base(base_outputs)}
    dump_json(results_path, results)
    write_markdown(os.path.join(cfg['out'], 'results.md'), results, cfg)
    plot(os.path.join(cfg['out'], 'results.png'), results)
    print(open(os.path.join(cfg['out'], 'results.md')).read())
    return 0


if __name__ == '__main__':
    sys.exit(main())
