"""Plots for the results dashboard, as self-contained SVG (no front-end libraries).

:func:`interval_plot` draws one row per condition: a dot at the estimate and a whisker for
its interval (mean ± std, or a bootstrap interval), on a fixed axis so conditions compare
at a glance.
"""

from __future__ import annotations

from html import escape

__all__ = ["interval_plot"]


def interval_plot(rows: list[dict], *, title: str, lo: float, hi: float, ticks: list[float],
                  fmt: str = "{:.2f}", width: int = 560, label_w: int = 190) -> str:
    """SVG of ``rows`` = ``[{"label", "value", "low", "high"}]`` (None value: "undefined");
    ``label_w``: the width of the labels' column."""
    row_h, top, bottom = 26, 34, 30
    plot_w = width - label_w - 20
    height = top + row_h * max(len(rows), 1) + bottom

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return label_w + (v - lo) / (hi - lo) * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" class="plot">',
             f'<text x="0" y="16" font-weight="600">{escape(title)}</text>']
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{height - bottom}" stroke="#e3e6ec"/>'
                     f'<text x="{x(t):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#5b6476">{escape(fmt.format(t))}</text>')
    for k, r in enumerate(rows):
        y = top + row_h * k + row_h / 2
        parts.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{escape(r["label"])}</text>')
        if r.get("value") is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 4:.1f}" font-size="12" fill="#5b6476">undefined</text>')
            continue
        if r.get("low") is not None and r.get("high") is not None:
            parts.append(f'<line x1="{x(r["low"]):.1f}" y1="{y:.1f}" x2="{x(r["high"]):.1f}" y2="{y:.1f}" '
                         f'stroke="#2b59c3" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(r["value"]):.1f}" cy="{y:.1f}" r="4.5" fill="#2b59c3">'
                     f'<title>{escape(r["label"])}: {escape(fmt.format(r["value"]))}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
