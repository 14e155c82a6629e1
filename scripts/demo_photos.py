"""Build the quickstart's demo set: natural photos, degraded once by one fixed second-order degradation.

Photos: scikit-image's bundled sample photographs (``skimage.data``), cut into 256 x 256 HR crops.
LR: 64 x 64, made by one Real-ESRGAN second-order degradation with seed ``seed`` for every image
(``HRDegradationDataset`` with ``consistent_degradation``). GT is written for scoring only.

    python scripts/demo_photos.py --out options/quickstart/demo_photos
"""
import argparse
import os
import tempfile

import numpy as np

from tta_sr.data.hr_degradation_dataset import HRDegradationDataset
from tta_sr.utils.image_io import write_image

# (photo, top, left) of each 256 x 256 crop.
CROPS = [('astronaut', 0, 128), ('astronaut', 256, 200), ('chelsea', 40, 120), ('coffee', 100, 150),
         ('rocket', 150, 300), ('coffee', 144, 340)]
GT_SIZE, SCALE = 256, 4


def demo_crops():
    """[(name, (256, 256, 3) float32 RGB in [0, 1])] from skimage's sample photos."""
    from skimage import data
    crops = []
    for i, (photo, top, left) in enumerate(CROPS):
        img = getattr(data, photo)()[top:top + GT_SIZE, left:left + GT_SIZE, :3].astype(np.float32) / 255.0
        crops.append((f'{i:02d}_{photo}', img))
    return crops


def build_demo_set(out_dir, seed=20240601):
    """Write ``out_dir/gt/*.png`` and ``out_dir/lr/*.png``; returns the LR folder."""
    with tempfile.TemporaryDirectory() as hr_dir:
        for name, img in demo_crops():
            write_image(os.path.join(hr_dir, f'{name}.png'), img)
        dataset = HRDegradationDataset({'dataroot_gt': hr_dir, 'gt_size': GT_SIZE, 'scale': SCALE, 'fixed_seed': seed,
                                        'consistent_degradation': True, 'phase': 'val'})
        for i in range(len(dataset)):
            item = dataset[i]
            name = os.path.splitext(os.path.basename(item['gt_path']))[0]
            for key, folder in (('gt', 'gt'), ('lq', 'lr')):
                write_image(os.path.join(out_dir, folder, f'{name}.png'), item[key].permute(1, 2, 0).numpy())
    return os.path.join(out_dir, 'lr')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='options/quickstart/demo_photos')
    parser.add_argument('--seed', type=int, default=20240601)
    args = parser.parse_args()
    print(build_demo_set(args.out, args.seed))


if __name__ == '__main__':
    main()
