"""C: EMAP, the empirical multimodally-additive projection (Hessel & Lee, 2020).

For two modalities a, b and a sample of N datapoints, let M[i, j] = f(a_i, b_j) (logits,
``(N, N, C)``). The additive projection of f at datapoint i is

    f̂(a_i, b_i) = mean_j M[i, j] + mean_j M[j, i] − mean_{j,k} M[j, k]

the best additive approximation of f on the sample. f − f̂ is what only an interaction
between a and b can explain: zero for every point of an additive model f = g1(a) + g2(b).
Per dataset, comparing the accuracy of f with that of f̂ tells whether the model's
performance depends on interactions at all (Hessel & Lee's test).

The N×N matrix is the expensive part (N² forward passes): :func:`pairwise_logits` computes
it in batches, uses ``encode``/``fuse`` when the adapter offers them (each modality is then
encoded N times, not N² times), and caches it on disk by the content hash of the model's
weights and the sample. DIME reuses the same matrix.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..adapters import AdapterError, Batch, MultimodalClassifier

__all__ = ["pairwise_logits", "emap_projection", "emap", "emap_from_matrix", "EMAPResult", "content_hash"]


def content_hash(adapter: MultimodalClassifier, batch: Batch, modalities: tuple[str, str]) -> str:
    """sha256 over the model's parameters and buffers and the sample's inputs and extras."""
    h = hashlib.sha256()
    h.update(repr(modalities).encode())
    for name, t in sorted(adapter.module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for m in sorted(batch.inputs):
        h.update(m.encode())
        h.update(batch.inputs[m].detach().cpu().contiguous().numpy().tobytes())
        for k, t in sorted(batch.extras.get(m, {}).items()):
            h.update(k.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_pair(adapter: MultimodalClassifier, batch: Batch, modalities) -> tuple[str, str]:
    if modalities is None:
        names = adapter.modality_names
        if len(names) != 2:
            raise AdapterError(
                f"modalities must name two modalities: this model has {len(names)} ({list(names)})"
            )
        modalities = names
    modalities = tuple(modalities)
    if len(modalities) != 2 or modalities[0] == modalities[1]:
        raise AdapterError(f"modalities must be two different modality names; got {modalities}")
    for m in modalities:
        adapter.modality(m)
        if m not in batch.inputs:
            raise AdapterError(f"modalities names {m!r}, which this batch does not have")
    if batch.size < 2:
        raise AdapterError(f"EMAP needs a sample of at least 2 datapoints; batch has {batch.size}")
    return modalities  # type: ignore[return-value]


@torch.no_grad()
def pairwise_logits(
    adapter: MultimodalClassifier,
    batch: Batch,
    modalities: tuple[str, str] | None = None,
    *,
    batch_size: int = 1024,
    cache_dir: str | os.PathLike | None = None,
    use_late_fusion: bool = True,
) -> np.ndarray:
    """``(N, N, C)`` float32 logits ``M[i, j] = f(a_i, b_j)`` for ``modalities = (a, b)``.

    Modalities other than ``a`` and ``b`` (models with three or more) travel with ``a``.

    Args:
        batch_size: pairs per forward pass (or per ``fuse`` call for late-fusion models).
        cache_dir:  if given, the matrix is stored there as ``emap-<hash>.npy`` and read back
                    on the next call with the same weights and sample.
        use_late_fusion: use ``encode``/``fuse`` when the adapter has them.
    """
    a, b = _check_pair(adapter, batch, modalities)
    n = batch.size
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"emap-{content_hash(adapter, batch, (a, b))}.npy"
        if path.exists():
            cached = np.load(path)
            if cached.shape[:2] == (n, n):
                return cached
    adapter.eval()
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    out = torch.empty(n * n, adapter.n_classes)
    if use_late_fusion and adapter.supports_late_fusion and len(batch.inputs) == 2:
        enc_a = adapter.encode(a, batch)
        enc_b = adapter.encode(b, batch)
        for s in range(0, n * n, batch_size):
            sl = slice(s, s + batch_size)
            out[sl] = adapter.fuse({a: enc_a[ii[sl]], b: enc_b[jj[sl]]})
    else:
        others = [m for m in batch.inputs if m not in (a, b)]
        lean = batch.model_inputs()  # rows are only scored: copy no atom maps
        for s in range(0, n * n, batch_size):
            sl = slice(s, s + batch_size)
            rows_a, rows_b = lean.select(ii[sl]), lean.select(jj[sl])
            parts = {a: rows_a, b: rows_b, **{m: rows_a for m in others}}
            out[sl] = adapter.logits(Batch.combine(parts))
    matrix = out.reshape(n, n, -1).numpy().astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, matrix)
        os.replace(tmp, path)  # atomic: a reader never sees half a matrix
    return matrix


def emap_projection(matrix: np.ndarray) -> np.ndarray:
    """The additive projection of every point: ``(N, N, ...)`` → ``(N, ...)``.

    f̂_i = mean_j M[i, j] + mean_j M[j, i] − mean_{j,k} M[j, k].
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim < 2 or m.shape[0] != m.shape[1]:
        raise AdapterError(f"matrix must have shape (N, N, ...); got {m.shape}")
    return m.mean(axis=1) + m.mean(axis=0) - m.mean(axis=(0, 1))


@dataclass
class EMAPResult:
    """EMAP over a sample of N points with C classes.

    logits:      ``(N, C)`` f at each point (the diagonal of the matrix).
    projection:  ``(N, C)`` f̂, the additive projection.
    interaction: ``(N, C)`` f − f̂ (DIME's MI at the point itself).
    interaction_norm: ``(N,)`` ‖f − f̂‖₂ per point: how much each point relies on interactions.
    interaction_share: dataset level, Σ‖f − f̂‖² / Σ‖f − mean f‖²: the share of the logits'
                 variation over the sample that the additive projection cannot explain
                 (0 for an additive model).
    accuracy_model, accuracy_projection: accuracies of argmax f and argmax f̂ against
                 ``labels`` (None without labels): Hessel & Lee's dataset-level test.
    agreement:   fraction of points where argmax f̂ == argmax f.
    """

    logits: np.ndarray
    projection: np.ndarray
    interaction: np.ndarray
    interaction_norm: np.ndarray
    interaction_share: float
    agreement: float
    accuracy_model: float | None = None
    accuracy_projection: float | None = None


def emap(
    adapter: MultimodalClassifier,
    batch: Batch,
    modalities: tuple[str, str] | None = None,
    *,
    labels: np.ndarray | Tensor | None = None,
    matrix: np.ndarray | None = None,
    batch_size: int = 1024,
    cache_dir: str | os.PathLike | None = None,
) -> EMAPResult:
    """EMAP of ``adapter`` on the sample ``batch`` (per point and for the whole sample).

    Args:
        modalities: the two modalities to separate (default: the model's two).
        labels:     ``(N,)`` true labels, for the accuracies of f and f̂.
        matrix:     a precomputed :func:`pairwise_logits` matrix (skips the model).
    """
    if matrix is None:
        matrix = pairwise_logits(adapter, batch, modalities, batch_size=batch_size, cache_dir=cache_dir)
    return emap_from_matrix(matrix, labels)


def emap_from_matrix(matrix: np.ndarray, labels=None) -> EMAPResult:
    """:func:`emap` on a given ``(N, N, C)`` matrix (no model needed)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        m = m[..., None]
    proj = emap_projection(m)
    logits = np.einsum("iic->ic", m)
    gap = logits - proj
    centred = logits - logits.mean(axis=0, keepdims=True)
    denom = float((centred**2).sum())
    share = float((gap**2).sum() / denom) if denom > 0 else 0.0
    acc_m = acc_p = None
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != m.shape[0]:
            raise AdapterError(f"labels has {y.shape[0]} entries for a sample of {m.shape[0]}")
        acc_m = float((logits.argmax(1) == y).mean())
        acc_p = float((proj.argmax(1) == y).mean())
    return EMAPResult(
        logits=logits,
        projection=proj,
        interaction=gap,
        interaction_norm=np.linalg.norm(gap, axis=1),
        interaction_share=share,
        agreement=float((logits.argmax(1) == proj.argmax(1)).mean()),
        accuracy_model=acc_m,
        accuracy_projection=acc_p,
    )
