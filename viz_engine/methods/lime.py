"""U: LIME (Ribeiro et al. 2016) over atoms — the paper's default unimodal method.

Signature shared by the unimodal methods::

    lime(adapter, batch, target, modality, *, n_samples=1000, seed=0, kernel_width=0.25,
         batch_size=256, return_fit=False) -> np.ndarray (B, n_atoms)

* ``target``: a class index or name, ``Label``, ``LogitSum``, ``Feature(index, layer)``
  (Rℓ) or ``B`` per-row class indices (see ``target_scalars``). LIME explains the raw
  scalar (a logit or a feature), not a probability.
* ``modality``: the explained modality; removing an atom sets its elements to
  ``batch.baseline(modality)``; other modalities stay fixed.
* result: float64 ``(B, n_atoms)`` surrogate weights, NaN where a row has fewer atoms than
  the longest row. With ``return_fit=True`` also a :class:`LimeFit` of ``(B,)`` intercepts
  and ``(B,)`` weighted R² scores of the surrogates.

What is ours and what is the ``lime`` package's: we draw the perturbations and score them
with the model in batches; ``lime.lime_base.LimeBase.explain_instance_with_data`` fits the
surrogate (weighted Ridge, alpha=1, on all atoms: ``feature_selection="none"``).

* Perturbations: ``n_samples`` keep-vectors per row (default 1000: LIME's own default;
  enough for a stable fit of up to a few hundred atoms), each atom kept with probability ½
  (as ``lime_image`` does); the first sample keeps every atom (the instance itself).
* Distance: cosine distance of each keep-vector to the all-ones vector,
  d = 1 − sqrt(kept / n_atoms) (what ``lime_text``/``lime_image`` compute, without
  ``lime_text``'s ×100 rescaling) and the kernel sqrt(exp(−d² / kernel_width²)).
  ``kernel_width=0.25`` is ``lime_image``'s default on this same [0, 1] distance scale
  (``lime_text``'s 25 on distances ×100 is the same kernel). A wide kernel (say 100)
  weights every sample equally: the surrogate is then a plain linear regression on the
  binary keep-vectors, which recovers a linear model's contributions exactly.
* Seeding: every row uses the same seeded generator (``seed``), so a row's explanation does
  not depend on which other rows share the batch, and the same seed gives the same numbers.
  ``batch_size`` only changes how many perturbations go through the model at once
  (``batch_size=1`` is the "one model call per sample" reference).

:func:`lime_from_scorer` is the model-free core (used by DIME): it takes a function that
scores a batch of keep-vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from lime.lime_base import LimeBase

from ..adapters import (
    AdapterError,
    Batch,
    Feature,
    MultimodalClassifier,
    perturb_one_row,
    resolve_target,
    scalars_from_logits,
    target_scalars,
)
from ._common import check_call, check_positive_int, sub_target

__all__ = ["lime", "lime_from_scorer", "LimeFit", "sample_keep_vectors", "fit_surrogate"]


@dataclass(frozen=True)
class LimeFit:
    """A LIME surrogate: ``weights`` per atom, ``intercept`` and weighted R² ``score``."""

    weights: np.ndarray
    intercept: np.ndarray
    score: np.ndarray


def sample_keep_vectors(n_atoms: int, n_samples: int, seed: int) -> np.ndarray:
    """``(n_samples, n_atoms)`` bool; each atom kept with probability ½; row 0 keeps all."""
    rng = np.random.RandomState(seed)
    keep = rng.randint(0, 2, size=(n_samples, n_atoms)).astype(bool)
    keep[0] = True
    return keep


def lime_distances(keep: np.ndarray) -> np.ndarray:
    """``(S,)`` cosine distance of each keep-vector to the all-ones vector (all-zero: 1)."""
    n_atoms = keep.shape[1]
    return 1.0 - np.sqrt(keep.sum(axis=1) / max(n_atoms, 1))


def exponential_kernel(distances: np.ndarray, kernel_width: float) -> np.ndarray:
    """LIME's kernel sqrt(exp(−d² / width²))."""
    return np.sqrt(np.exp(-(distances**2) / kernel_width**2))


def fit_surrogate(keep: np.ndarray, scores: np.ndarray, *, kernel_width: float = 0.25, seed: int = 0) -> LimeFit:
    """Fit LIME's weighted Ridge surrogate with ``LimeBase`` on ``(S, n_atoms)`` keep-vectors.

    Returns a :class:`LimeFit` with ``weights`` ``(n_atoms,)`` and scalar intercept/score.
    """
    n_atoms = keep.shape[1]
    if n_atoms == 0:
        return LimeFit(np.zeros(0), np.asarray(float(scores[0])), np.asarray(np.nan))
    base = LimeBase(lambda d: exponential_kernel(d, kernel_width), random_state=seed)
    intercept, pairs, score, _ = base.explain_instance_with_data(
        keep.astype(np.float64),
        np.asarray(scores, dtype=np.float64)[:, None],
        lime_distances(keep),
        label=0,
        num_features=n_atoms,
        feature_selection="none",
    )
    weights = np.zeros(n_atoms)
    for atom, weight in pairs:
        weights[int(atom)] = weight
    return LimeFit(weights, np.asarray(float(intercept)), np.asarray(float(score)))


def _check_lime_params(n_samples, kernel_width, batch_size) -> None:
    if check_positive_int(n_samples, "n_samples") < 2:
        raise AdapterError(f"n_samples must be at least 2, got {n_samples}")
    if not isinstance(kernel_width, (int, float)) or not np.isfinite(kernel_width) or kernel_width <= 0:
        raise AdapterError(f"kernel_width must be a positive number, got {kernel_width!r}")
    check_positive_int(batch_size, "batch_size")


def _score_in_chunks(score_fn: Callable, keep: np.ndarray, batch_size: int) -> np.ndarray:
    keep_t = torch.from_numpy(keep)
    parts = []
    for start in range(0, len(keep), batch_size):
        chunk = keep_t[start : start + batch_size]
        out = torch.as_tensor(score_fn(chunk)).detach()
        if out.shape != (len(chunk),):
            raise AdapterError(
                f"score_fn returned shape {tuple(out.shape)} for {len(chunk)} keep-vectors; "
                f"expected ({len(chunk)},)"
            )
        parts.append(out.double().cpu())
    scores = torch.cat(parts).numpy()
    if not np.isfinite(scores).all():
        raise AdapterError("score_fn returned NaN or infinite scores")
    return scores


def _lime_fit(score_fn, n_atoms, n_samples, seed, kernel_width, batch_size) -> LimeFit:
    _check_lime_params(n_samples, kernel_width, batch_size)
    keep = sample_keep_vectors(n_atoms, n_samples, seed)
    scores = _score_in_chunks(score_fn, keep, batch_size)
    return fit_surrogate(keep, scores, kernel_width=kernel_width, seed=seed)


def lime_from_scorer(
    score_fn,
    n_atoms: int,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    kernel_width: float = 0.25,
    batch_size: int = 256,
) -> np.ndarray:
    """LIME weights ``(n_atoms,)`` for any scorer of atom subsets.

    score_fn: ``keep (S, n_atoms) torch.bool -> (S,) tensor``; called with chunks of at most
    ``batch_size`` keep-vectors (the caller batches its model inside). The first keep-vector
    of the first chunk keeps every atom (the instance being explained).
    """
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 0:
        raise AdapterError(f"n_atoms must be a non-negative integer, got {n_atoms!r}")
    return _lime_fit(score_fn, int(n_atoms), n_samples, seed, kernel_width, batch_size).weights


def _is_single_target(target) -> bool:
    """True unless ``target`` is a per-row sequence of class indices."""
    return not isinstance(target, (torch.Tensor, list, tuple, np.ndarray)) or isinstance(target, str)


def lime(
    adapter: MultimodalClassifier,
    batch: Batch,
    target,
    modality: str,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    kernel_width: float = 0.25,
    batch_size: int = 256,
    return_fit: bool = False,
):
    """Per-atom LIME weights ``(B, n_atoms)`` (NaN = padding); ``+ LimeFit`` if ``return_fit``."""
    n_max = check_call(adapter, batch, target, modality, batch_size)
    _check_lime_params(n_samples, kernel_width, batch_size)
    counts = batch.n_atoms(modality).tolist()
    weights = np.full((batch.size, n_max), np.nan)
    intercepts, scores = np.full(batch.size, np.nan), np.full(batch.size, np.nan)
    # With encode/fuse and a target read off the logits, the modalities LIME does not perturb
    # are encoded once per row rather than once per sample.
    others = [m for m in adapter.modality_names if m != modality]
    reuse = (
        adapter.supports_late_fusion
        and set(batch.inputs) == set(adapter.modality_names)
        and not isinstance(resolve_target(adapter, target) if _is_single_target(target) else None, Feature)
    )
    for r in range(batch.size):
        row, row_target = batch.select([r]), sub_target(target, [r])
        with torch.no_grad():
            fixed = {o: adapter.encode(o, row) for o in others} if reuse else {}

        @torch.no_grad()
        def score_fn(keep: torch.Tensor, row=row, row_target=row_target, fixed=fixed) -> torch.Tensor:
            perturbed = perturb_one_row(row, modality, keep)
            s_target = sub_target(row_target, [0] * len(keep))
            if not reuse:
                return target_scalars(adapter, perturbed, s_target)
            encodings = {o: e.expand(len(keep), *e.shape[1:]) for o, e in fixed.items()}
            encodings[modality] = adapter.encode(modality, perturbed)
            return scalars_from_logits(adapter, adapter.fuse(encodings), s_target)

        fit = _lime_fit(score_fn, int(counts[r]), n_samples, seed, kernel_width, batch_size)
        weights[r, : counts[r]] = fit.weights
        intercepts[r], scores[r] = fit.intercept, fit.score
    if return_fit:
        return weights, LimeFit(weights, intercepts, scores)
    return weights
