"""Which datapoints (and features) a study shows, as in the paper's appendix D; seeded.

* model simulation: random points, leaving out yes/no questions (two choices tell little)
  and answers too rare for P to say anything about them (paper D.1, and its limitation 1);
* error categorization: random misclassified points (D.4);
* concept assignment: features that P uses (nonzero weight, largest first), each shown on
  the datapoint that activates it most (D.3).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .format import BundleError

__all__ = ["TASKS", "select_items", "select_features"]

TASKS = ("simulation", "concept", "error")


def select_items(labels, predictions, yes_no, *, task: str, n: int, seed: int,
                 exclude_yes_no: bool = True, min_answer_count: int = 20) -> list[int]:
    """Indices of ``n`` datapoints for a simulation or error study, in a seeded random order.

    labels, predictions: ``(N,)`` class names (correct, predicted); yes_no: ``(N,)`` bool.
    Raises :class:`BundleError` when fewer than ``n`` datapoints meet the criteria.
    """
    if task not in ("simulation", "error"):
        raise BundleError(f"task {task!r} selects features, not points (use select_features)" if task == "concept"
                          else f"task {task!r} is unknown; tasks: {', '.join(TASKS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BundleError(f"the number of items must be a positive integer; got {n!r}")
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    counts = Counter(labels.tolist())
    ok = np.array([counts[a] >= min_answer_count for a in labels.tolist()])
    if exclude_yes_no:
        ok &= ~np.asarray(yes_no, dtype=bool)
    if task == "error":
        ok &= labels != predictions
    eligible = np.flatnonzero(ok)
    if len(eligible) < n:
        raise BundleError(f"only {len(eligible)} datapoints meet the criteria for a {task} study; asked for {n}")
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.choice(eligible, size=n, replace=False)]


def select_features(sparse_weights: list, features: np.ndarray, *, n: int) -> list[tuple[int, int]]:
    """``n`` (feature, datapoint index) pairs for a concept study.

    sparse_weights: P's nonzero weights as ``[class, feature, weight]`` triplets; features
    ``(N, d)``. Features are ranked by their largest |weight| in P; each is paired with the
    datapoint that activates it most.
    """
    best: dict[int, float] = {}
    for _, j, w in sparse_weights:
        best[int(j)] = max(best.get(int(j), 0.0), abs(float(w)))
    ranked = sorted(best, key=lambda j: (-best[j], j))
    if len(ranked) < n:
        raise BundleError(f"P uses only {len(ranked)} features; a concept study of {n} features needs more")
    return [(j, int(np.argmax(features[:, j]))) for j in ranked[:n]]
