"""tta_sr/data/crop_budget.py: what a model is judged on is bounded and seeded, whatever the photos."""
from tta_sr.data.crop_budget import budget_crops, crop, crop_boxes, most_detailed


def test_a_small_image_is_whole_and_a_large_one_gives_seeded_crops_inside_it():
    assert crop_boxes(60, 100, 128, 2, 0, 'a.png') == [(0, 0, 60, 100)]
    boxes = crop_boxes(945, 1445, 128, 3, 0, 'a.png')
    assert len(boxes) == 3 and all(h == w == 128 and 0 <= t <= 945 - 128 and 0 <= l <= 1445 - 128
                                   for t, l, h, w in boxes)
    assert boxes == crop_boxes(945, 1445, 128, 3, 0, 'a.png')  # the same photo, the same crops
    assert boxes != crop_boxes(945, 1445, 128, 3, 1, 'a.png') and boxes != crop_boxes(945, 1445, 128, 3, 0, 'b.png')
    assert crop_boxes(50, 1000, 128, 1, 0, 'strip.png')[0][2:] == (50, 128)  # clipped to the short side


def test_the_budget_takes_every_image_first_and_never_more_than_the_total():
    shapes = {f'/p/{i}.png': (3000, 4000) for i in range(20)}
    chosen = budget_crops(shapes, 128, 2, 16, 0)
    assert len(chosen) == 16 and len({path for path, _ in chosen}) == 16  # one crop each of 16 photos
    few = budget_crops({'/p/a.png': (3000, 4000), '/p/b.png': (40, 40)}, 128, 3, 16, 0)
    assert [path for path, _ in few] == ['/p/a.png', '/p/b.png', '/p/a.png', '/p/a.png']
    assert len(budget_crops(shapes, 128, 2, 0, 0)) == 40  # 0: no limit


def test_crop_cuts_the_box():
    import numpy as np
    img = np.arange(5 * 6).reshape(5, 6)
    assert crop(img, (1, 2, 3, 2)).tolist() == [[8, 9], [14, 15], [20, 21]]


def test_the_most_detailed_crop_wins():
    import numpy as np
    img = np.zeros((64, 128, 3), np.float32)
    img[:, 64:] = np.indices((64, 64)).sum(0)[..., None] % 2  # a checkerboard on the right half
    assert most_detailed(img, [(0, 0, 32, 32), (10, 80, 32, 32), (30, 20, 32, 32)]) == (10, 80, 32, 32)
