"""Model debugging (paper 3.4 and appendix D.5): error features and targeted data selection.

The D.5 procedure, as the paper ran it on LXMERT / VQA 2.0:

1. Compute the penultimate features of a labelled validation set V (the input of the last
   linear layer: :func:`viz_engine.methods.features.feature_matrix`).
2. Fit a linear model mapping the *absolute values* of those features to a binary label,
   1 = the model got the point wrong, 0 = right (:func:`error_features`), and take the top 5
   dimensions with the largest *positive* weights: the features most associated with errors.
3. Humans inspect those features with Rℓ/Rg (in the paper 2 of 5 were about colour,
   exposing an RGB/BGR preprocessing bug).
4. To fix the bug with a labelling budget N, pick points of an unlabelled set U that most
   activate the chosen features (:func:`targeted_selection`; paper: N/k points per feature,
   those with the highest |activation|), label them and fine-tune the last layer; compare
   with :func:`random_selection` and :func:`uncertainty_selection` (entropy of the predicted
   distribution, Lewis & Catlett 1994) for the same budget.

Feature matrices are ``(N, d)`` arrays; results are NumPy arrays of row or feature indices.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from viz_engine.adapters import AdapterError
from viz_engine.methods._common import numeric_matrix

__all__ = ["error_features", "targeted_selection", "random_selection", "uncertainty_selection"]




def _budget(budget, n: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not 0 <= budget <= n:
        raise AdapterError(f"budget must be an integer in [0, {n}]; got {budget!r}")
    return int(budget)


def error_features(features, correct, k: int = 5, penalty: str = "l1", C: float = 1.0,
                   max_iter: int = 1000) -> dict:
    """The ``k`` features whose magnitude most predicts that the model errs.

    Fits ``LogisticRegression`` (scikit-learn; L1 via liblinear or L2 via lbfgs, inverse
    regularisation ``C``) on standardised ``|features|`` → ``error = ~correct``.

    Args:
        features: ``(N, d)`` representations of labelled points.
        correct:  ``(N,)`` bool, True where the model's prediction was right.
        k:        number of features to return (paper: 5).

    Returns ``dict(feature_indices (k,) int, weights (k,), all_weights (d,), error_rate)``:
    the features with the largest positive weights, in decreasing order (ties: lower index),
    padded with -1 / NaN when fewer than ``k`` weights are positive.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.abs(numeric_matrix(features, "features"))
    n, d = x.shape
    if isinstance(correct, torch.Tensor):
        correct = correct.detach().cpu().numpy()
    correct = np.asarray(correct)
    if correct.shape != (n,) or correct.dtype != np.bool_:
        raise AdapterError(f"correct must be a bool array of shape ({n},); got {correct.dtype} {correct.shape}")
    error = (~correct).astype(int)
    if error.min() == error.max():
        raise AdapterError("correct must contain both right and wrong predictions")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise AdapterError(f"k must be an integer in [1, {d}]; got {k!r}")
    if penalty not in ("l1", "l2"):
        raise AdapterError(f"penalty must be 'l1' or 'l2'; got {penalty!r}")
    std = x.std(axis=0)
    xs = (x - x.mean(axis=0)) / np.where(std < 1e-12, 1.0, std)
    # scikit-learn ≥ 1.8 selects the penalty through l1_ratio (``penalty`` is deprecated)
    clf = (LogisticRegression(solver="liblinear", l1_ratio=1.0, C=C, max_iter=max_iter) if penalty == "l1"
           else LogisticRegression(solver="lbfgs", l1_ratio=0.0, C=C, max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        clf.fit(xs, error)
    w = clf.coef_[0]
    pos = np.flatnonzero(w > 0)
    order = pos[np.lexsort((pos, -w[pos]))][:k]
    idx = np.full(k, -1, dtype=np.int64)
    vals = np.full(k, np.nan)
    idx[: len(order)], vals[: len(order)] = order, w[order]
    return dict(feature_indices=idx, weights=vals, all_weights=w.copy(), error_rate=float(error.mean()))


def targeted_selection(unlabelled_features, feature_indices, budget: int, strategy: str = "per_feature") -> np.ndarray:
    """Indices of the ``budget`` unlabelled points that most activate the chosen features.

    strategy:
        ``"per_feature"`` (paper D.5): the budget is split evenly over the features (the first
        ``budget mod k`` features get one extra); each takes, in turn, its not-yet-chosen
        points with the highest |activation|.
        ``"sum"``: rank points by the sum over the features of standardised |activation|.

    Returns ``(budget,)`` int row indices (distinct; ties broken by lower index).
    """
    x = numeric_matrix(unlabelled_features, "unlabelled_features")
    n, d = x.shape
    feats = np.asarray(feature_indices)
    if feats.ndim != 1 or len(feats) == 0 or not np.issubdtype(feats.dtype, np.integer):
        raise AdapterError(f"feature_indices must be a non-empty 1-D list of integers; got {feature_indices!r}")
    if feats.min() < 0 or feats.max() >= d:
        raise AdapterError(f"feature_indices {feats.tolist()} out of range for {d} features")
    budget = _budget(budget, n)
    mag = np.abs(x[:, feats])
    rows = np.arange(n)
    if strategy == "sum":
        sd = mag.std(axis=0)
        score = ((mag - mag.mean(axis=0)) / np.where(sd < 1e-12, 1.0, sd)).sum(axis=1)
        return np.lexsort((rows, -score))[:budget]
    if strategy != "per_feature":
        raise AdapterError(f"strategy must be 'per_feature' or 'sum'; got {strategy!r}")
    quota = [budget // len(feats) + (i < budget % len(feats)) for i in range(len(feats))]
    orders = [np.lexsort((rows, -mag[:, j])) for j in range(len(feats))]
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    for j, q in enumerate(quota):
        for r in orders[j]:
            if q == 0:
                break
            if not taken[r]:
                taken[r] = True
                chosen.append(int(r))
                q -= 1
    return np.array(chosen, dtype=np.int64)


def random_selection(n: int, budget: int, seed: int = 0) -> np.ndarray:
    """``(budget,)`` distinct row indices drawn uniformly from ``range(n)``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise AdapterError(f"n must be a positive integer; got {n!r}")
    budget = _budget(budget, n)
    return np.random.default_rng(seed).choice(n, size=budget, replace=False).astype(np.int64)


def uncertainty_selection(probs, budget: int, measure: str = "entropy") -> np.ndarray:
    """The ``budget`` points the model is least sure about.

    probs: ``(N, C)`` predicted class probabilities (rows sum to 1).
    measure: ``"entropy"`` (paper D.5: highest entropy of the predicted distribution) or
    ``"margin"`` (smallest gap between the two most probable classes).
    Returns ``(budget,)`` int row indices, most uncertain first (ties: lower index).
    """
    p = numeric_matrix(probs, "probs")
    n, c = p.shape
    if c < 2:
        raise AdapterError(f"probs must have at least 2 classes; got shape {p.shape}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise AdapterError("probs rows must be probability distributions (non-negative, summing to 1)")
    budget = _budget(budget, n)
    if measure == "entropy":
        uncertainty = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1)
    elif measure == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        uncertainty = -(top2[:, 1] - top2[:, 0])
    else:
        raise AdapterError(f"measure must be 'entropy' or 'margin'; got {measure!r}")
    return np.lexsort((np.arange(n), -uncertainty))[:budget]
