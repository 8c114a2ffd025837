"""Sanity checks for attributions (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

An attribution that explains the *model* must change when the model does. Two tests:

* **cascading model-parameter randomisation**: randomise the layers one at a time from the
  top (the final linear layer first) down to the input, keeping earlier randomisations, and
  after each step compare the attributions with the original ones;
* **data randomisation**: retrain the model on permuted labels and compare.

Similarity is the Spearman rank correlation of |attribution| per row (over that row's atoms,
NaN/padding atoms ignored), averaged over rows. A method that passes shows correlations
falling towards 0; one that stays near 1 is explaining the input, not the model.

``attribute(adapter, batch, target) -> np.ndarray (B, n_atoms)`` is any attribution method
bound to its options, e.g. ``lambda a, b, t: gradient(a, b, t, "image")``.
Randomisation works on a deep copy of the adapter: the caller's model is never modified.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr

from viz_engine.adapters import AdapterError, Batch, MultimodalClassifier

__all__ = ["cascading_randomization", "data_randomization", "rank_correlation", "randomise_module"]

Attribute = Callable[[MultimodalClassifier, Batch, object], np.ndarray]


def rank_correlation(a, b) -> np.ndarray:
    """``(B,)`` Spearman correlation of |a[i]| and |b[i]| per row, over atoms finite in both.

    NaN for a row with fewer than 2 such atoms or a constant row (no ranking to compare).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise AdapterError(f"attributions must be two (B, n_atoms) arrays of one shape; got {a.shape} and {b.shape}")
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        ok = np.isfinite(a[i]) & np.isfinite(b[i])
        x, y = np.abs(a[i, ok]), np.abs(b[i, ok])
        if ok.sum() < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        out[i] = spearmanr(x, y).statistic
    return out


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def randomise_module(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Replace every parameter of ``module`` (recursively) by Gaussian noise in place.

    Each parameter gets ``N(0, rms²)`` with ``rms`` its own root-mean-square value, so
    magnitudes stay plausible while the learned values are gone (a zero bias stays zero).
    """
    with torch.no_grad():
        for p in module.parameters():
            rms = float(p.detach().double().pow(2).mean().sqrt()) if p.numel() else 0.0
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
            p.copy_((noise * rms).to(p.dtype))


def _cascade_order(adapter: MultimodalClassifier) -> list[str]:
    """Modules holding their own parameters, top (output) first, the final linear first."""
    named = [(n, m) for n, m in adapter.module.named_modules()
             if any(True for _ in m.parameters(recurse=False))]
    names = [n for n, _ in reversed(named)]
    try:
        final = next(n for n, m in named if m is adapter.final_linear)
    except (StopIteration, NotImplementedError):
        return names
    return [final] + [n for n in names if n != final]


def _call(attribute: Attribute, adapter, batch, target, shape=None) -> np.ndarray:
    out = attribute(adapter, batch, target)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != batch.size:
        raise AdapterError(f"attribute must return a (B={batch.size}, n_atoms) array; got shape {out.shape}")
    if shape is not None and out.shape != shape:
        raise AdapterError(f"attribute returned shape {out.shape} after randomisation, {shape} before")
    return out


def cascading_randomization(adapter: MultimodalClassifier, batch: Batch, target, attribute: Attribute,
                            layers: Sequence[str] | None = None, seed: int = 0) -> list[dict]:
    """Randomise layers cumulatively from the top and track attribution similarity.

    Args:
        adapter, batch, target: what is explained (passed on to ``attribute``).
        attribute: ``(adapter, batch, target) -> (B, n_atoms)`` attribution method.
        layers:    module names (``adapter.module.named_modules()`` or ``adapter.layers()``
                   keys) in the order to randomise; default: every module with parameters,
                   the final linear first, then from the output towards the input.
        seed:      seed of the random weights.

    Returns one ``dict(layer, spearman)`` per step: the mean rank correlation between the
    original attributions and those after randomising this layer and all before it.
    """
    if not isinstance(adapter, MultimodalClassifier):
        raise AdapterError(f"adapter must be a MultimodalClassifier; got {type(adapter).__name__}")
    if not isinstance(batch, Batch) or batch.size == 0:
        raise AdapterError("batch must be a non-empty Batch")
    if not callable(attribute):
        raise AdapterError("attribute must be a callable (adapter, batch, target) -> (B, n_atoms)")
    original = _call(attribute, adapter, batch, target)
    model = copy.deepcopy(adapter)
    lookup = {**dict(model.module.named_modules()), **model.layers()}
    order = list(layers) if layers is not None else _cascade_order(model)
    if not order:
        raise AdapterError("layers is empty: there is nothing to randomise")
    unknown = [n for n in order if n not in lookup or n == ""]
    if unknown:
        raise AdapterError(f"layers names unknown modules {unknown}; known: {[n for n in lookup if n][:30]}")
    gen = torch.Generator().manual_seed(seed)
    results = []
    for name in order:
        randomise_module(lookup[name], gen)
        after = _call(attribute, model, batch, target, original.shape)
        results.append(dict(layer=name, spearman=_mean(rank_correlation(original, after))))
    return results


def data_randomization(train_fn: Callable[[object], MultimodalClassifier], attribute: Attribute, batch: Batch,
                       target, labels, seed: int = 0) -> dict:
    """Compare attributions of a model trained on ``labels`` and one trained on permuted labels.

    ``train_fn(labels) -> adapter`` trains a fresh model (same recipe both times).
    Returns ``dict(spearman, spearman_per_row (B,))``.
    """
    if not callable(train_fn):
        raise AdapterError("train_fn must be a callable labels -> adapter")
    if not callable(attribute):
        raise AdapterError("attribute must be a callable (adapter, batch, target) -> (B, n_atoms)")
    if not isinstance(batch, Batch) or batch.size == 0:
        raise AdapterError("batch must be a non-empty Batch")
    n = len(labels) if labels is not None else 0
    if n < 2:
        raise AdapterError("labels must hold at least 2 labels to permute")
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = labels[torch.as_tensor(perm)] if isinstance(labels, torch.Tensor) else np.asarray(labels)[perm]
    trained, randomised = train_fn(labels), train_fn(shuffled)
    for what, m in (("train_fn(labels)", trained), ("train_fn(permuted labels)", randomised)):
        if not isinstance(m, MultimodalClassifier):
            raise AdapterError(f"{what} must return a MultimodalClassifier; got {type(m).__name__}")
    a = _call(attribute, trained, batch, target)
    b = _call(attribute, randomised, batch, target, a.shape)
    per_row = rank_correlation(a, b)
    return dict(spearman=_mean(per_row), spearman_per_row=per_row)
