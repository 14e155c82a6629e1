"""``write_report``: metrics, crops and curves of a test-time adaptation run in one folder."""
import datetime
import os
import re

import numpy as np

from tta_sr.data.crop_budget import crop
from tta_sr.report.crops import bicubic_upscale, mod_crop_to, pick_crop_box
from tta_sr.report.curves import plot_candidates, plot_curve
from tta_sr.report.html import metrics_table, render_page
from tta_sr.report.scores import build_metrics, mean_scores, score_one, write_metrics_files
from tta_sr.options.stage2 import DEFAULT_METRICS
from tta_sr.utils.atomic import atomic_write_text

FILES_DIR = 'report_files'


def safe_stem(name):
    """File-system-safe version of an image or curve name."""
    return re.sub(r'[^A-Za-z0-9._-]+', '_', str(name)).strip('._') or 'image'


def _check(img, what, shape=None):
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'write_report: {what} must be an RGB (H, W, 3) float array in [0, 1], got {img.shape}')
    if shape is not None and img.shape != shape:
        raise ValueError(f'write_report: {what} has shape {img.shape} but the base output has {shape}; '
                         'all outputs (and the GT) of one image must have the same size')
    return img


def _fit_gt(gt, shape, scale, name, notes):
    """The GT mod-cropped to the output ``shape`` (larger by less than ``scale`` px), or ``None`` with a note
    when its size does not fit (the image is then scored by the no-reference metrics only)."""
    gt = _check(gt, f'{name}: gt')
    fitted = mod_crop_to(gt, shape, scale)
    if fitted.shape == shape:
        return fitted
    notes.append(f'{name}: GT is {gt.shape[1]} x {gt.shape[0]} but the output is {shape[1]} x {shape[0]}; '
                 'full-reference metrics not computed for this image')
    return None


def score_image(item, metrics, variants, notes):
    """``{'name', 'scores': {variant: {metric: value}}}`` of one image (see ``tta_sr.report.scores``)."""
    gt = item.get('gt')
    return {'name': item['name'],
            'scores': {variant: {m.name: score_one(m, item[variant], gt, notes, f'{item["name"]} ({variant})')
                                 for m in metrics} for variant in variants}}


def _checked(item, variants, scale, names_seen, notes):
    """``item`` with its arrays checked (one size per image) and its GT fitted to the outputs."""
    if 'name' not in item or any(v not in item for v in variants):
        raise ValueError(f'write_report: every image needs keys name, {", ".join(variants)}; got {sorted(item)}')
    if item['name'] in names_seen:
        raise ValueError(f'write_report: image name {item["name"]!r} appears twice; names must be unique')
    names_seen.add(item['name'])
    shape = _check(item[variants[0]], f'{item["name"]}: {variants[0]}').shape
    for v in variants[1:]:
        _check(item[v], f'{item["name"]}: {v}', shape)
    if item.get('gt') is not None:
        item = dict(item, gt=_fit_gt(item['gt'], shape, scale, item['name'], notes))
    return item


def write_crops(run_dir, item, variants, crop_size):
    """Side-by-side crops of one image (bicubic LR, each variant, GT) into ``report_files/crops/``;
    returns ``(name, box, [(label, relative path), ...])``."""
    from tta_sr.utils.image_io import write_image
    stem = safe_stem(item['name'])
    box = pick_crop_box(item[variants[0]], item[variants[-1]], crop_size)
    panels = []
    if item.get('lr') is not None:
        panels.append(('bicubic LR', bicubic_upscale(item['lr'], item[variants[0]].shape)))
    panels += [(v, np.asarray(item[v], dtype=np.float32)) for v in variants]
    if item.get('gt') is not None:
        panels.append(('GT', np.asarray(item['gt'], dtype=np.float32)))
    figures = []
    for label, img in panels:
        rel = f'{FILES_DIR}/crops/{stem}_{safe_stem(label)}.png'
        write_image(os.path.join(run_dir, rel), np.clip(crop(img, box), 0, 1))
        figures.append((label, rel))
    return item['name'], box, figures


def write_report(run_dir, images, metrics=DEFAULT_METRICS, curves=None, scale=4, crop_size=96,
                 crops=True, variants=('base', 'adapted'), title=None, device='cpu', on_unavailable='skip',
                 extra=None, progress=False, gate=None):
    """Write ``metrics.json``, ``metrics.csv`` and ``report.html`` (+ ``report_files/``) into ``run_dir``.

    Args:
        run_dir (str): output folder (created).
        images (iterable[dict]): one dict per image, taken one at a time (a generator keeps memory bounded by
            one image whatever their number): ``name`` (str), ``base`` and ``adapted`` (float32
            RGB ``(sH, sW, 3)`` in [0, 1]: the outputs before / after adaptation), optional ``lr``
            (``(H, W, 3)``, shown bicubic-upscaled) and ``gt`` (``(sH, sW, 3)``, needed by PSNR-Y,
            SSIM and LPIPS; without it those cells stay empty).
        metrics (sequence[str]): metric names for ``tta_sr.metrics.create_metric``; ones that cannot
            run here are listed as skipped (``on_unavailable='skip'``) or raise (``'raise'``).
        curves (dict[str, list]): ``{'loss_rec': [(iteration, value), ...], 'lpips': [...]}``; one PNG each.
        scale (int): SR factor (PSNR-Y / SSIM / NIQE crop ``scale`` pixels per edge).
        crop_size (int): side of the side-by-side crops in output pixels (``pick_crop_box``).
        crops (bool): write crops.
        variants (tuple[str]): keys of the compared outputs in each image dict; the first is the
            reference ("before") for the change column.
        title (str): page title (default: the folder name).
        device: where network metrics (LPIPS) run.
        extra (dict): JSON-ready run information stored in ``metrics.json`` and shown on the page.
        gate (dict): the selector's decision (``tta_sr.models.selector.Selection.as_dict``), stored as ``gate`` in
            ``metrics.json``, shown first on the page with a plot of the candidates' scores.

    Returns:
        dict with ``json``, ``csv``, ``html`` paths, ``mean`` (``{variant: {metric: value}}``) and ``skipped``.
    """
    run_dir = os.fspath(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    variants = tuple(variants)
    metric_objs, skipped = build_metrics(metrics, scale=scale, device=device, on_unavailable=on_unavailable)
    rows, gt_notes, notes, crop_blocks, names_seen = [], [], [], [], set()
    if progress:
        from tqdm import tqdm
        images = tqdm(images, desc='metrics', unit='img')
    for item in images:  # one image at a time: what stays is its scores and crop files, never its arrays
        item = _checked(item, variants, scale, names_seen, gt_notes)
        rows.append(score_image(item, metric_objs, variants, notes))
        if crops and len(variants) >= 2:
            crop_blocks.append(write_crops(run_dir, item, variants, crop_size))
        del item
    notes = gt_notes + notes
    if any('fallback' in m.weights for m in metric_objs):
        notes.insert(0, 'LPIPS uses an offline fallback network (see its weights); its values are not comparable '
                        'with published LPIPS numbers.')
    json_path, csv_path = write_metrics_files(run_dir, rows, metric_objs, variants, scale, skipped, notes, extra,
                                              gate)

    curve_files = []
    for name, points in (curves or {}).items():
        rel = f'{FILES_DIR}/curves/{safe_stem(name)}.png'
        if plot_curve(os.path.join(run_dir, rel), name, points) is not None:
            curve_files.append((name, rel))
    if gate and plot_candidates(os.path.join(run_dir, FILES_DIR, 'candidates.png'), gate) is not None:
        curve_files.insert(0, ('what the run could hand back (the red star: what it did)', f'{FILES_DIR}/candidates.png'))

    names = [m.name for m in metric_objs]
    means, _ = mean_scores(rows, variants, names)
    summary = [f'{len(rows)} images, x{scale}, compared: {" vs ".join(variants)}; written '
               f'{datetime.datetime.now().isoformat(timespec="seconds")}.',
               'Tables: metrics.json, metrics.csv (next to this page).']
    if gate:
        summary.insert(0, f'Hand-back: {gate["summary"]}')
    if extra:
        summary.append('Run: ' + ', '.join(f'{k}={v}' for k, v in extra.items()))
    page = render_page(title or f'tta_sr report: {os.path.basename(os.path.abspath(run_dir))}', summary,
                       metrics_table(rows, metric_objs, variants, means), metric_objs, skipped, crop_blocks,
                       curve_files, notes)
    html_path = os.path.join(run_dir, 'report.html')
    atomic_write_text(html_path, page)
    return {'json': json_path, 'csv': csv_path, 'html': html_path, 'mean': means, 'skipped': skipped,
            'crops': [fig for _, _, figs in crop_blocks for _, fig in figs], 'curves': [rel for _, rel in curve_files]}
