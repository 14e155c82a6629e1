"""Branch fidelity: how well a stage-1 branch re-degrades an HR image into its real LR twin.

For every (LR X, HR Y) pair of each set, and each branch given, X_hat = R(E_deg(X), E_img(Y), Y, s) is
scored against X (PSNR on RGB in [0, 1], and LPIPS), beside fixed downscalers of Y:

* ``bicubic``, ``bicubic_aa``, ``area`` (``tta_sr.ops.downscalers``);
* ``oracle``: the Gaussian blur + area downscaler whose width sigma (0 to 4 HR px, step 0.1) gives the
  best mean PSNR on that set -- chosen with the ground truth, it shows how much one fixed degradation
  model can explain of the set;
* the **embedding-swap cost** (synthetic families only): the mean drop in PSNR when E_deg is taken from
  the same crop degraded in another family.

A branch runs as its stage-1 validation runs it: the HR-aware branch with the noise-free controller
s = 1 - HQI(X, Y), the LWay branch with s = 1; E_deg sees the whole LR image.

Sets: the held-out families of ``benchmarks/datasets.py families`` (photos and seeds that stage 1 never
uses) and the real City100 iPhoneX x4 pairs (``benchmarks/datasets.py city100``); both are built here if
missing. Writes ``<out>/results.json``, ``results.md`` (the tables) and ``results.png`` (PSNR per set).

Example::

    python benchmarks/branch_fidelity.py --branches hr_aware_cpu,lway_cpu --out benchmarks/runs/branch_fidelity
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import datasets  # noqa: E402

FAMILY_SETS = ('second_order', 'mild', 'bicubic')
FIXED = ('bicubic', 'bicubic_aa', 'area')
SIGMAS = tuple(round(0.1 * i, 1) for i in range(41))


def load_pairs(folder):
    """[(stem, X (1, 3, H, W), Y (1, 3, aH, aW))] of an lr/gt folder pair, sorted by stem."""
    from tta_sr.utils.image_io import read_image, scan_images, to_tensor
    pairs = []
    for lr_path in scan_images(os.path.join(folder, 'lr')):
        stem = os.path.splitext(os.path.basename(lr_path))[0]
        gt = read_image(os.path.join(folder, 'gt', f'{stem}.png'))[0]
        pairs.append((stem, to_tensor(read_image(lr_path)[0])[0][None], to_tensor(gt)[0][None]))
    return sorted(pairs, key=lambda p: p[0])


def psnr(a, b):
    import torch
    return float(10 * torch.log10(1 / torch.mean((a.clamp(0, 1) - b) ** 2).clamp_min(1e-12)))


class Branch:
    """A stage-1 branch by shipped name or checkpoint (with its options file), run noise-free."""

    def __init__(self, name, options_file=None):
        from basicsr.archs import build_network
        from tta_sr.models.branch_components import Controller
        from tta_sr.weights.branches import branch_source
        from tta_sr.weights.resolver import load_state_dict
        path, options = branch_source(name, options_file)
        if not options.get('network_recon'):
            raise SystemExit(f'branch {name} is a file: give --branch-options with its network_recon (or put its '
                             'stage-1 option file beside it, same name, .yml)')
        self.name = os.path.splitext(os.path.basename(name))[0] if os.path.isfile(name) else name
        self.net = build_network(options['network_recon']).eval()
        self.net.load_state_dict(load_state_dict(path, param_key='params_ema'))
        self.controller = Controller(options.get('controller') or {'enabled': False}, 'pretrain', self.net.emb_dim,
                                     'cpu')

    def __call__(self, x_for_embedding, x, y):
        """R(E_deg(x_for_embedding), E_img(y), y, s(x, y)): (1, 3, H, W)."""
        import torch
        with torch.no_grad():
            e_d = self.net.encode_degradation(x_for_embedding)
            return self.net.reconstruct(e_d, self.net.encode_image(y), y, self.controller(x, y, noise=False))


def fixed_scores(pairs, lpips, scale):
    """{name: {'psnr': [...], 'lpips': [...]}} for FIXED and every oracle sigma ('gauss<sigma>', PSNR only)."""
    import torch
    from tta_sr.ops.downscalers import downscale
    out = {}
    with torch.no_grad():
        for name in FIXED + tuple(f'gauss{s}' for s in SIGMAS):
            preds = [downscale(y, scale, name) for _, _, y in pairs]
            out[name] = {'psnr': [psnr(p, x) for p, (_, x, _) in zip(preds, pairs)]}
            if name in FIXED:
                out[name]['lpips'] = [float(lpips(p.clamp(0, 1), x)) for p, (_, x, _) in zip(preds, pairs)]
    return out


def score_set(set_name, pairs, branches, lpips, scale, swap_sets, progress):
    """The row block of one set: fixed downscalers, oracle, each branch (and its swap cost)."""
    import torch
    from tta_sr.ops.downscalers import downscale
    fixed = fixed_scores(pairs, lpips, scale)
    best = max(SIGMAS, key=lambda s: np.mean(fixed[f'gauss{s}']['psnr']))
    with torch.no_grad():
        oracle_lpips = [float(lpips(downscale(y, scale, f'gauss{best}').clamp(0, 1), x)) for _, x, y in pairs]
    rows = {name: {'psnr': float(np.mean(fixed[name]['psnr'])), 'lpips': float(np.mean(fixed[name]['lpips']))}
            for name in FIXED}
    rows['oracle'] = {'psnr': float(np.mean(fixed[f'gauss{best}']['psnr'])), 'lpips': float(np.mean(oracle_lpips)),
                      'sigma': best}
    for branch in branches:
        preds = []
        for _, x, y in pairs:
            preds.append(branch(x, x, y))
            progress.update(1)
        row = {'psnr': float(np.mean([psnr(p, x) for p, (_, x, _) in zip(preds, pairs)])),
               'lpips': float(np.mean([float(lpips(p.clamp(0, 1), x)) for p, (_, x, _) in zip(preds, pairs)])),
               'per_image_psnr': {stem: psnr(p, x) for p, (stem, x, _) in zip(preds, pairs)}}
        if swap_sets:
            costs = {}
            for other, other_pairs in swap_sets.items():
                swapped = [psnr(branch(xo, x, y), x) for (_, x, y), (_, xo, _) in zip(pairs, other_pairs)]
                costs[other] = row['psnr'] - float(np.mean(swapped))
                progress.update(len(pairs))
            row['swap_cost'] = costs
            row['swap_cost_mean'] = float(np.mean(list(costs.values())))
        rows[branch.name] = row
    return {'pairs': len(pairs), 'rows': rows}


def write_markdown(path, results, command):
    branches = results['branches']
    lines = [f'Command: `{command}`', '', '| set | pairs | ' + ' | '.join(branches) +
             ' | bicubic | bicubic_aa | area | oracle blur + area (sigma) |', '| --- ' * (6 + len(branches)) + '|']
    for set_name, block in results['sets'].items():
        r = block['rows']
        cells = [f'{r[b]["psnr"]:.2f} / {r[b]["lpips"]:.3f}' for b in branches]
        cells += [f'{r[k]["psnr"]:.2f} / {r[k]["lpips"]:.3f}' for k in FIXED]
        cells.append(f'{r["oracle"]["psnr"]:.2f} / {r["oracle"]["lpips"]:.3f} ({r["oracle"]["sigma"]})')
        lines.append(f'| {set_name} | {block["pairs"]} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'PSNR (dB, RGB) / LPIPS of the re-degraded HR against the real LR.', '',
              '| branch | ' + ' | '.join(f'margin over best fixed, {s}' for s in results['sets']) +
              ' | gap to oracle (families) | gain over bicubic_aa, families mean | swap cost (families) |',
              '| --- ' * (len(results['sets']) + 4) + '|']
    for b in branches:
        margins, gaps, gains, swaps = [], [], [], []
        for set_name, block in results['sets'].items():
            r = block['rows']
            margins.append(r[b]['psnr'] - max(r[k]['psnr'] for k in FIXED))
            if set_name in FAMILY_SETS:
                gaps.append(r['oracle']['psnr'] - r[b]['psnr'])
                gains.append(r[b]['psnr'] - r['bicubic_aa']['psnr'])
                swaps.append(f'{set_name} {r[b]["swap_cost_mean"]:.2f}')
        lines.append(f'| {b} | ' + ' | '.join(f'{m:+.2f}' for m in margins) + ' | ' +
                     ', '.join(f'{g:+.2f}' for g in gaps) + f' | {np.mean(gains):+.2f} | ' + ', '.join(swaps) + ' |')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def plot(path, results):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    sets = list(results['sets'])
    names = results['branches'] + list(FIXED) + ['oracle']
    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(sets), 3.4))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        vals = [results['sets'][s]['rows'][name]['psnr'] for s in sets]
        ax.bar(np.arange(len(sets)) + k * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(sets)) + 0.4 - width / 2)
    ax.set_xticklabels(sets)
    ax.set_ylabel('PSNR of re-degraded HR vs LR (dB)')
    lo = min(results['sets'][s]['rows'][n]['psnr'] for s in sets for n in names)
    ax.set_ylim(lo - 2, None)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--branches', default='hr_aware_cpu,lway_cpu',
                        help='comma list of shipped branch names or checkpoint files (then --branch-options)')
    parser.add_argument('--branch-options', default=None,
                        help='YAML with network_recon (or network_g) and controller for branches given as files (a '
                             'stage-1 option file); default: the .yml beside each checkpoint')
    parser.add_argument('--sets', default='second_order,mild,bicubic,city100',
                        help=f'comma list of {", ".join(FAMILY_SETS)}, city100')
    parser.add_argument('--data', default=datasets.DEFAULT_OUT, help='where the benchmark sets live (built if missing)')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--out', required=True, help='output folder')
    args = parser.parse_args(argv)
    import torch
    from tqdm import tqdm
    import tta_sr  # noqa: F401
    from tta_sr.archs.lpips_arch import build_lpips
    torch.set_num_threads(args.threads)
    wanted = [s.strip() for s in args.sets.split(',') if s.strip()]
    unknown = set(wanted) - set(FAMILY_SETS) - {'city100'}
    if unknown:
        parser.error(f'unknown set(s) {sorted(unknown)}')
    families_root = os.path.join(args.data, 'families_x4')
    if any(s in FAMILY_SETS for s in wanted) and not os.path.isdir(families_root):
        datasets.build_families(args.data)
    city_root = os.path.join(args.data, 'city100_x4_c480')
    if 'city100' in wanted and not os.path.isdir(city_root):
        datasets.build_city100(args.data)
    sets = {s: load_pairs(city_root if s == 'city100' else os.path.join(families_root, s)) for s in wanted}
    branches = [Branch(b.strip(), args.branch_options) for b in args.branches.split(',') if b.strip()]
    lpips = build_lpips()
    families = [s for s in wanted if s in FAMILY_SETS]
    total = sum(len(p) * len(branches) * (len(families) if s in FAMILY_SETS else 1) for s, p in sets.items())
    results = {'branches': [b.name for b in branches], 'lpips': lpips.name, 'sets': {}}
    with tqdm(total=total, desc='branch fidelity', unit='pair') as progress:
        for name, pairs in sets.items():
            swap = {o: sets[o] for o in families if o != name} if name in FAMILY_SETS else {}
            results['sets'][name] = score_set(name, pairs, branches, lpips, 4, swap, progress)
    os.makedirs(args.out, exist_ok=True)
    command = 'python ' + ' '.join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))
    results['command'] = command
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    write_markdown(os.path.join(args.out, 'results.md'), results, command)
    plot(os.path.join(args.out, 'results.png'), results)
    print(open(os.path.join(args.out, 'results.md')).read())
    return 0


if __name__ == '__main__':
    sys.exit(main())
