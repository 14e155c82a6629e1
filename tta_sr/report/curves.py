"""Loss / metric curves over iterations, and the selector's candidate scores, as PNG files (matplotlib, Agg backend:
no display needed)."""
import math
import os


def _as_points(points):
    """``[(iter, value), ...]`` or ``[value, ...]`` -> two lists of floats (non-finite values dropped)."""
    xs, ys = [], []
    for i, point in enumerate(points):
        if isinstance(point, (tuple, list)) and len(point) == 2:
            x, y = point
        else:
            x, y = i, point
        y = float(y.item() if hasattr(y, 'item') else y)
        if math.isfinite(y):
            xs.append(float(x))
            ys.append(y)
    return xs, ys


def _figure(width, height):
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure  # object API: no global pyplot state, thread-safe
    return Figure(figsize=(width, height), dpi=100)


def _save(fig, path):
    """Write ``fig`` to ``path`` (PNG) atomically; returns ``path``."""
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp.png'
    fig.savefig(tmp, format='png')
    os.replace(tmp, path)
    return path


def plot_curve(path, name, points, xlabel='iteration'):
    """Write one curve to ``path`` (PNG); returns ``path`` or ``None`` when there is nothing to plot."""
    xs, ys = _as_points(points)
    if not xs:
        return None
    fig = _figure(5, 3)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, markersize=3, linewidth=1.2)
    ax.set_title(name)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_candidates(path, selection):
    """The selector's scores against the blend weight a (the source at 0, the last weights at 1; the noise-matched
    PSNR-Y too where it was scored), one line per projection, earlier checkpoints as points at 1, the chosen
    candidate starred; ``selection``: the ``gate`` dict of ``metrics.json``. Returns ``path``, or ``None`` without
    candidates."""
    rows = [c for c in selection.get('candidates') or [] if math.isfinite(c.get('sv_psnr_y', math.nan))]
    if not rows:
        return None
    last = max((c['iteration'] for c in rows if c['iteration'] is not None), default=None)
    panels = [('sv_psnr_y', 'self-validation PSNR-Y (dB) ↑'), ('sv_lpips', 'self-validation LPIPS ↓')]
    if all(math.isfinite(c.get('nm_psnr_y', math.nan)) for c in rows):
        panels.append(('nm_psnr_y', 'noise-matched PSNR-Y (dB) ↑'))
    fig = _figure(4 * len(panels), 3)
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for kind in dict.fromkeys(c['projection'] for c in rows):
            line = sorted((c['alpha'], c[key]) for c in rows if c['projection'] == kind
                          and c['iteration'] in (None, last))
            ax.plot(*zip(*line), marker='o', markersize=3, label=f'projection ({kind})' if kind else 'no projection')
            earlier = [c[key] for c in rows if c['projection'] == kind and c['iteration'] not in (None, last)]
            ax.plot([1.0] * len(earlier), earlier, linestyle='none', marker='x', color='grey')
        chosen = next(c for c in rows if c['name'] == selection['chosen'])
        ax.plot([chosen['alpha']], [chosen[key]], marker='*', markersize=14, color='red', linestyle='none',
                label=f'chosen: {chosen["name"]}')
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('a in theta_0 + a (theta - theta_0)')
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    return _save(fig, path)
