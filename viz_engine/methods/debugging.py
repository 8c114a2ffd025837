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
5. Judge the selections by what they are for (:func:`compare_selections`): fine-tune the
   last layer from the same starting weights on each selection (paper: one epoch, batch
   32, learning rate tuned), over several seeds, and measure the change of accuracy on
   held-out points — overall and on the slice the error features describe.

Feature matrices are ``(N, d)`` arrays; results are NumPy arrays of row or feature indices.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from viz_engine.adapters import AdapterError
from viz_engine.methods._common import check_positive_int, numeric_matrix

__all__ = ["error_features", "targeted_selection", "random_selection", "uncertainty_selection",
           "fine_tune_final_layer", "compare_selections", "mean_interval"]

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
    # scikit-learn ≥ 1.8 selects the penalty through l1_ratio (``penalty`` is deprecated);
    # liblinear shuffles its coordinates: a fixed random_state makes the same data give the same weights
    clf = (LogisticRegression(solver="liblinear", l1_ratio=1.0, C=C, max_iter=max_iter, random_state=0)
           if penalty == "l1"
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


# -- judging a selection by the fix it brings --------------------------------------------------
def _labels(labels, n: int, n_classes: int, name: str) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(labels))
    if y.shape != (n,) or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise AdapterError(f"{name} must be ({n},) integer class indices; got {y.dtype} {tuple(y.shape)}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise AdapterError(f"{name} must be class indices in [0, {n_classes})")
    return y.long()


def _as_inputs(final_linear: nn.Linear, features, name: str) -> torch.Tensor:
    x = numeric_matrix(features, name)
    if x.shape[1] != final_linear.in_features:
        raise AdapterError(f"{name} has {x.shape[1]} columns; the final layer takes {final_linear.in_features}")
    return torch.as_tensor(x, dtype=final_linear.weight.dtype)


@contextmanager
def _single_threaded():
    """One torch thread for the duration: the last layer's matrices are tiny, and on shared
    cores the threads of a pool wait for each other far longer than they compute (300
    Adam steps: 27 s with 2 threads on a loaded 2-core machine, 0.6 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fine_tune_final_layer(final_linear: nn.Linear, features, labels, *, epochs: int = 1, batch_size: int = 32,
                          lr: float = 1e-3, seed: int = 0) -> nn.Linear:
    """A copy of ``final_linear`` fine-tuned on ``(features, labels)``; the original is untouched.

    The paper's D.5 recipe fine-tunes only the last layer, so its input — the penultimate
    features of the selected points — is fixed: training needs no pass through the model.
    Adam on cross-entropy, ``epochs`` passes in minibatches of ``batch_size`` whose order a
    ``torch.Generator`` seeded with ``seed`` draws: the same seed gives the same weights.

    Args:
        final_linear: the model's last layer (``adapter.final_linear``).
        features: ``(N, in_features)`` penultimate features of the labelled selection.
        labels: ``(N,)`` integer class indices.
    """
    if not isinstance(final_linear, nn.Linear):
        raise AdapterError(f"final_linear must be an nn.Linear; got {type(final_linear).__name__}")
    x = _as_inputs(final_linear, features, "features")
    y = _labels(labels, x.shape[0], final_linear.out_features, "labels")
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise AdapterError(f"lr must be a positive number; got {lr!r}")
    layer = nn.Linear(final_linear.in_features, final_linear.out_features, bias=final_linear.bias is not None,
                      dtype=final_linear.weight.dtype)
    layer.load_state_dict(final_linear.state_dict())
    optimiser = torch.optim.Adam(layer.parameters(), lr=float(lr))
    generator = torch.Generator().manual_seed(int(seed))
    with torch.enable_grad(), _single_threaded():
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=generator)
            for start in range(0, x.shape[0], batch_size):
                rows = order[start:start + batch_size]
                loss = nn.functional.cross_entropy(layer(x[rows]), y[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return layer.eval()


def mean_interval(values, confidence: float = 0.95) -> dict:
    """``dict(mean, std, low, high, n)``: the mean of ``values`` (one per seed) and its
    two-sided Student-t interval at ``confidence`` (needs at least two values)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2 or not np.isfinite(v).all():
        raise AdapterError(f"an interval needs at least two finite values; got {v.tolist()}")
    mean, std = float(v.mean()), float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1)) * std / np.sqrt(len(v))
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": int(len(v))}


def _right(layer: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (layer(x).argmax(dim=1) == y).double()


def _accuracy(layer: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(_right(layer, x, y).mean())


def _accuracies(layer: nn.Linear, x: torch.Tensor, y: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, float]:
    right = _right(layer, x, y)
    return {name: float(right[m].mean()) for name, m in masks.items()}


def compare_selections(final_linear: nn.Linear, pool_features, pool_labels,
                       selections: Mapping[str, Callable[[int], np.ndarray]], held_out_features, held_out_labels,
                       slices: Mapping[str, np.ndarray], *, seeds: Sequence[int], learning_rates: Sequence[float] = (1e-3,),
                       tuning_features=None, tuning_labels=None, epochs: int = 1, batch_size: int = 32,
                       confidence: float = 0.95, progress: Callable[[float], None] | None = None) -> dict:
    """Fine-tune the last layer on each selection, from the same starting weights, and
    measure how held-out accuracy changes — overall and on each slice — over several seeds.

    Args:
        final_linear: the model's last layer; never modified.
        pool_features, pool_labels: ``(P, d)`` penultimate features and ``(P,)`` labels of the
            pool the selections draw from (labels are what labelling the selection would give).
        selections: name → ``select(seed)`` returning the pool rows to label. Called once per
            seed: a random selection draws anew, a deterministic one repeats. The first name
            is compared with each other one (e.g. ``targeted`` against ``random``).
        held_out_features, held_out_labels: ``(T, d)`` and ``(T,)``, never trained or tuned on.
        slices: name → ``(T,)`` bool mask; accuracy is also measured on all rows (``overall``).
        seeds: one run per seed (at least two, for an interval); seed ``s`` orders the
            fine-tuning batches and is handed to ``select``.
        learning_rates: tried per selection; with more than one, the one whose runs have the
            best mean accuracy on ``(tuning_features, tuning_labels)`` — a labelled split, not
            the held-out one — is kept (ties: the earlier). The paper tuned it "to the best
            performance".
        progress: called with the fraction of fine-tuning runs done.

    Returns ``dict(base, sizes, runs, differences)``: ``base[slice]`` the accuracy before,
    ``sizes[slice]`` its rows; ``runs[name] = dict(learning_rate, budget, changes, summary)``
    with ``changes[slice]`` the per-seed accuracy change (fractions: 0.01 = one point) and
    ``summary[slice]`` its :func:`mean_interval`; ``differences[other][slice]`` the interval of
    the per-seed paired difference ``first − other``.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise AdapterError(f"seeds must be at least two distinct integers; got {seeds}")
    if not selections:
        raise AdapterError("selections must name at least one selection")
    rates = [float(r) for r in learning_rates]
    if not rates or not all(np.isfinite(r) and r > 0 for r in rates):
        raise AdapterError(f"learning_rates must be positive numbers; got {list(learning_rates)}")
    px = _as_inputs(final_linear, pool_features, "pool_features")
    py = _labels(pool_labels, px.shape[0], final_linear.out_features, "pool_labels")
    hx = _as_inputs(final_linear, held_out_features, "held_out_features")
    hy = _labels(held_out_labels, hx.shape[0], final_linear.out_features, "held_out_labels")
    masks = {"overall": torch.ones(hx.shape[0], dtype=torch.bool)}
    for name, mask in slices.items():
        m = np.asarray(mask)
        if name == "overall" or m.shape != (hx.shape[0],) or m.dtype != np.bool_ or not m.any():
            raise AdapterError(f"slice {name!r} must be a non-empty ({hx.shape[0]},) bool mask not named 'overall'")
        masks[name] = torch.as_tensor(m)
    tune = None
    if len(rates) > 1:
        if tuning_features is None or tuning_labels is None:
            raise AdapterError("several learning_rates need tuning_features and tuning_labels to choose from")
        tx = _as_inputs(final_linear, tuning_features, "tuning_features")
        tune = (tx, _labels(tuning_labels, tx.shape[0], final_linear.out_features, "tuning_labels"))

    with _single_threaded():
        return _compare(final_linear, px, py, selections, hx, hy, masks, seeds, rates, tune, epochs, batch_size,
                        confidence, progress)


def _compare(final_linear, px, py, selections, hx, hy, masks, seeds, rates, tune, epochs, batch_size,
             confidence, progress) -> dict:
    base = _accuracies(final_linear, hx, hy, masks)
    total, done = len(selections) * len(rates) * len(seeds), 0
    runs = {}
    for name, select in selections.items():
        chosen = []
        for s in seeds:
            rows = np.asarray(select(s))
            if rows.ndim != 1 or not len(rows) or not np.issubdtype(rows.dtype, np.integer) \
                    or rows.min() < 0 or rows.max() >= px.shape[0]:
                raise AdapterError(f"selection {name!r} must give pool row indices in [0, {px.shape[0]})")
            chosen.append(torch.as_tensor(rows, dtype=torch.long))
        best = None
        for lr in rates:
            layers = []
            for rows, s in zip(chosen, seeds):
                layers.append(fine_tune_final_layer(final_linear, px[rows], py[rows], epochs=epochs,
                                                    batch_size=batch_size, lr=lr, seed=s))
                done += 1
                if progress is not None:
                    progress(done / total)
            score = np.mean([_accuracy(layer, *tune) for layer in layers]) if tune else 0.0
            if best is None or score > best[0]:
                best = (score, lr, layers)
        _, lr, layers = best
        after = [_accuracies(layer, hx, hy, masks) for layer in layers]
        changes = {m: [a[m] - base[m] for a in after] for m in masks}
        runs[name] = {"learning_rate": lr, "budget": int(np.mean([len(r) for r in chosen])), "changes": changes,
                      "summary": {m: mean_interval(c, confidence) for m, c in changes.items()}}
    first, *others = list(runs)
    differences = {o: {m: mean_interval(np.subtract(runs[first]["changes"][m], runs[o]["changes"][m]), confidence)
                       for m in masks} for o in others}
    return {"base": base, "sizes": {m: int(v.sum()) for m, v in masks.items()}, "runs": runs,
            "first": first, "differences": differences, "seeds": seeds, "confidence": confidence}
