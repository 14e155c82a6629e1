"""``report.html``: one self-contained page (inline CSS, images as relative PNG links, no network)."""
import html
import math

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.9em} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td.name{text-align:left;font-family:monospace} tr.mean td{font-weight:bold;background:#fafafa}
td.better{background:#e3f6e3;color:#135f13} td.worse{background:#fbe3e3;color:#8a1414}
.crops{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:18px} figure{margin:0}
figure img{width:256px;image-rendering:pixelated;border:1px solid #ccc} figcaption{font-size:0.85em;text-align:center}
.curves img{max-width:480px;margin:4px} .note{color:#8a5a00} code{background:#f3f3f3;padding:0 3px}
"""


def _esc(text):
    return html.escape(str(text), quote=True)


def _fmt(value):
    if value is None:
        return '&ndash;'
    if isinstance(value, float) and math.isinf(value):
        return 'inf'
    return f'{value:.4f}'


def _delta_cell(metric, before, after):
    """Adapted-minus-base cell with an arrow for the direction of change, coloured better / worse."""
    if before is None or after is None or any(isinstance(v, float) and not math.isfinite(v) for v in (before, after)):
        return '<td>&ndash;</td>'
    delta = after - before
    if delta == 0:
        return '<td>= 0</td>'
    arrow = '&#9650;' if delta > 0 else '&#9660;'  # up / down triangle: the value went up / down
    css = 'better' if metric.better(after, before) else 'worse'
    word = 'better' if css == 'better' else 'worse'
    return f'<td class="{css}" title="{word}">{arrow} {delta:+.4f}</td>'


def metrics_table(rows, metrics, variants, means):
    """HTML table: per image and mean; for two variants also the change, coloured by each metric's direction."""
    compare = len(variants) == 2
    head1 = ['<th rowspan="2">image</th>']
    head2 = []
    for m in metrics:
        span = len(variants) + (1 if compare else 0)
        arrow = '&darr; lower is better' if m.lower_better else '&uarr; higher is better'
        head1.append(f'<th colspan="{span}" title="{_esc(m.weights)}">{_esc(m.name)} <small>{arrow}</small></th>')
        head2 += [f'<th>{_esc(v)}</th>' for v in variants] + (['<th>change</th>'] if compare else [])
    lines = ['<table>', '<tr>' + ''.join(head1) + '</tr>', '<tr>' + ''.join(head2) + '</tr>']

    def cells(scores):
        out = []
        for m in metrics:
            values = [scores.get(v, {}).get(m.name) for v in variants]
            out += [f'<td>{_fmt(x)}</td>' for x in values]
            if compare:
                out.append(_delta_cell(m, values[0], values[1]))
        return ''.join(out)

    for row in rows:
        lines.append(f'<tr><td class="name">{_esc(row["name"])}</td>{cells(row["scores"])}</tr>')
    lines.append(f'<tr class="mean"><td class="name">mean ({len(rows)} images)</td>{cells(means)}</tr>')
    lines.append('</table>')
    return '\n'.join(lines)


def render_page(title, summary_lines, table_html, metrics, skipped, crop_blocks, curve_files, notes):
    """Assemble the page. ``crop_blocks``: ``[(image name, box, [(label, relative png path)])]``."""
    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             f'<title>{_esc(title)}</title><style>{_CSS}</style></head><body>', f'<h1>{_esc(title)}</h1>']
    parts += [f'<p>{_esc(line)}</p>' for line in summary_lines]
    parts.append('<h2>Metrics</h2>')
    parts.append(table_html)
    parts.append('<ul>')
    for m in metrics:
        direction = 'lower is better' if m.lower_better else 'higher is better'
        kind = 'full-reference' if m.full_reference else 'no-reference'
        parts.append(f'<li><b>{_esc(m.name)}</b> ({direction}, {kind}): <code>{_esc(m.weights)}</code></li>')
    for name, reason in (skipped or {}).items():
        parts.append(f'<li class="note"><b>{_esc(name)}</b> not computed: {_esc(reason)}</li>')
    parts.append('</ul>')
    if crop_blocks:
        parts.append('<h2>Crops where base and adapted outputs differ most</h2>')
        for name, box, figures in crop_blocks:
            top, left, h, w = box
            parts.append(f'<h3>{_esc(name)} <small>(rows {top}&ndash;{top + h}, columns {left}&ndash;{left + w})</small></h3>')
            parts.append('<div class="crops">')
            for label, rel in figures:
                parts.append(f'<figure><a href="{_esc(rel)}"><img src="{_esc(rel)}" alt="{_esc(label)}"></a>'
                             f'<figcaption>{_esc(label)}</figcaption></figure>')
            parts.append('</div>')
    if curve_files:
        parts.append('<h2>Curves</h2><div class="curves">')
        for name, rel in curve_files:
            parts.append(f'<a href="{_esc(rel)}"><img src="{_esc(rel)}" alt="{_esc(name)}"></a>')
        parts.append('</div>')
    if notes:
        parts.append('<h2>Notes</h2><ul>' + ''.join(f'<li class="note">{_esc(n)}</li>' for n in notes) + '</ul>')
    parts.append('</body></html>')
    return '\n'.join(parts) + '\n'
