"""Stage P drawn as the paper draws it, as self-contained SVG in the plots' style
(annotations/plots.py): the prediction graph (features → the model's answer, the class
unnamed) for the annotator, and the accuracy–sparsity curve of the λ path for the
researcher. Every string that comes from data is escaped."""

from __future__ import annotations

from html import escape

__all__ = ["prediction_graph", "sparsity_curve"]

BLUE, GREEN, MAGENTA, GRID, MUTED = "#2b59c3", "#1d7a3a", "#b0309a", "#e3e6ec", "#5b6476"


def prediction_graph(features: list[dict]) -> str:
    """P's top features (``[{"feature": name, "weight", "contribution"}]``, in the section's
    order) as nodes joined to one node, the model's answer, by edges as thick as their
    weights (green positive, magenta negative), each labelled with its weight."""
    if not features:
        return ""
    row, top, left_x, right_x, width = 40, 46, 40, 330, 500
    height = top + row * len(features) + 10
    mid_y = top + row * (len(features) - 1) / 2
    peak = max(abs(float(f.get("weight") or 0.0)) for f in features) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="plot p-graph" '
             f'aria-label="P: the features the model weighs most for its answer, with their weights">',
             f'<text x="0" y="16" font-weight="600">features → the model\'s answer</text>']
    for k, f in enumerate(features):
        w = float(f.get("weight") or 0.0)
        y = top + row * k
        colour = GREEN if w >= 0 else MAGENTA
        stroke = 1 + 7 * abs(w) / peak
        parts.append(f'<line x1="{left_x + 16}" y1="{y:.1f}" x2="{right_x - 22}" y2="{mid_y:.1f}" stroke="{colour}" '
                     f'stroke-width="{stroke:.1f}" stroke-opacity="0.75"><title>{escape(str(f["feature"]))}: weight '
                     f'{w:.2f}</title></line>')
        parts.append(f'<circle cx="{left_x}" cy="{y:.1f}" r="15" fill="#fff" stroke="{BLUE}" stroke-width="2"/>'
                     f'<text x="{left_x}" y="{y + 4:.1f}" text-anchor="middle" font-size="13" font-weight="600">'
                     f'{escape(str(f["feature"]))}</text>')
        lx, ly = left_x + 30 + 0.25 * (right_x - left_x - 52), y + 0.25 * (mid_y - y) - 5
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11" fill="{MUTED}">{w:+.2f}</text>')
    parts.append(f'<rect x="{right_x - 22}" y="{mid_y - 16:.1f}" width="150" height="32" rx="16" fill="#fff" '
                 f'stroke="{BLUE}" stroke-width="2"/><text x="{right_x + 53}" y="{mid_y + 4:.1f}" text-anchor="middle" '
                 f'font-size="12">the model\'s answer</text></svg>')
    return "".join(parts)


def sparsity_curve(curve: dict, chosen_lambda: float | None = None, width: int = 520, height: int = 260) -> str:
    """P's accuracy along the λ path against its number of nonzero weights: agreement with
    the model on P's fitting points (train) and on the held-out quarter (validation); the
    chosen point ringed."""
    xs = [int(v) for v in curve.get("n_nonzero") or []]
    if not xs:
        return ""
    left, right, top, bottom = 52, 16, 30, 40
    pw, ph = width - left - right, height - top - bottom
    x_hi = max(max(xs), 1)
    series = [(name, label, colour) for name, label, colour in
              (("train_accuracy", "fitting points", BLUE), ("val_accuracy", "held-out quarter", GREEN))
              if any(v is not None for v in curve.get(name) or [])]
    ys = [v for name, _, _ in series for v in curve[name] if v is not None]
    y_lo = max(0.0, min(ys) - 0.05) if ys else 0.0
    y_lo = float(int(y_lo * 10)) / 10

    def x(v):
        return left + (v / x_hi) * pw

    def y(v):
        return top + (1 - (v - y_lo) / ((1.0 - y_lo) or 1)) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="plot p-curve" '
             f'aria-label="P: accuracy against sparsity along the lambda path">',
             '<text x="0" y="16" font-weight="600">P · accuracy (agreement with the model) against nonzero weights</text>']
    ticks = [y_lo + (1 - y_lo) * t / 4 for t in range(5)]
    for t in ticks:
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{width - right}" y2="{y(t):.1f}" stroke="{GRID}"/>'
                     f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">'
                     f'{100 * t:.0f}%</text>')
    for t in sorted({0, x_hi // 2, x_hi}):
        parts.append(f'<text x="{x(t):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
                     f'fill="{MUTED}">{t}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="11" fill="{MUTED}">'
                 f'nonzero weights</text>')
    lambdas = curve.get("lambda") or []
    for k, (name, label, colour) in enumerate(series):
        pts = [(x(a), y(b)) for a, b in zip(xs, curve[name]) if b is not None]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                     + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        for a, b, lam, n, v in zip(xs, curve[name], lambdas or [None] * len(xs), xs, curve[name]):
            if b is None:
                continue
            ring = chosen_lambda is not None and lam is not None and abs(lam - chosen_lambda) <= 1e-9 * max(1.0, abs(lam))
            parts.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="{6 if ring else 3}" fill="{"#fff" if ring else colour}" '
                         f'stroke="{colour}" stroke-width="2"><title>{escape(label)}: {100 * v:.1f}% with {n} nonzero '
                         f'weights{" (chosen)" if ring else ""}</title></circle>')
        parts.append(f'<text x="{width - right}" y="{top + ph - 8 - 14 * (len(series) - 1 - k)}" text-anchor="end" font-size="11" '
                     f'fill="{colour}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
