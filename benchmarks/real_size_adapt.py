"""What `tta-sr adapt` costs on real-size photos: the same run on whole photos and on centre crops of them.

    python benchmarks/real_size_adapt.py --photos /work/shared/data/AIM2020_RealSR_x4_testLR \
        --crop 120 --model RealESRGAN_x4plus --out benchmarks/runs/real_size

writes ``<out>/crops_<crop>/`` (the centre crops), runs ``tta-sr adapt <folder> -n MODEL --preset cpu --device cpu``
on the whole photos and on the crops, one after the other, each in a child process, and records its wall time and
peak resident memory (the largest process of the run, from the kernel's rusage), the lines it printed before
training, and whether any whole-photo output was written, into ``<out>/real_size.json`` and ``real_size.md``.
"""
import argparse
import os
import subprocess
import sys
import time

from tqdm import tqdm

from records import write_records


def centre_crops(photos, size, folder):
    """Centre crops ``size x size`` of every photo in ``photos`` into ``folder``; returns ``folder``."""
    from tta_sr.utils.image_io import list_image_files, read_image, write_image
    os.makedirs(folder, exist_ok=True)
    for path in list_image_files(photos):
        rgb = read_image(path)[0]
        top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
        write_image(os.path.join(folder, os.path.basename(path)), rgb[top:top + size, left:left + size])
    return folder


PEAK_PROBE = ('import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; '
              'print("peak_rss_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); '
              'sys.exit(code)')


def timed_adapt(photos, model, out, extra):
    """(seconds, peak RSS in MiB, printed text) of one ``tta-sr adapt`` run, in a child process of its own whose
    rusage gives the largest process of the run (the training run ``tta-sr adapt`` starts)."""
    cmd = [sys.executable, '-m', 'tta_sr.cli', 'adapt', photos, '-n', model, '--preset', 'cpu', '--device', 'cpu',
           '-o', out, *extra]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-c', PEAK_PROBE, *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f'{" ".join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}')
    peak = [line.split()[1] for line in done.stderr.splitlines() if line.startswith('peak_rss_kib ')]
    return seconds, int(peak[-1]) / 1024, done.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--photos', required=True, help='folder of real-size LR photos')
    parser.add_argument('--crop', type=int, default=120, help='side of the centre crops of the comparison run')
    parser.add_argument('--model', default='RealESRGAN_x4plus')
    parser.add_argument('--out', required=True)
    parser.add_argument('--extra', nargs=argparse.REMAINDER, default=[], help='more tta-sr adapt arguments')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    crops = centre_crops(args.photos, args.crop, os.path.join(args.out, f'crops_{args.crop}'))
    rows = {}
    for label, folder in tqdm([('whole photos', args.photos), (f'{args.crop} x {args.crop} crops', crops)],
                              desc='runs', unit='run'):
        seconds, peak, printed = timed_adapt(folder, args.model, os.path.join(args.out, 'runs'), args.extra)
        run = os.path.join(args.out, 'runs', f'tta_hr_aware_{args.model}_{os.path.basename(os.path.normpath(folder))}')
        rows[label] = {'seconds': seconds, 'peak_rss_mib': peak,
                       'results_written': os.path.isdir(os.path.join(run, 'results')), 'printed': printed,
                       'report': os.path.join(run, 'report.html')}
        print(f'{label}: {seconds:.0f} s, peak RSS {rows[label]["peak_rss_mib"]} MiB', flush=True)
    lines = ['| run | wall time | peak RSS | whole-photo outputs |', '| --- | --- | --- | --- |']
    for label, row in rows.items():
        lines.append(f'| {label} | {row["seconds"]:.0f} s | {row["peak_rss_mib"]:.0f} MiB | '
                     f'{"yes" if row["results_written"] else "none"} |')
    first, second = list(rows.values())
    lines.append(f'\nratio of the wall times: {first["seconds"] / second["seconds"]:.2f}')
    write_records(args.out, 'real_size', {'rows': rows}, lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
