"""The transformer views of an item (bundle section T) drawn as small SVGs: attention
statistics per layer × head, where each word looks in the image, and the last layer's
hidden-state map. Every string that comes from data is escaped."""

from __future__ import annotations

from html import escape


def _colour(v: float, lo: float, hi: float) -> str:
    t = 0.0 if hi <= lo else min(max((v - lo) / (hi - lo), 0.0), 1.0)
    return f"rgba(43, 89, 195, {0.08 + 0.85 * t:.3f})"


def stats_grid(matrix: list[list[float]], title: str) -> str:
    """Layers (rows) × heads (columns), darker = more; values in the tooltips."""
    cell, left, top = 26, 64, 30
    rows, cols = len(matrix), len(matrix[0]) if matrix else 0
    flat = [v for row in matrix for v in row if v is not None]
    lo, hi = (min(flat), max(flat)) if flat else (0.0, 1.0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + cols * cell + 10}" height="{top + rows * cell + 20}" '
           f'role="img" aria-label="{escape(title)}"><text x="0" y="14" font-size="12" font-weight="600">{escape(title)}</text>']
    for r, row in enumerate(matrix):
        out.append(f'<text x="0" y="{top + r * cell + 17}" font-size="11">layer {r + 1}</text>')
        for c, v in enumerate(row):
            fill = "#eee" if v is None else _colour(v, lo, hi)
            out.append(f'<rect x="{left + c * cell}" y="{top + r * cell}" width="{cell - 2}" height="{cell - 2}" '
                       f'fill="{fill}"><title>layer {r + 1}, head {c + 1}: {"–" if v is None else f"{v:.3f}"}</title></rect>')
    out.append(f'<text x="{left}" y="{top + rows * cell + 14}" font-size="10" fill="#5b6476">heads →</text></svg>')
    return "".join(out)


def word_grid(weights: list[float], side: int, label: str) -> str:
    """One word's attention over the image tokens, drawn on the patch grid."""
    cell = 18
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{side * cell}" height="{side * cell + 16}" role="img" '
           f'aria-label="attention of {escape(label)}">']
    peak = max([w for w in weights if w is not None] or [1.0]) or 1.0
    for k, w in enumerate(weights):
        r, c = divmod(k, side)
        out.append(f'<rect x="{c * cell}" y="{r * cell}" width="{cell - 1}" height="{cell - 1}" '
                   f'fill="{_colour(w or 0.0, 0.0, peak)}"><title>{w:.3f}</title></rect>')
    out.append(f'<text x="0" y="{side * cell + 12}" font-size="11">{escape(label)}</text></svg>')
    return "".join(out)


def place_labels(anchors: list[tuple[float, float]], texts: list[str], width: float, height: float,
                 char_w: float = 5.6, line_h: float = 11.0) -> list[tuple[float, float]]:
    """Where each text's label goes (x of its left end, y of its baseline) near its anchor
    point, so that no two labels overlap while a free place is within reach: greedily, in
    the order given, the first free place among rings of positions around the anchor, else
    the nearest place inside the drawing. Words on a hidden-state map clump together; their
    labels must still be read."""
    placed: list[tuple[float, float, float, float]] = []  # boxes (x0, y0, x1, y1)
    out = []
    for (ax, ay), text in zip(anchors, texts):
        w = char_w * len(text) + 2
        spots = [(x, y, (x, y - line_h + 2, x + w, y + 2)) for x, y in _around(ax, ay, w, line_h)]
        spots = [sp for sp in spots if sp[2][0] >= 1 and sp[2][1] >= 1 and sp[2][2] <= width - 1
                 and sp[2][3] <= height - 1]
        free = next((sp for sp in spots if not any(_overlap(sp[2], b) for b in placed)), None)
        if free is None and not spots:  # nothing fits inside: at the anchor, clamped
            x = min(max(ax + 5, 1), width - w - 1)
            free = (x, ay - 4, (x, ay - 4 - line_h + 2, x + w, ay - 2))
        x, y, box = free or spots[0]
        placed.append(box)
        out.append((x, y))
    return out


def _around(ax: float, ay: float, w: float, line_h: float):
    """Label places around a point (left end, baseline), ring by ring outward."""
    for radius in (6, 14, 24, 36, 50, 66):
        for dx, dy in ((1, -1), (1, 1), (-1, -1), (-1, 1), (1, 0), (-1, 0), (0, -1), (0, 1)):
            yield (ax + dx * radius - (w if dx < 0 else w / 2 if dx == 0 else 0),
                   ay + dy * radius + (line_h if dy > 0 else 0 if dy < 0 else line_h / 3))


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def state_map(points: list[list[float]], tokens: list[str], segments: list[int]) -> str:
    """The tokens of both modalities on the layer's shared 2-D map (blue: image, green: words)."""
    w, h, pad = 360, 260, 24
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def sx(v):
        return pad + (v - x0) / ((x1 - x0) or 1) * (w - 2 * pad)

    def sy(v):
        return h - pad - (v - y0) / ((y1 - y0) or 1) * (h - 2 * pad)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="hidden-state map">',
           f'<rect width="{w}" height="{h}" fill="#fafbfc" stroke="#dfe3ea"/>']
    for (x, y), tok, sg in zip(points, tokens, segments):
        colour = {1: "#2b59c3", 2: "#1d7a3a"}.get(sg, "#888")
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{colour}"><title>{escape(tok)}</title></circle>')
    words = [(sx(x), sy(y), tok) for (x, y), tok, sg in zip(points, tokens, segments) if sg == 2]
    spots = place_labels([(ax, ay) for ax, ay, _ in words], [t for *_, t in words], w, h)
    for (ax, ay, tok), (lx, ly) in zip(words, spots):
        if abs(lx - ax) > 8 or abs(ly - ay) > 16:  # moved away from its point: a line back to it
            out.append(f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{min(max(ax, lx), lx + 5.6 * len(tok)):.1f}" '
                       f'y2="{ly - 4:.1f}" stroke="#9aa3b2" stroke-width="0.8"/>')
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10">{escape(tok)}</text>')
    out.append("</svg>")
    return "".join(out)


def transformer_figures(section: dict) -> dict:
    stats = section["statistics"]
    side = section["image_grid"][0] if section.get("image_grid") else 0
    last = section["maps"][-1]
    return {
        "cross": stats_grid(stats["cross_modal_z"], "cross-modal attention (z)"),
        "text_to_image": stats_grid(stats["text_to_image"], "words → image"),
        "words": [{"mean": word_grid(v["mean"], side, v["token"]),
                   "heads": [word_grid(h, side, f"head {k + 1}") for k, h in enumerate(v.get("per_head", [[]])[-1])]}
                  for v in section["word_to_image"].values()] if side else [],
        "map": state_map(last["points"], section["tokens"], section["segments"]),
        "map_layer": last["layer"],
    }
