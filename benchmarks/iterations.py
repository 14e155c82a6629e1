"""Quality against the number of adaptation iterations (the HR-aware paper's Figure 9).

Same set-up as compare.py (in-process HRAwareTTAModel, same seeded crops for every method, GT for
scoring only), but the adapted net (EMA copy when ``--ema`` > 0, else the raw net) is scored on the
full images every ``--every`` iterations, from 0 (the base model) to ``--iters`` (at least 800 for the
paper's curve). Writes ``<out>/curves.json`` (method -> iteration -> metric mean and per image, plus the
training loss) and ``<out>/curves.png``.

Unless given, the preset's learning rate is the paper's fixed 5e-6 (not the cpu preset's lr * iters
budget), since the point is the shape of the curve over many iterations.

Example (2 CPU cores, the cheap compact model)::

    python benchmarks/iterations.py --lr benchmarks/data/set14_synth_x4/lr --gt benchmarks/data/set14_synth_x4/gt \
        --model realesr-animevideov3 --methods lway,hr_aware --iters 800 --every 100 --preset cpu \
        --out benchmarks/runs/curves_animevideov3_set14
"""
import argparse
import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from presets import METHOD_COLORS, add_run_args, resolve_args  # noqa: E402
from records import branch_record, dump_json, machine_info, merge_results, run_settings, setup_logging  # noqa: E402
from run_options import build_tta_model, model_options  # noqa: E402
from sampling import make_sampler  # noqa: E402
from scoring import Scorer, eval_net, image_pairs, read_folder, read_gts  # noqa: E402
from timing import summary, train_steps  # noqa: E402


def run_curve(cfg, method, pairs, scorer, gts, logger, every, results, path):
    import torch
    root = os.path.join(cfg['out'], 'runs', method)
    opt, branch_path = model_options(cfg, method, pairs, root)
    torch.manual_seed(cfg['seed'])
    model = build_tta_model(opt)
    sampler = make_sampler(opt, cfg)
    base = read_folder(os.path.join(root, 'results', 'base'), pairs)
    curve = {'points': {0: scorer.score_images(base, gts)}, 'branch': branch_record(branch_path)}
    times, losses = [], []
    results['methods'][method] = curve
    done = 0
    while done < cfg['iters']:
        stop = min(done + every, cfg['iters'])
        train_steps(model, sampler, done, stop, cfg['device'], times, losses)
        done = stop
        t0 = time.perf_counter()
        srs = scorer.upscale_all(eval_net(model, cfg), pairs)
        curve['points'][done] = scorer.score_images(srs, gts)
        curve['s_per_iter'] = summary(times)
        curve['loss_curve'] = losses
        dump_json(path, results)
        logger.info(f'[{method}] iter {done}: ' + ', '.join(f'{k} {v["mean"]:.4f}' for k, v in
                                                            curve['points'][done].items()) +
                    f' (scored in {time.perf_counter() - t0:.1f} s; {curve["s_per_iter"]["median"]:.2f} s/iter)')
    del model
    gc.collect()


def plot(path, results):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    methods = list(results['methods'])
    first = next(iter(results['methods'].values()))['points']
    names = list(first[min(first, key=int)])
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2))
    for ax, name in zip(list(axes) if len(names) > 1 else [axes], names):
        for m in methods:
            pts = sorted((int(k), v[name]['mean']) for k, v in results['methods'][m]['points'].items())
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', ms=3, label=m, color=METHOD_COLORS.get(m))
        ax.set_xlabel('iteration')
        ax.set_title({'psnr_y': 'PSNR-Y ↑', 'ssim': 'SSIM ↑', 'lpips': 'LPIPS ↓', 'niqe': 'NIQE ↓'}[name])
        ax.grid(alpha=0.3)
    (axes[0] if len(names) > 1 else axes).legend(fontsize=8)
    s = results['settings']
    fig.suptitle(f'{s["model"]}, {os.path.basename(os.path.dirname(s["lr_dir"].rstrip("/")))}: lr {s["learning_rate"]:.3g}, '
                 f'batch {s["batch"]}x{s["lq_size"]}², {"EMA %g" % s["ema_decay"] if s["ema_decay"] > 0 else "no EMA"}',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(parser, 'lway,hr_aware', iters_help='last iteration (default 800)')
    parser.add_argument('--every', type=int, default=100, help='score every K iterations')
    args = parser.parse_args(argv)
    if args.iters is None:
        args.iters = 800
    if args.learning_rate is None:
        args.learning_rate = 5e-6
    cfg = resolve_args(args)
    cfg['methods'] = [m for m in cfg['methods'] if m != 'base']
    logger = setup_logging(cfg['out'])
    pairs = image_pairs(cfg)
    from tta_sr.weights.resolver import manifest_entry
    scorer = Scorer(cfg, manifest_entry(cfg['model'])['scale'])
    gts = read_gts(pairs)
    settings = dict(run_settings(cfg, pairs), every=args.every)
    path = os.path.join(cfg['out'], 'curves.json')
    results = {'settings': settings, 'methods': {}, 'machine': machine_info(cfg), 'metric_info': scorer.info(),
               'command': 'python ' + ' '.join([os.path.relpath(__file__)] + (argv or sys.argv[1:]))}
    if os.path.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old.get('settings') == settings:
            results['methods'] = {m: v for m, v in old['methods'].items() if m not in cfg['methods']}
    merge_results(results, args.merge_from, 'curves.json', settings)
    dump_json(path, results)
    for method in cfg['methods']:
        logger.info(f'=== {method} ===')
        run_curve(cfg, method, pairs, scorer, gts, logger, args.every, results, path)
    plot(os.path.join(cfg['out'], 'curves.png'), results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
