"""Rendered assets: what people see of the numbers (heatmap overlays, word highlights).

Pure NumPy + Pillow; PNGs come back as bytes so callers decide where they go (a bundle,
an HTTP response, a data: URL).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from .adapters import AdapterError
from .palette import BLUE, ORANGE

__all__ = [
    "image_png",
    "heatmap_overlay_png",
    "normalise_scores",
    "token_highlights",
    "data_url",
    "top_regions",
    "outline_boxes_png",
    "bars_png",
]


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.transpose(1, 2, 0)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise AdapterError(f"image must be H×W×3 (or 3×H×W); got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return img


def _png(arr: np.ndarray, scale: int) -> bytes:
    im = Image.fromarray(arr)
    if scale != 1:
        im = im.resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def image_png(image: np.ndarray, scale: int = 4) -> bytes:
    """The datapoint's image as PNG, enlarged ``scale`` times (nearest neighbour)."""
    return _png(_as_rgb(image), scale)


def normalise_scores(scores: np.ndarray, signed: bool = False) -> np.ndarray:
    """Scores scaled to [0, 1] (or [-1, 1] when ``signed``) by the largest magnitude; NaN → 0."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    if not signed:
        s = np.abs(s)
    peak = np.abs(s).max() if s.size else 0.0
    return s / peak if peak > 0 else np.zeros_like(s)



def heatmap_overlay_png(image: np.ndarray, scores: np.ndarray, scale: int = 4, signed: bool = False) -> bytes:
    """``scores`` (H×W, or fewer cells that tile the image) drawn over the image as PNG.

    The image keeps its own colours where the scores are high and is dimmed where they are
    low (an alpha mask), and the places that matter most are outlined: in orange, or when
    ``signed`` orange for positive and blue for negative scores. A blue triangle stays blue.
    """
    img = _as_rgb(image).astype(np.float64)
    h, w = img.shape[:2]
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        side = int(round(np.sqrt(s.size)))
        if side * side != s.size:
            raise AdapterError(f"scores of length {s.size} are not a square grid")
        s = s.reshape(side, side)
    if h % s.shape[0] or w % s.shape[1]:
        raise AdapterError(f"scores grid {s.shape} does not tile an image of {h}×{w}")
    s = np.kron(normalise_scores(s, signed), np.ones((h // s.shape[0], w // s.shape[1])))
    mag = np.abs(s)
    out = img * (0.3 + 0.7 * np.sqrt(mag))[..., None]  # dim what matters little; keep the colours
    out = np.repeat(np.repeat(out, scale, 0), scale, 1)  # outline at the enlarged size: a thin line
    s = np.repeat(np.repeat(s, scale, 0), scale, 1)
    for sign, colour in ((1, ORANGE), (-1, BLUE)) if signed else ((1, ORANGE),):
        strong = (s * sign if signed else np.abs(s)) >= 0.5
        inner = strong.copy()
        inner[1:, :] &= strong[:-1, :]
        inner[:-1, :] &= strong[1:, :]
        inner[:, 1:] &= strong[:, :-1]
        inner[:, :-1] &= strong[:, 1:]
        out[strong & ~inner] = colour
    im = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def token_highlights(tokens: list[str], scores: np.ndarray, signed: bool = True) -> list[dict]:
    """One ``{"token", "score", "weight"}`` per token; ``weight`` in [-1, 1] drives the colour."""
    s = np.asarray(scores, dtype=np.float64)[: len(tokens)]
    if s.shape[0] != len(tokens):
        raise AdapterError(f"{len(tokens)} tokens but {s.shape[0]} scores")
    weights = normalise_scores(s, signed=signed)
    return [
        {"token": t, "score": float(np.nan_to_num(v)), "weight": round(float(wt), 4)}
        for t, v, wt in zip(tokens, s, weights)
    ]


def top_regions(pixel_scores: np.ndarray, boxes: list[tuple[int, int, int, int]], k: int = 2) -> list[int]:
    """Indices of the ``k`` boxes (x0, y0, x1, y1; x1/y1 exclusive) with the highest mean
    |score| per pixel — the paper's "top bounding boxes" of a second-order gradient."""
    s = np.abs(np.nan_to_num(np.asarray(pixel_scores, dtype=np.float64)))
    if s.ndim != 2:
        raise AdapterError(f"pixel_scores must be H×W; got shape {s.shape}")
    means = []
    for x0, y0, x1, y1 in boxes:
        patch = s[y0:y1, x0:x1]
        means.append(patch.mean() if patch.size else 0.0)
    order = sorted(range(len(boxes)), key=lambda i: (-means[i], i))
    return order[:k]


def outline_boxes_png(png: bytes, boxes: list[tuple[int, int, int, int]], scale: int = 4,
                      colour: tuple[int, int, int] = (0, 220, 255)) -> bytes:
    """``png`` (an image enlarged ``scale`` times) with ``boxes`` (x0, y0, x1, y1 in the
    original pixels; x1/y1 exclusive) outlined: the top boxes of a second-order gradient."""
    from PIL import ImageDraw

    im = Image.open(io.BytesIO(png)).convert("RGB")
    draw = ImageDraw.Draw(im)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0 * scale - 1, y0 * scale - 1, x1 * scale, y1 * scale], outline=colour, width=2)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def bars_png(values: list[float], width: int = 240, bar: int = 18, gap: int = 8) -> bytes:
    """Horizontal bars around a zero line (green above zero, magenta below), one per value,
    scaled by the largest magnitude: EMAP's additive part and interaction of one score."""
    from PIL import ImageDraw

    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    peak = float(np.abs(v).max()) if v.size else 0.0
    height = gap + len(v) * (bar + gap)
    im = Image.new("RGB", (width, height), (250, 251, 252))
    draw = ImageDraw.Draw(im)
    mid = width // 2
    for k, x in enumerate(v):
        length = 0 if peak == 0 else int(round((width // 2 - 6) * abs(x) / peak))
        y0 = gap + k * (bar + gap)
        x0, x1 = (mid, mid + length) if x >= 0 else (mid - length, mid)
        draw.rectangle([x0, y0, x1, y0 + bar], fill=(40, 200, 80) if x >= 0 else (220, 40, 200))
    draw.line([mid, 0, mid, height], fill=(91, 100, 118), width=1)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
