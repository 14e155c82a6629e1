"""Score images with tta_sr metrics and write the tables (``metrics.json``, ``metrics.csv``, a text table).

A *row* is ``{'name': str, 'scores': {variant: {metric: float | None}}}``; variants are the outputs
being compared (``'base'`` and ``'adapted'`` in a run report, ``'sr'`` (and ``'bicubic'``) in
``tta-sr evaluate``). ``None`` marks a score that could not be computed (no GT for a full-reference
metric, image too small for NIQE); means are taken over the images that have a score.
"""
import csv
import json
import math
import os

from tta_sr.utils.atomic import atomic_write_bytes


def build_metrics(names, scale=4, device='cpu', on_unavailable='skip'):
    """Create the named metrics; returns ``(metrics, skipped)`` with ``skipped = {name: reason}``.

    ``on_unavailable='raise'`` re-raises the first metric that cannot be built (e.g. nrqm without its file).
    """
    from tta_sr.metrics import canonical_name, create_metric
    metrics, skipped = [], {}
    for name in names:
        name = canonical_name(name)
        if any(m.name == name for m in metrics):
            continue
        try:
            metrics.append(create_metric(name, device=device, scale=scale))
        except (FileNotFoundError, ImportError, RuntimeError) as err:
            if on_unavailable == 'raise':
                raise
            skipped[name] = str(err)
    return metrics, skipped


def score_one(metric, sr, gt, notes, label):
    """``metric(sr, gt)`` or ``None`` (with a note) when it cannot be computed for this image.

    Undefined cases raise ``ValueError`` (too small for PSNR-Y, SSIM, NIQE); a network metric that cannot
    take the image (``RuntimeError``, e.g. LPIPS on a 1 x 1 image) is noted the same way.
    """
    if metric.full_reference and gt is None:
        return None
    try:
        return metric(sr, gt)
    except (ValueError, RuntimeError) as err:
        notes.append(f'{label}: {metric.name} not computed: {err}')
        return None


def mean_scores(rows, variants, metric_names):
    """``({variant: {metric: mean | None}}, {variant: {metric: count}})``, ignoring ``None`` and NaN.

    An infinite PSNR (identical images) makes the mean infinite, as in BasicSR.
    """
    means, counts = {}, {}
    for variant in variants:
        means[variant], counts[variant] = {}, {}
        for name in metric_names:
            values = [row['scores'].get(variant, {}).get(name) for row in rows]
            values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
            counts[variant][name] = len(values)
            means[variant][name] = (sum(values) / len(values)) if values else None
    return means, counts


def _json_number(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None if value is None or math.isnan(value) else ('inf' if value > 0 else '-inf')
    return float(value)


def metrics_document(rows, metrics, variants, scale, skipped=None, notes=None, extra=None, gate=None):
    """The JSON-ready dictionary written to ``metrics.json`` (infinite scores become the strings ``'inf'``)."""
    names = [m.name for m in metrics]
    means, counts = mean_scores(rows, variants, names)
    doc = {
        'scale': scale,
        'variants': list(variants),
        'metrics': {m.name: m.info() for m in metrics},
        'skipped_metrics': dict(skipped or {}),
        'images': [{'name': row['name'], **{v: {n: _json_number(row['scores'].get(v, {}).get(n)) for n in names}
                                            for v in variants}} for row in rows],
        'mean': {v: {n: _json_number(means[v][n]) for n in names} for v in variants},
        'count': counts,
        'notes': list(notes or []),
    }
    if extra:
        doc['extra'] = extra
    if gate:
        doc['gate'] = gate
    return doc


def _fmt(value, digits=4):
    if value is None:
        return ''
    if isinstance(value, float) and math.isinf(value):
        return 'inf' if value > 0 else '-inf'
    return f'{value:.{digits}f}'


def write_metrics_files(out_dir, rows, metrics, variants, scale, skipped=None, notes=None, extra=None, gate=None):
    """Write ``metrics.json`` and ``metrics.csv`` into ``out_dir``; returns their paths.

    CSV layout: one row per image and a last row ``mean``; columns ``image`` then
    ``<metric>_<variant>`` for every metric and variant (empty cell: not computed).
    """
    os.makedirs(out_dir, exist_ok=True)
    doc = metrics_document(rows, metrics, variants, scale, skipped, notes, extra, gate)
    json_path = os.path.join(out_dir, 'metrics.json')
    atomic_write_bytes(json_path, (json.dumps(doc, indent=2) + '\n').encode('utf-8'))
    names = [m.name for m in metrics]
    means, _ = mean_scores(rows, variants, names)
    header = ['image'] + [f'{n}_{v}' for n in names for v in variants]
    lines = [header]
    for row in rows:
        lines.append([row['name']] + [_fmt(row['scores'].get(v, {}).get(n), 6) for n in names for v in variants])
    lines.append(['mean'] + [_fmt(means[v][n], 6) for n in names for v in variants])
    csv_path = os.path.join(out_dir, 'metrics.csv')
    import io
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator='\n').writerows(lines)
    atomic_write_bytes(csv_path, buffer.getvalue().encode('utf-8'))
    return json_path, csv_path


def format_table(rows, metrics, variants, max_rows=None):
    """Plain-text table (per image and mean) for a terminal; a direction arrow follows each metric name."""
    names = [m.name for m in metrics]
    means, _ = mean_scores(rows, variants, names)
    header = ['image'] + [f'{m.name}{"↓" if m.lower_better else "↑"}' + (f' {v}' if len(variants) > 1 else '')
                          for m in metrics for v in variants]
    body = [[row['name']] + [_fmt(row['scores'].get(v, {}).get(n)) or '-' for n in names for v in variants]
            for row in rows]
    if max_rows is not None and len(body) > max_rows:
        body = body[:max_rows] + [[f'... {len(rows) - max_rows} more'] + [''] * (len(header) - 1)]
    body.append(['mean'] + [_fmt(means[v][n]) or '-' for n in names for v in variants])
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    def line(cells):
        return '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = '-' * len(line(header))
    return '\n'.join([line(header), sep] + [line(r) for r in body[:-1]] + [sep, line(body[-1])])
