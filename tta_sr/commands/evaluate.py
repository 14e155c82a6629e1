"""``tta-sr evaluate``: score a folder of SR results (per image and mean).

``tta-sr evaluate --sr DIR [--gt DIR] [--lr DIR] [--metrics psnr_y,ssim,lpips,niqe] [--scale 4] [--out DIR]``

Pairing rule (SR file -> GT / LR file), by file stem (name without suffix), case-sensitive:

1. the file with the *same stem* wins (``0801.png`` <-> ``0801.jpg``);
2. otherwise two stems pair when they become equal after cutting from either one a tail that
   starts at ``_``, ``-`` or ``.``, or a trailing ``x<scale>``:
   ``0801_out`` / ``0801_RealESRGAN_x4`` -> ``0801``; ``0801_out`` -> ``0801x4`` (DIV2K LR naming)
   via the common stem ``0801``; ``08010`` does not pair with ``0801``.

Among several candidates the longest common stem wins; a tie is an error naming the files. SR images
without a partner get empty full-reference cells (and are listed). A GT larger than the SR image by
less than ``scale`` pixels is mod-cropped (bottom / right, as BasicSR does); other size mismatches
leave that image's full-reference cells empty with a note. Alpha channels are ignored (RGB only).
Unreadable files are skipped with a warning; a metric that is undefined for an image (too small for
PSNR-Y / SSIM after the border crop, or for NIQE's blocks) is left empty with a note.

With ``--lr``, the bicubic upscaling of each LR image is scored too (column ``bicubic``), as the
baseline an SR output should beat. Results: a table on stdout, ``metrics.json`` and ``metrics.csv``
in ``--out`` (default: the ``--sr`` folder).
"""
import argparse
import os
import sys

from tta_sr.commands.common import fail, usage, writable_folder
from tta_sr.options.stage2 import DEFAULT_METRICS

PROG = 'tta-sr evaluate'
_SEPARATORS = '_-.'


def image_files(folder, what):
    """Image files (by suffix, not decoded) directly inside ``folder``; the command ends if there are none."""
    from tta_sr.utils.image_io import IMAGE_EXTENSIONS, list_image_files
    if not os.path.isdir(folder):
        fail(PROG, f'{what} folder {folder!r} ' + ('is a file' if os.path.exists(folder) else 'does not exist'))
    files = list_image_files(folder)
    if not files:
        fail(PROG, f'no images ({"/".join(IMAGE_EXTENSIONS)}) in the {what} folder {folder!r}')
    return files


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def stem_forms(stem, scale=4):
    """``stem`` and every stem obtained by cutting a tail at ``_``/``-``/``.`` or a trailing ``x<scale>``."""
    forms, todo = set(), [stem]
    while todo:
        s = todo.pop()
        if not s or s in forms:
            continue
        forms.add(s)
        todo += [s[:i] for i in range(1, len(s)) if s[i] in _SEPARATORS]
        tail = f'x{scale}'
        if s.lower().endswith(tail) and len(s) > len(tail):
            todo.append(s[:-len(tail)])
    return forms


def match_by_stem(sr_paths, other_paths, scale=4):
    """``{sr_path: other_path or None}`` following the pairing rule in the module docstring."""
    others = {}
    for path in other_paths:
        others.setdefault(_stem(path), []).append(path)
    for stem, paths in others.items():
        if len(paths) > 1:
            fail(PROG, f'several files share the stem {stem!r}: {", ".join(paths)}; keep one')
    other_forms = {t: stem_forms(t, scale) for t in others}
    pairs = {}
    for sr in sr_paths:
        s = _stem(sr)
        if s in others:
            pairs[sr] = others[s][0]
            continue
        forms = stem_forms(s, scale)
        common = {t: max((len(f) for f in forms & tf), default=0) for t, tf in other_forms.items()}
        best = max(common.values(), default=0)
        if best == 0:
            pairs[sr] = None
            continue
        top = sorted(t for t, n in common.items() if n == best)
        if len(top) > 1:
            fail(PROG, f'{sr} matches several files equally well: {", ".join(others[t][0] for t in top)}; '
                       'rename them so that stems pair uniquely')
        pairs[sr] = others[top[0]][0]
    return pairs


def evaluate(sr_dir, gt_dir=None, lr_dir=None, metrics=DEFAULT_METRICS, scale=4, out_dir=None,
             device='cpu', progress=True, stream=None):
    """Score every image of ``sr_dir``; write ``metrics.json`` / ``metrics.csv`` to ``out_dir``; return the document.

    Raises ``SystemExit`` with a one-line message for unusable input (a missing or imageless folder, no
    readable image, an output folder that cannot be written, a metric that cannot run here).
    """
    import json

    stream = stream or sys.stdout
    from tta_sr.report.crops import bicubic_upscale, mod_crop_to
    from tta_sr.report.scores import build_metrics, format_table, score_one, write_metrics_files
    from tta_sr.utils.image_io import ImageReadError, read_image

    sr_paths = image_files(sr_dir, 'SR')
    gt_pairs = match_by_stem(sr_paths, image_files(gt_dir, 'GT'), scale) if gt_dir else {p: None for p in sr_paths}
    lr_pairs = match_by_stem(sr_paths, image_files(lr_dir, 'LR'), scale) if lr_dir else {}
    out_dir = writable_folder(out_dir or sr_dir, PROG)
    try:
        metric_objs, _ = build_metrics(metrics, scale=scale, device=device, on_unavailable='raise')
    except (FileNotFoundError, ImportError, RuntimeError, ValueError) as err:
        fail(PROG, str(err))
    variants = ('sr', 'bicubic') if lr_dir else ('sr',)
    if not gt_dir and any(m.full_reference for m in metric_objs):
        names = [m.name for m in metric_objs if m.full_reference]
        print(f'note: no --gt, so {", ".join(names)} (full-reference) are left empty', file=sys.stderr)

    rows, notes = [], []
    iterator = sr_paths
    if progress:
        from tqdm import tqdm
        iterator = tqdm(sr_paths, desc='evaluate', unit='img', file=sys.stderr)
    for sr_path in iterator:
        name = _stem(sr_path)
        try:
            sr, _ = read_image(sr_path)
            gt = read_image(gt_pairs[sr_path])[0] if gt_pairs.get(sr_path) else None
            lr = read_image(lr_pairs[sr_path])[0] if lr_pairs.get(sr_path) else None
        except ImageReadError as err:
            notes.append(f'{name}: skipped: {err}')
            print(f'warning: skipping {name}: {err}', file=sys.stderr)
            continue
        if gt_dir and gt is None:
            notes.append(f'{name}: no GT partner in {gt_dir}')
        if gt is not None:
            cropped = mod_crop_to(gt, sr.shape, scale)
            if cropped.shape != gt.shape:
                notes.append(f'{name}: GT {gt.shape[1]}x{gt.shape[0]} mod-cropped to {sr.shape[1]}x{sr.shape[0]}')
            gt = cropped
        scores = {'sr': {m.name: score_one(m, sr, gt, notes, name) for m in metric_objs}}
        if lr_dir:
            if lr is None:
                notes.append(f'{name}: no LR partner in {lr_dir}')
                scores['bicubic'] = {m.name: None for m in metric_objs}
            else:
                up = bicubic_upscale(lr, sr.shape)
                scores['bicubic'] = {m.name: score_one(m, up, gt, notes, f'{name} (bicubic)') for m in metric_objs}
        rows.append({'name': name, 'scores': scores})
    if not rows:
        fail(PROG, f'no readable image in {sr_dir!r}: ' + '; '.join(notes[:5]))

    extra = {'sr': os.path.abspath(sr_dir), 'gt': gt_dir and os.path.abspath(gt_dir),
             'lr': lr_dir and os.path.abspath(lr_dir)}
    json_path, csv_path = write_metrics_files(out_dir, rows, metric_objs, variants, scale, notes=notes, extra=extra)
    print(format_table(rows, metric_objs, variants), file=stream)
    for m in metric_objs:
        print(f'  {m.name}: {"lower" if m.lower_better else "higher"} is better; {m.weights}', file=stream)
    for note in notes:
        print(f'note: {note}', file=sys.stderr)
    print(f'wrote {json_path} and {csv_path}', file=stream)
    with open(json_path) as f:
        return json.load(f)


def add_parser(subparsers):
    ev = subparsers.add_parser('evaluate', help='score a folder of SR results (per image and mean)',
                               description=__doc__.split('\n\n', 2)[2],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument('--sr', required=True, help='folder of super-resolved images')
    ev.add_argument('--gt', help='folder of ground-truth HR images (for psnr_y, ssim, lpips)')
    ev.add_argument('--lr', help='folder of LR inputs: also scores their bicubic upscaling')
    ev.add_argument('--metrics', default=','.join(DEFAULT_METRICS),
                    help='comma-separated: psnr_y, ssim, lpips, niqe, nrqm (default: %(default)s)')
    ev.add_argument('--scale', type=int, default=4, help='SR factor; PSNR-Y/SSIM/NIQE crop this border (default: 4)')
    ev.add_argument('--out', help='folder for metrics.json / metrics.csv (default: the --sr folder)')
    ev.add_argument('--device', default='cpu', help='device for LPIPS (default: cpu)')
    ev.add_argument('--no-progress', action='store_true', help='no progress bar')
    ev.set_defaults(run=run, command_parser=ev)
    return ev


def run(args):
    names = [n.strip() for n in args.metrics.split(',') if n.strip()]
    if not names:
        usage(args, '--metrics is empty')
    evaluate(args.sr, args.gt, args.lr, names, args.scale, args.out, args.device, progress=not args.no_progress)
    return 0
