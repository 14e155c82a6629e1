"""Loss / metric curves over iterations as PNG files (matplotlib, Agg backend: no display needed)."""
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


def plot_curve(path, name, points, xlabel='iteration'):
    """Write one curve to ``path`` (PNG); returns ``path`` or ``None`` when there is nothing to plot."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure  # object API: no global pyplot state, thread-safe
    xs, ys = _as_points(points)
    if not xs:
        return None
    fig = Figure(figsize=(5, 3), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, markersize=3, linewidth=1.2)
    ax.set_title(name)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp.png'
    fig.savefig(tmp, format='png')
    os.replace(tmp, path)
    return path
