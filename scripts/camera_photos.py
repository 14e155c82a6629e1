"""Build the quickstart's camera set: crops of real camera pairs (City100, iPhone X; MIT licence, ngchc/CameraSR).

The whole pairs are made by the benchmarks' own City100 builder (``benchmarks/datasets.py``, ``build_city100`` with
``crop=0``: the registered LR photo area-downscaled x4, so it keeps the camera's optics, noise and ISP); each crop is
64 x 64 LR pixels and its 256 x 256 HR window is written as ground truth, for the report's scores only. Pairs
030-060: none of them is a development pair (070-098) or one of the five the benchmarks report on (001-020).

    python scripts/camera_photos.py --src ../shared/data/City100/iPhoneX --out options/quickstart/camera_photos
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
from datasets import _read_rgb, _write_rgb, build_city100  # noqa: E402

# (pair, top, left) of each 64 x 64 LR crop, in LR pixels of the 210 x 150 LR image.
CROPS = [('030', 43, 73), ('030', 40, 0), ('040', 43, 73), ('048', 43, 73), ('055', 30, 15), ('060', 45, 140)]
LR_SIZE, SCALE = 64, 4
LICENCE = ('Crops of City100 iPhone X pairs (Chen et al., "Camera Lens Super-Resolution", CVPR 2019), from '
           'github.com/ngchc/CameraSR, MIT licence. lr/: the short-focal-length photo, area-downscaled x4; '
           'gt/: the registered long-focal-length photo (for scoring only). Built by scripts/camera_photos.py.\n')


def build_camera_set(src, out_dir):
    """Write ``out_dir/{lr,gt}/<k>_city100_<pair>.png`` and ``out_dir/README.txt``; returns the LR folder."""
    tmp = tempfile.mkdtemp()
    try:
        pairs = build_city100(tmp, src=src, scale=SCALE, crop=0, names={pair for pair, _, _ in CROPS}, name='pairs')
        for k, (pair, top, left) in enumerate(CROPS):
            name = f'{k:02d}_city100_{pair}.png'
            for folder, side, scale in (('lr', LR_SIZE, 1), ('gt', LR_SIZE * SCALE, SCALE)):
                img = _read_rgb(os.path.join(pairs, folder, f'{pair}.png'))
                _write_rgb(os.path.join(out_dir, folder, name),
                           img[scale * top:scale * top + side, scale * left:scale * left + side])
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(out_dir, 'README.txt'), 'w') as f:
        f.write(LICENCE)
    return os.path.join(out_dir, 'lr')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--src', default='../shared/data/City100/iPhoneX', help='City100 iPhoneX folder (HR/, LR/)')
    parser.add_argument('--out', default='options/quickstart/camera_photos')
    args = parser.parse_args()
    print(build_camera_set(args.src, args.out))


if __name__ == '__main__':
    main()
