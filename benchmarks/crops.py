"""Side-by-side crops of one image from compare.py runs: base | method ... | GT, each panel labelled.

Example::

    python benchmarks/crops.py --gt benchmarks/data/city100_x4_c480/gt --image 001 --box 120,120,240 \
        --run base=benchmarks/runs/city100_realesrgan_cpu/runs/lway/results/base \
        --run LWay=benchmarks/runs/city100_realesrgan_cpu/runs/lway/results/adapted \
        --run HR-aware=benchmarks/runs/city100_realesrgan_cpu_hr_aware/runs/hr_aware/results/adapted \
        --out docs/img/benchmarks_city100_001_crops.png
"""
import argparse
import os

import cv2
import numpy as np


def panel(path, box, label):
    """(size + 24, size, 3) uint8: the ``box`` (top, left, size) of the image at ``path`` under a label bar."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f'cannot read {path}')
    top, left, size = box
    crop = image[top:top + size, left:left + size]
    if crop.shape[:2] != (size, size):
        raise SystemExit(f'{path}: the box {box} leaves the image ({image.shape[1]} x {image.shape[0]})')
    bar = np.full((24, size, 3), 255, np.uint8)
    cv2.putText(bar, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, crop], axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt', required=True, help='GT folder')
    parser.add_argument('--image', required=True, help='image stem (PNG in every folder)')
    parser.add_argument('--box', default='0,0,240', help='top,left,size of the crop in output pixels')
    parser.add_argument('--run', action='append', required=True, help='LABEL=FOLDER of output images, in order')
    parser.add_argument('--out', required=True, help='PNG to write')
    args = parser.parse_args()
    box = tuple(int(v) for v in args.box.split(','))
    panels = [panel(os.path.join(folder, f'{args.image}.png'), box, label)
              for label, folder in (run.split('=', 1) for run in args.run)]
    panels.append(panel(os.path.join(args.gt, f'{args.image}.png'), box, 'GT'))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    strip = np.concatenate([p for pair in zip(panels, [gap] * len(panels)) for p in pair][:-1], axis=1)
    cv2.imwrite(args.out, strip)
    print(args.out, strip.shape[1], 'x', strip.shape[0])


if __name__ == '__main__':
    main()
