"""Peak memory (RSS) and time of ``tta-sr upscale`` on one large photo: tiling bounds the network's activations.

Makes a synthetic ``--width`` x ``--height`` photo (default 4000 x 3000; skimage's astronaut resized, plus fine
texture so that it is not flat), saves it as an 8-bit PNG, then runs

    python -m tta_sr.cli upscale -i PHOTO -o OUT -n MODEL --tile TILE --tile-overlap OVERLAP --device DEVICE

in a child process with ``OMP_NUM_THREADS=--threads``. The child's peak RSS is read exactly from the kernel
(``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once it has exited: this script starts no other child) and also
sampled with psutil every 50 ms (the sampled curve shows when the peak happens). Writes ``<out>/upscale_memory.json``.

What dominates at x4: the float32 output ``(3, 4H, 4W)`` the tiles are blended into (``4 * 3 * 16 * H * W`` bytes,
2.3 GB for 4000 x 3000), then its 8-bit copy and the encoded PNG; one tile's activations are small beside it.

Example (the figure in the README)::

    python benchmarks/upscale_memory.py --model realesr-animevideov3 --tile 256 --out benchmarks/runs/upscale_memory
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_photo(width, height, seed=0):
    """float32 ``(height, width, 3)`` in [0, 1]: astronaut resized to the size, with 2-px texture added."""
    import cv2
    from skimage import data
    base = cv2.resize(data.astronaut().astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    texture = cv2.resize(rng.random((height // 2, width // 2, 1), dtype=np.float32), (width, height),
                         interpolation=cv2.INTER_NEAREST)[..., None]
    return np.clip(0.9 * base + 0.1 * texture, 0, 1)


def png_size(path):
    """``(width, height)`` from a PNG's IHDR chunk (Pillow refuses to open 192-megapixel files)."""
    import struct
    with open(path, 'rb') as f:
        head = f.read(24)
    return list(struct.unpack('>II', head[16:24]))


def run_and_watch(cmd, env, interval=0.05):
    """Run ``cmd``; returns ``(returncode, seconds, peak RSS in MiB from getrusage, sampled peak MiB, samples)``."""
    import psutil
    start = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched, samples, sampled_peak = psutil.Process(proc.pid), [], 0.0
    while proc.poll() is None:
        try:
            rss = watched.memory_info().rss / 2 ** 20
        except psutil.Error:
            break
        sampled_peak = max(sampled_peak, rss)
        samples.append((round(time.time() - start, 2), round(rss, 1)))
        time.sleep(interval)
    output = proc.communicate()[0]
    seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return proc.returncode, seconds, peak, sampled_peak, samples, output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--width', type=int, default=4000)
    parser.add_argument('--height', type=int, default=3000)
    parser.add_argument('--model', default='realesr-animevideov3', help='manifest name (default: %(default)s)')
    parser.add_argument('--tile', type=int, default=256)
    parser.add_argument('--tile-overlap', type=int, default=16)
    parser.add_argument('--threads', type=int, default=1, help='OMP_NUM_THREADS of the child (default: 1)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default: %(default)s)')
    parser.add_argument('--precision', default='', choices=('', 'fp32', 'half'), help='on GPU: --fp32 or --half')
    parser.add_argument('--out', default='benchmarks/runs/upscale_memory', help='folder for the photo and results')
    parser.add_argument('--keep-output', action='store_true', help='keep the upscaled image (large)')
    args = parser.parse_args(argv)

    sys.path.insert(0, REPO)
    from tta_sr.utils.image_io import write_image
    os.makedirs(args.out, exist_ok=True)
    photo = os.path.join(args.out, f'photo_{args.width}x{args.height}.png')
    if not os.path.isfile(photo):
        write_image(photo, synthetic_photo(args.width, args.height))
    results = os.path.join(args.out, 'upscaled')
    cmd = [sys.executable, '-m', 'tta_sr.cli', 'upscale', '-i', photo, '-o', results, '-n', args.model,
           '--tile', str(args.tile), '--tile-overlap', str(args.tile_overlap), '--device', args.device, '--no-progress']
    cmd += [f'--{args.precision}'] if args.precision else []
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO, env.get('PYTHONPATH')) if p)
    code, seconds, peak, sampled, samples, output = run_and_watch(cmd, env)
    if code != 0:
        raise SystemExit(f'upscale failed ({code}):\n{output[-3000:]}')
    written = [os.path.join(results, f) for f in os.listdir(results)]
    out_size = png_size(written[0]) if written else None
    if not args.keep_output:
        for path in written:
            os.remove(path)
    report = {
        'command': ' '.join(['tta-sr'] + cmd[3:]), 'input': [args.width, args.height], 'output': out_size,
        'model': args.model, 'tile': args.tile, 'tile_overlap': args.tile_overlap, 'threads': args.threads,
        'device': args.device, 'precision': args.precision or 'default',
        'seconds': round(seconds, 1), 'peak_rss_mib': round(peak), 'sampled_peak_rss_mib': round(sampled),
        'machine': {'cpu': platform.processor() or platform.machine(), 'cores': os.cpu_count(),
                    'python': platform.python_version()},
        'rss_samples_every_50ms': samples[::max(1, len(samples) // 400)],
    }
    with open(os.path.join(args.out, 'upscale_memory.json'), 'w') as f:
        json.dump(report, f, indent=1)
    print(f'{report["command"]}\n{args.width}x{args.height} -> {out_size[0]}x{out_size[1]} with {args.model}, '
          f'tile {args.tile}, {args.threads} thread(s): peak RSS {peak / 1024:.2f} GiB '
          f'(sampled {sampled / 1024:.2f} GiB), {seconds / 60:.1f} min')
    return report


if __name__ == '__main__':
    main()
