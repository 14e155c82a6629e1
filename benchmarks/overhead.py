"""Cost of one TTA step (each mode) relative to one plain fine-tuning step of the same SR model.

In ONE process and on ONE fixed batch of LR crops: the plain step is ``zero_grad; y = M(x);
L1(y, bicubic_up(x)).backward(); Adam.step()`` (what fine-tuning M alone costs); a TTA step is
``HRAwareTTAModel.optimize_parameters`` (M forward, frozen branch forward, loss, backward through the
branch into M, Adam step; no EMA, so the comparison is of the losses' cost alone). Each is repeated
``--repeats`` times after ``--warmup`` runs, interleaved round-robin so that load changes on a shared
machine hit every variant alike, and the median time is divided by the plain step's.
Peak memory of a step = peak during the step minus memory just before it. GPU: in the same process,
``torch.cuda.max_memory_allocated`` after a reset. CPU: the allocator keeps freed memory, so after the
first variant RSS no longer shows another variant's peak; each variant's first step is therefore run
in a fresh child process (same options, ``--memory-probe NAME``) and measured as the peak of RSS
sampled every 2 ms during it minus RSS before it (the process-lifetime ``ru_maxrss`` is useless here: model
building and the base export already peak higher); the child runs with glibc's mmap and trim thresholds
fixed at 64 KiB, so that tensors freed before the step are returned to the OS and the RSS rise is the
step's own working set. It includes the one-off Adam state (2x the trained parameters) for every variant.

Writes ``<out>/overhead.json`` and ``<out>/overhead.md``.

Example::

    python benchmarks/overhead.py --lr benchmarks/data/set14_synth_x4/lr --gt benchmarks/data/set14_synth_x4/gt \
        --model RealESRGAN_x4plus --out benchmarks/runs/overhead_realesrgan_cpu
"""
import argparse
import contextlib
import json
import os
import subprocess
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from presets import add_run_args, resolve_args  # noqa: E402
from records import dump_json, machine_info, setup_logging  # noqa: E402
from run_options import build_tta_model, model_options  # noqa: E402
from sampling import make_sampler  # noqa: E402
from scoring import image_pairs  # noqa: E402
from timing import PeakMemory, sync  # noqa: E402

MODES = ('rec_only', 'lway', 'hr_aware')


def probe_memory(name, argv):
    """Peak RSS above the start of variant ``name``'s first step, in a fresh child process (MB)."""
    cmd = [sys.executable, os.path.abspath(__file__)] + list(argv if argv is not None else sys.argv[1:])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536', MALLOC_TRIM_THRESHOLD_='65536')
    proc = subprocess.run(cmd + ['--memory-probe', name], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith('MEMORY_PROBE '):
            data = json.loads(line[len('MEMORY_PROBE '):])
            return data['peak_mb'] - data['before_mb']
    raise RuntimeError(f'memory probe {name} failed:\n{proc.stderr[-3000:]}')


def main(argv=None):
    import torch
    from torch.nn import functional as F
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(parser, 'rec_only,lway,hr_aware')
    parser.add_argument('--repeats', type=int, default=5, help='timed repeats of each variant')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs of each variant first')
    parser.add_argument('--memory-probe', default=None, help=argparse.SUPPRESS)  # internal: child process
    args = parser.parse_args(argv)
    args.iters = args.iters or 1
    cfg = resolve_args(args)
    cfg['ema_decay'] = 0.0
    modes = [m for m in cfg['methods'] if m in MODES]
    logger = setup_logging(cfg['out'])
    pairs = image_pairs(cfg)
    device = cfg['device']

    if args.memory_probe:
        modes = [args.memory_probe] if args.memory_probe != 'plain' else modes[:1]
    models, batch = {}, None
    for mode in modes:
        opt, _ = model_options(cfg, mode, pairs, os.path.join(cfg['out'], 'runs', mode))
        torch.manual_seed(cfg['seed'])
        models[mode] = build_tta_model(opt)
        if batch is None or mode == 'lway':
            sampler = make_sampler(opt, cfg)  # same seed: the same crops for every mode
            batch = sampler()
    from tta_sr.weights.resolver import build_pretrained
    plain_net = build_pretrained(cfg['model'], device=device).train()  # M alone, the same weights
    for p in plain_net.parameters():
        p.requires_grad_(True)
    plain_opt = torch.optim.Adam([p for p in plain_net.parameters() if p.requires_grad], lr=cfg['learning_rate'])
    lq = batch['lq'].to(device)
    scale = models[modes[0]].opt['scale']

    def plain_step():
        plain_opt.zero_grad()
        out = plain_net(lq)
        loss = F.l1_loss(out, F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False))
        loss.backward()
        plain_opt.step()

    def tta_step(mode):
        def step():
            model = models[mode]
            model.feed_data(batch)
            model.optimize_parameters(1)
        return step

    variants = {'plain': plain_step, **{m: tta_step(m) for m in modes}}
    if args.memory_probe:
        import gc
        gc.collect()
        with PeakMemory('cpu', interval=0.002) as mem:
            variants[args.memory_probe]()
        print('MEMORY_PROBE ' + json.dumps({'variant': args.memory_probe, 'before_mb': mem.start_mb,
                                            'peak_mb': mem.peak_mb}))
        return 0
    times = {k: [] for k in variants}
    mems = {k: [] for k in variants}
    for r in range(args.warmup + args.repeats):
        for name, fn in variants.items():
            sync(device)
            with PeakMemory(device) if device == 'cuda' else contextlib.nullcontext() as mem:
                t0 = time.perf_counter()
                fn()
                sync(device)
                dt = time.perf_counter() - t0
            if r >= args.warmup:
                times[name].append(dt)
                if mem is not None:
                    mems[name].append(mem.delta_mb)
        logger.info(f'repeat {r + 1}: ' + ', '.join(f'{k} {v[-1]:.2f}s' for k, v in times.items() if v))
    if device != 'cuda':
        mems = {name: [probe_memory(name, argv)] for name in variants}
    result = {'settings': {k: cfg[k] for k in ('model', 'batch', 'lq_size', 'device', 'seed', 'learning_rate')},
              'repeats': args.repeats, 'warmup': args.warmup, 'machine': machine_info(cfg),
              'branches': {m: models[m].opt['path']['pretrain_network_recon'] for m in modes},
              'command': 'python ' + ' '.join([os.path.relpath(__file__)] + (argv or sys.argv[1:])), 'variants': {}}
    base_t, base_m = statistics.median(times['plain']), statistics.median(mems['plain'])
    for name in variants:
        t, m = statistics.median(times[name]), statistics.median(mems[name])
        result['variants'][name] = {'median_s': t, 'times_s': times[name], 'median_peak_delta_mb': m,
                                    'peak_delta_mb': mems[name], 'time_ratio': t / base_t,
                                    'memory_ratio': m / base_m if base_m > 0 else None}
    dump_json(os.path.join(cfg['out'], 'overhead.json'), result)
    lines = [f'# One step of {cfg["model"]}, batch {cfg["batch"]} x {cfg["lq_size"]}x{cfg["lq_size"]} LR ({device})', '',
             '| step | median s | time ratio | peak MB above start (first step) | memory ratio |', '| --- | --- | --- | --- | --- |']
    for name, v in result['variants'].items():
        mr = f'{v["memory_ratio"]:.2f}' if v['memory_ratio'] is not None else '—'
        lines.append(f'| {name} | {v["median_s"]:.3f} | {v["time_ratio"]:.2f} | {v["median_peak_delta_mb"]:.0f} | {mr} |')
    lines += ['', f'Median of {args.repeats} interleaved repeats after {args.warmup} warm-up; '
              f'{result["machine"]["torch_threads"]} torch threads, load avg at start '
              f'{", ".join(f"{x:.1f}" for x in result["machine"]["load_avg_at_start"])}.']
    with open(os.path.join(cfg['out'], 'overhead.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
