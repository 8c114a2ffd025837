"""The viewers: one per modality kind, registered here and nowhere else.

A viewer draws one modality of a datapoint (docs/bundles.md, "Modalities and views") and,
given a view, the view's per-atom scores on it: a heatmap over an image's patches (an alpha
mask with outlines, so an object keeps its own colour) or its boxes, highlighted tokens, a
time × feature heatmap beside the series, bars over fields, features over time for audio,
a strip over a clip's frames. A view that holds a pre-rendered asset is shown as the image,
clip or sound it is. :data:`VIEWERS` maps each kind to its template partial
(``templates/viewers/<kind>.html``) and the payload keys it reads; :func:`draw_modality` and
:func:`draw_view` build what the partial needs, here in Python: the templates only place it.

Colours are SVG attributes or CSS classes (the Content-Security-Policy allows no inline
style), on one colour-blind-safe diverging palette: orange for positive scores, blue for
negative. Every heatmap comes with a legend that says what the sign means, never naming a
class. Coordinates in the drawings are written with decimals: a whole number in the page
could read as a count answer.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
from django.template.loader import render_to_string
from PIL import Image

from viz_engine.bundles.format import asset_suffix
from viz_engine.palette import BLUE, ORANGE

__all__ = ["VIEWERS", "Viewer", "clean_modalities", "draw_modality", "draw_view", "colour", "legend"]


@dataclass(frozen=True)
class Viewer:
    kind: str
    template: str          # the partial that draws it
    payload: tuple         # the modality's keys it reads (besides name and kind)
    scores: str            # the shape of a view's scores on it


VIEWERS = {v.kind: v for v in (
    Viewer("image", "viewers/image.html", ("asset", "width", "height", "boxes"),
           '{"grid": [[float]*cols]*rows} or {"boxes": [float per box]}'),
    Viewer("text", "viewers/text.html", ("tokens",), "[float per token]"),
    Viewer("timeseries", "viewers/timeseries.html", ("values", "feature_names", "times"), "[[float]*F]*T"),
    Viewer("tabular", "viewers/tabular.html", ("fields",), "[float per field]"),
    Viewer("audio", "viewers/audio.html", ("features", "feature_names", "times", "asset"), "[[float]*F]*T or [float]*T"),
    Viewer("video", "viewers/video.html", ("asset", "poster"), "[float per frame]"),
)}
ASSET_TEMPLATE = "viewers/asset.html"
LEGEND_TEMPLATE = "viewers/legend.html"
IMAGE_TYPES = (".png", ".jpg", ".gif")

# what a positive score means, per stage (never a class's name)
TOWARD = {"U": "the model's answer", "C": "the model's answer", "Rl": "a higher value of the feature",
          "Rg": "a higher value of the feature"}


def clean_modalities(modalities) -> list[dict]:
    """A record's modalities with only what their viewers read (name, kind and payload):
    nothing else of the record reaches the page. Unknown kinds and unnamed ones are left out."""
    out = []
    for m in modalities or []:
        if isinstance(m, dict) and m.get("kind") in VIEWERS and isinstance(m.get("name"), str):
            out.append({"name": m["name"], "kind": m["kind"],
                        **{k: m[k] for k in VIEWERS[m["kind"]].payload if k in m}})
    return out


# -- numbers and colours ----------------------------------------------------------------------
def _n(x: float) -> str:
    """A coordinate as the drawings write it: always with decimals."""
    return f"{float(x):.2f}"


def _finite(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) else 0.0


def _scaled(values, normalised: bool = False, signed: bool = True) -> list:
    """Numbers (nested lists) scaled to [-1, 1] by their largest magnitude (as they are when
    ``normalised``, clamped); unsigned: magnitudes in [0, 1]."""
    flat = []

    def walk(v):
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        x = _finite(v)
        flat.append(abs(x))
        return x

    tree = walk(values)
    peak = 1.0 if normalised else (max(flat) if flat and max(flat) > 0 else 1.0)

    def scale(v):
        if isinstance(v, list):
            return [scale(x) for x in v]
        x = max(-1.0, min(1.0, v / peak))
        return x if signed else abs(x)

    return scale(tree)


def colour(v: float) -> str:
    """The palette: white at 0, orange toward +1, blue toward −1 (colour-blind safe)."""
    end = ORANGE if v >= 0 else BLUE
    t = min(1.0, abs(v))
    return "#" + "".join(f"{round(255 + (c - 255) * t):02x}" for c in end)


def _grey(v: float) -> str:
    g = round(245 - 200 * max(0.0, min(1.0, v)))
    return f"#{g:02x}{g:02x}{g:02x}"


def legend(signed: bool = True, toward: str = "the model's answer", mask: bool = False, text: str = "") -> dict:
    """What a heatmap's legend says and draws: the palette from −1 to +1 (or 0 to 1)."""
    steps = [k / 5 for k in range(-5, 6)] if signed else [k / 10 for k in range(0, 11)]
    cells = [{"x": _n(i), "fill": colour(v)} for i, v in enumerate(steps)]
    if text:
        words = text
    elif signed:
        words = f"orange: pushes toward {toward}, blue: against; the stronger the colour, the more"
    else:
        words = "orange, the stronger the more it matters (strength only, no direction)"
    if mask:
        words += "; dimmed: matters little"
    return {"cells": cells, "width": _n(len(steps)), "signed": signed, "text": words}


def _mask_png(s: np.ndarray) -> str:
    """The mask over a picture, one pixel a cell (scaled by the browser, pixelated): black,
    the more opaque the less the cell matters (|s| in [0, 1]), as a data: URL. One image
    instead of an element a cell: a 48 × 48 map is 2,304 cells, a page of them megabytes."""
    alpha = np.round(255 * 0.6 * (1 - np.abs(s)) ** 1.5).astype(np.uint8)
    rgba = np.zeros((*s.shape, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _outline(strong: np.ndarray, cw: float, ch: float) -> str:
    """SVG path data of the border of the cells in ``strong`` (rows × cols, booleans): one
    path around each region, not a box around every cell; straight runs joined."""
    rows, cols = strong.shape
    padded = np.pad(strong, 1)
    parts = []
    for r in range(rows + 1):  # horizontal edges between row r-1 and row r
        edge = padded[r, 1:-1] != padded[r + 1, 1:-1]
        for start, stop in _runs(edge):
            parts.append(f"M{_n(start * cw)} {_n(r * ch)}H{_n(stop * cw)}")
    for c in range(cols + 1):  # vertical edges between column c-1 and column c
        edge = padded[1:-1, c] != padded[1:-1, c + 1]
        for start, stop in _runs(edge):
            parts.append(f"M{_n(c * cw)} {_n(start * ch)}V{_n(stop * ch)}")
    return "".join(parts)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) index ranges where ``flags`` is true."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


# -- assets -----------------------------------------------------------------------------------
def _type_of(url) -> str:
    """The asset type of a URL or path as the page links it (its opaque name keeps the real
    extension): .png, .jpg, .gif, .mp4, .wav or ""."""
    return asset_suffix(urlsplit(url).path) if isinstance(url, str) else ""


def _asset(url, alt: str = "", caption: str = "") -> dict:
    kind = _type_of(url)
    return {"src": url, "type": kind, "is_image": kind in IMAGE_TYPES, "is_video": kind == ".mp4",
            "is_audio": kind == ".wav", "alt": alt, "caption": caption}


# -- per kind ---------------------------------------------------------------------------------
def _image(m: dict, scores, signed: bool, normalised: bool) -> dict:
    width, height = _finite(m.get("width")), _finite(m.get("height"))
    boxes = [b for b in m.get("boxes") or [] if isinstance(b, dict) and len(b.get("box") or []) == 4]
    ctx = {"src": m.get("asset"), "mask_src": None, "outlines": [], "boxes": [], "viewbox": None, "mask": False}
    grid = scores.get("grid") if isinstance(scores, dict) else None
    box_scores = scores.get("boxes") if isinstance(scores, dict) else None
    if grid and all(isinstance(r, list) and r for r in grid):
        rows, cols = len(grid), max(len(r) for r in grid)
        w, h = (width, height) if width > 0 and height > 0 else (float(cols), float(rows))
        s = np.zeros((rows, cols))
        for r, row in enumerate(_scaled(grid, normalised, signed)):
            s[r, :len(row)] = row
        outlines = [(colour(sign), _outline(s * sign >= 0.5, w / cols, h / rows)) for sign in (1, -1)]
        ctx.update(mask_src=_mask_png(s), outlines=[{"stroke": c, "d": d} for c, d in outlines if d],
                   viewbox=f"{_n(0)} {_n(0)} {_n(w)} {_n(h)}", mask=True)
    if boxes and width > 0 and height > 0:
        s = _scaled(box_scores, normalised, signed) if isinstance(box_scores, list) else []
        for k, b in enumerate(boxes):
            x0, y0, x1, y1 = (_finite(v) for v in b["box"])
            v = s[k] if k < len(s) else None
            ctx["boxes"].append({"x": _n(x0), "y": _n(y0), "w": _n(max(x1 - x0, 0)), "h": _n(max(y1 - y0, 0)),
                                 "label": b.get("label") or "", "ty": _n(y0 + height * .09),
                                 "stroke": colour(v) if v is not None else "#ffffff",
                                 "scored": v is not None})
        ctx["viewbox"] = f"{_n(0)} {_n(0)} {_n(width)} {_n(height)}"
        ctx["font"] = _n(max(height * .08, 1.0))  # labels a fixed share of the picture, at any size
    return ctx


def _text(m: dict, scores, signed: bool, normalised: bool, query=()) -> dict:
    from .templatetags.highlights import weight_class

    tokens = [str(t) for t in m.get("tokens") or []]
    s = _scaled(scores, normalised, signed) if isinstance(scores, list) else None
    query = set(query or ())
    return {"tokens": [{"token": t, "cls": weight_class(s[k]) if s is not None and k < len(s) else "",
                        "query": k in query} for k, t in enumerate(tokens)]}


def _sparkline(values: list[float], x0: float, y0: float, w: float, h: float) -> str:
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    n = max(len(values) - 1, 1)
    return " ".join(f"{_n(x0 + w * k / n)},{_n(y0 + h - h * (v - lo) / span)}" for k, v in enumerate(values))


def _over_time(rows_by_feature: list[list[float]], names: list[str], times: list, heat, signed, normalised,
               line_label: str, values_as_lines: bool = True) -> dict:
    """Series (one row per feature: a line, and beside it its row of the T × F heatmap)."""
    row_h, label_w, line_w, gap, heat_w = 26.0, 120.0, 200.0, 16.0, 300.0
    n_f = len(rows_by_feature)
    n_t = max((len(r) for r in rows_by_feature), default=0)
    heat_scaled = None
    if heat is not None:
        # [[F]*T] → per feature; [T] → one strip over time
        if heat and all(isinstance(r, list) for r in heat):
            heat_scaled = [list(col) for col in zip(*_scaled(heat, normalised, signed))]
        else:
            heat_scaled = [_scaled(list(heat), normalised, signed)]
    x_heat = label_w + (line_w + gap if values_as_lines else 0)
    rows = []
    for f in range(n_f):
        y = 8.0 + f * row_h
        row = {"label": names[f] if f < len(names) else "", "ly": _n(y + row_h * .65), "lx": _n(label_w - 6)}
        vals = [_finite(v) for v in rows_by_feature[f]]
        if values_as_lines and vals:
            row["points"] = _sparkline(vals, label_w, y + 3, line_w, row_h - 8)
        else:
            t = len(vals) or 1
            row["cells"] = [{"x": _n(x_heat + heat_w * k / t), "y": _n(y), "w": _n(heat_w / t + .01), "h": _n(row_h - 3),
                             "fill": _grey(v)} for k, v in enumerate(_scaled(vals, False, False))]
        rows.append(row)
    strips = []
    if heat_scaled is not None:
        x_scores = x_heat + (heat_w + gap if not values_as_lines else 0)
        for f, series in enumerate(heat_scaled):
            y = 8.0 + f * row_h
            t = len(series) or 1
            strips.append([{"x": _n(x_scores + heat_w * k / t), "y": _n(y), "w": _n(heat_w / t + .01),
                            "h": _n(row_h - 3), "fill": colour(v)} for k, v in enumerate(series)])
        width = x_scores + heat_w + 4
    else:
        width = x_heat + (0 if values_as_lines else heat_w) + 4
    height = 8.0 + max(n_f, len(heat_scaled or [])) * row_h + 22
    first, last = (times[0], times[-1]) if times else (0, n_t - 1 if n_t else 0)
    axes = []  # the first and last time under the lines, and under each heatmap
    spans = [(label_w, label_w + line_w)] if values_as_lines else [(x_heat, x_heat + heat_w)]
    if heat_scaled is not None:
        spans.append((x_scores, x_scores + heat_w))
    for x0, x1 in spans:
        axes.append({"y": _n(height - 6), "first": str(first), "last": str(last), "x0": _n(x0), "x1": _n(x1)})
    return {"rows": rows, "strips": strips, "viewbox": f"{_n(0)} {_n(0)} {_n(width)} {_n(height)}", "axes": axes,
            "lines": values_as_lines, "line_label": line_label, "scored": heat_scaled is not None,
            "narrow": width < 500}


def _timeseries(m: dict, scores, signed, normalised) -> dict:
    values = [list(r) for r in m.get("values") or [] if isinstance(r, list)]
    per_feature = [list(col) for col in zip(*values)] if values else []
    return _over_time(per_feature, list(m.get("feature_names") or []), list(m.get("times") or []),
                      scores if isinstance(scores, list) and scores else None, signed, normalised, "the series")


def _tabular(m: dict, scores, signed, normalised) -> dict:
    fields = [f for f in m.get("fields") or [] if isinstance(f, dict)]
    s = _scaled(scores, normalised, signed) if isinstance(scores, list) else None
    rows = []
    for k, f in enumerate(fields):
        row = {"name": f.get("name", ""), "value": f.get("value", "")}
        if s is not None and k < len(s):
            v = s[k]
            row["bar"] = {"x": _n(min(0.0, v) if signed else 0.0), "w": _n(abs(v)), "fill": colour(v if signed else abs(v))}
        rows.append(row)
    return {"rows": rows, "scored": s is not None, "bar_box": f"{_n(-1 if signed else 0)} {_n(0)} {_n(2 if signed else 1)} {_n(1)}"}


def _audio(m: dict, scores, signed, normalised) -> dict:
    feats = [list(r) for r in m.get("features") or [] if isinstance(r, list)]
    per_feature = [list(col) for col in zip(*feats)] if feats else []
    ctx = {"sound": None, "picture": None, "drawing": None}
    asset = m.get("asset")
    if _type_of(asset) == ".wav":
        ctx["sound"] = _asset(asset)
    elif _type_of(asset) in IMAGE_TYPES:
        ctx["picture"] = _asset(asset, alt=f"the {m.get('name', 'audio')} as a spectrogram")
    heat = scores if isinstance(scores, list) and scores else None
    if per_feature or heat is not None:
        ctx["drawing"] = _over_time(per_feature, list(m.get("feature_names") or []), list(m.get("times") or []),
                                    heat, signed, normalised, "the features", values_as_lines=False)
    return ctx


def _video(m: dict, scores, signed, normalised) -> dict:
    ctx = {"clip": _asset(m.get("asset")), "poster": m.get("poster") if _type_of(m.get("poster")) in IMAGE_TYPES else None,
           "strip": None}
    if isinstance(scores, list) and scores:
        s = _scaled(scores, normalised, signed)
        t = len(s)
        ctx["strip"] = {"cells": [{"x": _n(100 * k / t), "w": _n(100 / t + .01), "fill": colour(v)}
                                  for k, v in enumerate(s)], "viewbox": f"{_n(0)} {_n(0)} {_n(100)} {_n(6)}"}
    return ctx


PREPARE = {"image": _image, "text": _text, "timeseries": _timeseries, "tabular": _tabular, "audio": _audio,
           "video": _video}


# -- drawing ----------------------------------------------------------------------------------
def draw_modality(m: dict, alt: str = "") -> str:
    """One modality as it is (no scores)."""
    viewer = VIEWERS.get(m.get("kind"))
    if viewer is None:
        return ""
    ctx = PREPARE[viewer.kind](m, None, True, False)
    return render_to_string(viewer.template, {"m": m, "d": ctx, "alt": alt or f"the {m.get('name', '')} of this example",
                                              "legend": None, "plain": True})


def group_legend() -> dict:
    """The one legend under a feature's highlighted examples (Rg): the engine's pictures and
    the words' colours."""
    return legend(True, TOWARD["Rg"], text="pictures: bright and outlined in orange where it matters most, dimmed "
                  "where it matters little; words: orange raises the feature, blue lowers it")


def c_choices(view: dict) -> dict:
    """The C views of a page: ``fixed``, those of no word (DIME's parts, EMAP), always shown;
    ``views``, those of a word or phrase, each with its words; ``picker`` when there are
    several of the latter (one map per word): the page then shows one at a time."""
    by_name = {m["name"]: m for m in view.get("modalities") or []}
    fixed, out = [], []
    for v in view.get("views", {}).get("C") or []:
        if not isinstance(v, dict):
            continue
        if not v.get("query"):
            fixed.append(v)
            continue
        words = by_name.get(v.get("query_modality") or "", {}).get("tokens") or []
        query = [q for q in v["query"] if isinstance(q, int) and 0 <= q < len(words)]
        out.append({"view": v, "words": " ".join(str(words[q]) for q in query) or (v.get("title") or "")})
    return {"fixed": fixed, "views": out, "picker": len(out) > 1}


def draw_view(view: dict, modalities: list[dict], stage: str = "U", with_legend: bool = True) -> str:
    """One view: its scores drawn on its modality by that kind's viewer (an image's
    pre-rendered asset offered beside it), or its pre-rendered asset as it is. Drawn scores
    come with their legend, but for words and pre-rendered pictures only ``with_legend``
    (a group of them, such as Rg's examples, shares one: :func:`group_legend`)."""
    if not isinstance(view, dict):
        return ""
    by_name = {m["name"]: m for m in modalities}
    m = by_name.get(view.get("modality"))
    signed = view.get("signed", True) is not False
    normalised = bool(view.get("normalised"))
    scores = view.get("scores")
    asset = view.get("asset") if _type_of(view.get("asset")) else None
    title, caption = view.get("title") or "", view.get("caption") or ""
    toward = TOWARD.get(stage, "the model's answer")
    context = {"view": view, "title": title, "caption": caption, "stage": stage}
    query = [q for q in view.get("query") or [] if isinstance(q, int)]
    query_words = []
    if query:
        words = by_name.get(view.get("query_modality") or "", {}).get("tokens") or []
        query_words = [str(words[q]) for q in query if 0 <= q < len(words)]
    context["query_words"] = " ".join(query_words) if " ".join(query_words) not in title else ""  # said once
    context["query_plural"] = "s" if len(query_words) > 1 else ""
    if m is not None and scores is not None:
        viewer = VIEWERS[m["kind"]]
        extra = {"query": query} if m["kind"] == "text" and view.get("query_modality") in (None, m["name"]) else {}
        d = PREPARE[m["kind"]](m, scores, signed, normalised, **extra)
        is_mask = m["kind"] == "image" and d.get("mask")
        context.update(m=m, d=d, alt=view.get("alt") or title, plain=False,
                       legend=(legend(signed, toward, mask=is_mask, text=view.get("legend") or "")
                               if with_legend or m["kind"] != "text" else None),
                       also=_asset(asset, alt=view.get("alt") or title) if asset else None)
        return render_to_string(viewer.template, context)
    if asset:
        a = _asset(asset, alt=view.get("alt") if view.get("alt") is not None else title)
        # our engine's pre-rendered maps: the image dimmed where it matters little, outlined
        # where it matters most (viz_engine.render); an imported asset may say its own colours
        text = view.get("legend") or ""
        context.update(a=a, legend=legend(signed, toward, mask=not text, text=text)
                       if with_legend and not a["is_audio"] else None)
        return render_to_string(ASSET_TEMPLATE, context)
    if m is not None and m["kind"] == "text" and query:  # C with only its words: mark them
        d = PREPARE["text"](m, None, True, False, query=query)
        context.update(m=m, d=d, plain=True, legend=None)
        return render_to_string(VIEWERS["text"].template, context)
    return ""
