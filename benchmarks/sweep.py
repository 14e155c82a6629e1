"""One-at-a-time sweeps of HR-aware adaptation settings on a tuning set (never on a set that is reported).

Runs ``compare.py --methods base,lway,hr_aware`` once at the default settings, then ``--methods hr_aware``
once per value of each swept setting (the others at their defaults), every run in its own folder under
``--out``; then writes ``<out>/sweep.json`` (setting -> value -> metric means) and ``<out>/sweep.md``.
Arguments after ``--`` go to every compare.py run unchanged (the same images, seed, crops, iterations).
A run whose folder already holds results for its methods, with exactly the settings compare.py would
use, is reused (so values can be added to a sweep later); delete a folder to redo it.

Example (the sweep of docs/benchmarks.md: BSD68 with the synthetic degradation, RealESRGAN_x4plus)::

    python benchmarks/sweep.py --out benchmarks/runs/sweep_bsd68 \
        --far-weight 0,0.01,0.1,1 --noise-std 0,0.1,1 --learning-rate 5e-6,2.04e-5,5e-5 -- \
        --lr benchmarks/data/bsd68_synth_x4/lr --gt benchmarks/data/bsd68_synth_x4/gt \
        --model RealESRGAN_x4plus --iters 30 --preset cpu --max-images 3 --no-niqe
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
from records import dump_json, run_settings  # noqa: E402
from scoring import METRICS, image_pairs  # noqa: E402

SWEPT = ('far_weight', 'noise_std', 'learning_rate')


def earlier_results(argv):
    """The results.json of the compare.py command line ``argv`` when its ``--out`` already holds results for
    its methods with exactly the settings this command would use; else None."""
    args, cfg = compare.parse_config(argv)
    path = os.path.join(args.out, 'results.json')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        results = json.load(f)
    same = results.get('settings') == run_settings(cfg, image_pairs(cfg))
    return results if same and set(cfg['methods']) <= set(results.get('methods', {})) else None


def run(out, compare_args, methods, flag=None, value=None):
    """One compare.py run into ``out`` (or its earlier results, see the module docstring); returns results.json."""
    argv = compare_args + ['--methods', methods, '--out', out]
    argv += [] if flag is None else [f'--{flag.replace("_", "-")}', value]
    results = earlier_results(argv)
    if results is not None:
        print(f'reusing {out}/results.json')
        return results
    compare.main(argv)
    with open(os.path.join(out, 'results.json')) as f:
        return json.load(f)


def means(result):
    return {name: values['mean'] for name, values in result['metrics'].items()}


def write_markdown(path, sweep):
    metrics = [m for m in METRICS if m in sweep['reference']['base']]
    header = '| setting | value | ' + ' | '.join(metrics) + ' |'
    lines = [header, '|' + ' --- |' * (len(metrics) + 2)]
    for method, row in sweep['reference'].items():
        lines.append(f'| {method} (defaults) | | ' + ' | '.join(f'{row[m]:.4f}' for m in metrics) + ' |')
    for setting, rows in sweep['settings'].items():
        for value, row in rows.items():
            lines.append(f'| hr_aware {setting} | {value} | ' + ' | '.join(f'{row[m]:.4f}' for m in metrics) + ' |')
    with open(path, 'w') as f:
        f.write(f'# Sweep: {sweep["command"]}\n\n' + '\n'.join(lines) + '\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder of the sweep')
    for name in SWEPT:
        parser.add_argument(f'--{name.replace("_", "-")}', default='', help='comma list of values to try')
    parser.add_argument('compare_args', nargs=argparse.REMAINDER, help='-- then arguments for compare.py')
    args = parser.parse_args()
    compare_args = [a for a in args.compare_args if a != '--']
    if '--methods' in compare_args or '--out' in compare_args:
        parser.error('--methods and --out are set by the sweep, not passed to compare.py')
    reference = run(os.path.join(args.out, 'reference'), compare_args, 'base,lway,hr_aware')
    sweep = {'command': 'python ' + ' '.join(sys.argv), 'compare_settings': reference['settings'],
             'reference': {m: means(r) for m, r in reference['methods'].items()}, 'settings': {}}
    for name in SWEPT:
        for value in filter(None, getattr(args, name).split(',')):
            result = run(os.path.join(args.out, f'{name}_{value}'), compare_args, 'hr_aware', name, value)
            sweep['settings'].setdefault(name, {})[value] = means(result['methods']['hr_aware'])
            dump_json(os.path.join(args.out, 'sweep.json'), sweep)
    dump_json(os.path.join(args.out, 'sweep.json'), sweep)
    write_markdown(os.path.join(args.out, 'sweep.md'), sweep)
    print(open(os.path.join(args.out, 'sweep.md')).read())


if __name__ == '__main__':
    main()
