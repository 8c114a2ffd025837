"""Transformer views (VL-InterpreT): statistics of attention per layer × head.

Signature::

    attention_statistics(attentions, segments, valid=None, *, image_grid=None,
                         neighbourhood=1) -> dict[str, np.ndarray (layers, heads)]

* ``attentions``: one ``(B, heads, T, T)`` tensor/array per layer, rows = queries (each row
  sums to 1 over the valid keys).
* ``segments``: ``(B, T)`` ints, ``IMAGE`` (1) for image tokens, ``TEXT`` (2) for words, any
  other value (0: ``[CLS]`` and other special tokens) for tokens no statistic counts.
* ``valid``: ``(B, T)`` bool, False for padding (default: all valid).
* ``image_grid``: ``(rows, cols)`` of the image tokens in order (row-major), which defines
  an image token's neighbours (Chebyshev distance ≤ ``neighbourhood``).

Each statistic is the attention mass that queries of one kind give to keys of another,
averaged over the queries of that kind and over the batch: ``text_to_image``,
``image_to_text``, ``image_to_image``, ``image_to_image_other`` (without self and
neighbours; needs ``image_grid``), ``text_to_text``, ``cross_modal`` (the mean of the two
cross directions) and ``intra_modal`` (the mean of the two within-modality ones). Every
statistic also comes z-scored over all layer × head cells (``<name>_z``), so heads that
stand out are easy to find. NaN where a batch has no query of the kind.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..adapters import AdapterError

__all__ = ["IMAGE", "TEXT", "attention_statistics", "neighbour_mask"]

IMAGE, TEXT = 1, 2


def _as_array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise AdapterError(f"{name} contains NaN or infinite values")
    return x


def neighbour_mask(positions: np.ndarray, image_grid: tuple[int, int], neighbourhood: int = 1) -> np.ndarray:
    """``(T, T)`` bool: image token i and image token j are the same or neighbours.

    positions: ``(T,)`` index of each token among the image tokens (−1 for other tokens).
    """
    rows, cols = image_grid
    t = positions.shape[0]
    out = np.zeros((t, t), dtype=bool)
    img = np.flatnonzero(positions >= 0)
    if len(img) and positions[img].max() >= rows * cols:
        raise AdapterError(f"image_grid={image_grid} has fewer cells than the {len(img)} image tokens")
    r, c = positions[img] // cols, positions[img] % cols
    close = (np.abs(r[:, None] - r[None, :]) <= neighbourhood) & (np.abs(c[:, None] - c[None, :]) <= neighbourhood)
    out[np.ix_(img, img)] = close
    return out


def _zscore(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    if finite.sum() < 2:
        return np.full_like(x, np.nan)
    mu, sd = x[finite].mean(), x[finite].std()
    return (x - mu) / sd if sd > 0 else np.zeros_like(x)


def attention_statistics(attentions: Sequence, segments, valid=None, *, image_grid: tuple[int, int] | None = None,
                         neighbourhood: int = 1) -> dict[str, np.ndarray]:
    if len(attentions) == 0:
        raise AdapterError("attentions must hold at least one layer")
    layers = [_as_array(a, f"attentions[{i}]") for i, a in enumerate(attentions)]
    seg = np.asarray(segments.detach().cpu() if isinstance(segments, torch.Tensor) else segments)
    if seg.ndim != 2:
        raise AdapterError(f"segments must be (B, T); got shape {seg.shape}")
    b, t = seg.shape
    for i, a in enumerate(layers):
        if a.ndim != 4 or a.shape[0] != b or a.shape[2:] != (t, t):
            raise AdapterError(f"attentions[{i}] has shape {a.shape}; expected (B={b}, heads, {t}, {t})")
    ok = np.ones((b, t), bool) if valid is None else np.asarray(valid, dtype=bool)
    if ok.shape != (b, t):
        raise AdapterError(f"valid must have shape ({b}, {t}); got {ok.shape}")
    is_img, is_txt = (seg == IMAGE) & ok, (seg == TEXT) & ok

    others = None
    if image_grid is not None:
        others = np.zeros((b, t, t), dtype=bool)
        for r in range(b):
            pos = np.full(t, -1)
            pos[np.flatnonzero(seg[r] == IMAGE)] = np.arange(int((seg[r] == IMAGE).sum()))
            others[r] = ~neighbour_mask(pos, image_grid, neighbourhood)

    def mass(a: np.ndarray, queries: np.ndarray, keys: np.ndarray, key_filter=None) -> np.ndarray:
        """(heads,) mean over valid queries of the attention mass on ``keys``."""
        k = keys[:, None, None, :]  # (B, 1, 1, T)
        weights = a * k if key_filter is None else a * (k & key_filter[:, None])
        per_query = weights.sum(-1)  # (B, heads, T)
        q = queries[:, None, :]
        n = q.sum(axis=(0, 2))
        total = (per_query * q).sum(axis=(0, 2))
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)

    stats: dict[str, list] = {k: [] for k in ("text_to_image", "image_to_text", "image_to_image", "text_to_text")}
    if others is not None:
        stats["image_to_image_other"] = []
    for a in layers:
        stats["text_to_image"].append(mass(a, is_txt, is_img))
        stats["image_to_text"].append(mass(a, is_img, is_txt))
        stats["image_to_image"].append(mass(a, is_img, is_img))
        stats["text_to_text"].append(mass(a, is_txt, is_txt))
        if others is not None:
            stats["image_to_image_other"].append(mass(a, is_img, is_img, others))
    out = {k: np.stack(v) for k, v in stats.items()}
    out["cross_modal"] = (out["text_to_image"] + out["image_to_text"]) / 2
    out["intra_modal"] = (out["image_to_image"] + out["text_to_text"]) / 2
    for k in list(out):
        out[f"{k}_z"] = _zscore(out[k])
    return out
