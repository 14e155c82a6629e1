"""Build the quickstart's camera set: crops of real camera pairs (City100, iPhone X; MIT licence, ngchc/CameraSR).

City100's LR (short focal length) and HR (long focal length) photos are registered at the same size (840 x 600).
As the benchmarks' City100 sets (``benchmarks/datasets.py``), the LR is area-downscaled x4 (OpenCV ``INTER_AREA``),
so it keeps the camera's optics, noise and ISP; each crop is 64 x 64 LR pixels and its 256 x 256 HR window is written
as ground truth, for the report's scores only. Pairs 030-060: none of them is a development pair (070-098) or one
of the five the benchmarks report on (001-020).

    python scripts/camera_photos.py --src ../shared/data/City100/iPhoneX --out options/quickstart/camera_photos
"""
import argparse
import os

import cv2

# (pair, top, left) of each 64 x 64 LR crop, in LR pixels of the 210 x 150 LR image.
CROPS = [('030', 43, 73), ('030', 40, 0), ('040', 43, 73), ('048', 43, 73), ('055', 30, 15), ('060', 45, 140)]
LR_SIZE, SCALE = 64, 4
LICENCE = ('Crops of City100 iPhone X pairs (Chen et al., "Camera Lens Super-Resolution", CVPR 2019), from '
           'github.com/ngchc/CameraSR, MIT licence. lr/: the short-focal-length photo, area-downscaled x4; '
           'gt/: the registered long-focal-length photo (for scoring only). Built by scripts/camera_photos.py.\n')


def build_camera_set(src, out_dir):
    """Write ``out_dir/{lr,gt}/<pair>_<k>.png`` and ``out_dir/README.txt``; returns the LR folder."""
    for k, (pair, top, left) in enumerate(CROPS):
        hr = cv2.imread(os.path.join(src, 'HR', f'{pair}.png'), cv2.IMREAD_COLOR)
        lr = cv2.imread(os.path.join(src, 'LR', f'{pair}.png'), cv2.IMREAD_COLOR)
        if hr is None or lr is None:
            raise SystemExit(f'City100 pair {pair} not found in {src}/HR and {src}/LR')
        h, w = hr.shape[0] // SCALE * SCALE, hr.shape[1] // SCALE * SCALE
        small = cv2.resize(lr[:h, :w], (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)
        name = f'{k:02d}_city100_{pair}.png'
        for folder, img in (('lr', small[top:top + LR_SIZE, left:left + LR_SIZE]),
                            ('gt', hr[SCALE * top:SCALE * (top + LR_SIZE), SCALE * left:SCALE * (left + LR_SIZE)])):
            os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
            cv2.imwrite(os.path.join(out_dir, folder, name), img)
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
