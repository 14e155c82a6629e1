"""Peak memory of `tta-sr adapt` against the number of large photos: the same run on N synthetic photos of one size.

    python benchmarks/many_photos_memory.py --counts 5 20 --width 4000 --height 3000 \
        --model realesr-animevideov3 --out benchmarks/runs/many_photos

writes ``<out>/photos_<N>/`` (N seeded synthetic photos: smooth colour fields with edges and grain, PNG), runs
``tta-sr adapt`` with the CPU preset on each folder in turn (``benchmarks/real_size_adapt.timed_adapt``: wall time
and the peak RSS of the largest process), and writes ``<out>/many_photos.json`` and ``many_photos.md``.
"""
import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

from real_size_adapt import timed_adapt
from records import write_records


def synthetic_photo(width, height, seed):
    """(height, width, 3) uint8: a smooth colour field (a bicubic upscale of a coarse random grid), hard-edged
    discs and grain, so that the SR model sees edges, texture and flat areas."""
    import cv2
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (max(2, height // 100), max(2, width // 100), 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(img, centre, int(rng.integers(10, max(11, min(width, height) // 8))),
                   [float(c) for c in rng.uniform(0, 255, 3)], -1)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_photos(folder, count, width, height):
    """``count`` synthetic photos into ``folder`` (kept when already there); returns ``folder``."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    for i in tqdm(range(count), desc=f'photos {width}x{height}', unit='photo'):
        path = os.path.join(folder, f'photo_{i:03d}.png')
        if not os.path.isfile(path):
            cv2.imwrite(path, synthetic_photo(width, height, i), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--counts', type=int, nargs='+', default=[5, 20])
    parser.add_argument('--width', type=int, default=4000)
    parser.add_argument('--height', type=int, default=3000)
    parser.add_argument('--model', default='realesr-animevideov3')
    parser.add_argument('--out', required=True)
    parser.add_argument('--extra', nargs=argparse.REMAINDER, default=[], help='more tta-sr adapt arguments')
    args = parser.parse_args(argv)
    rows = {}
    for count in args.counts:
        folder = write_photos(os.path.join(args.out, f'photos_{count}'), count, args.width, args.height)
        seconds, peak, _ = timed_adapt(folder, args.model, os.path.join(args.out, 'runs'), args.extra)
        rows[count] = {'seconds': seconds, 'peak_rss_mib': peak}
        print(f'{count} photos of {args.width} x {args.height}: {seconds:.0f} s, peak RSS {peak:.0f} MiB', flush=True)
    lines = [f'| photos ({args.width} x {args.height}) | wall time | peak RSS |', '| --- | --- | --- |']
    lines += [f'| {count} | {row["seconds"]:.0f} s | {row["peak_rss_mib"]:.0f} MiB |' for count, row in rows.items()]
    write_records(args.out, 'many_photos', {'size': [args.width, args.height], 'model': args.model, 'rows': rows},
                  lines)
    return 0


if __name__ == '__main__':
    sys.exit(main())
