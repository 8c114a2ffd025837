"""Rg — global representation analysis: which datapoints most and least activate feature j.

The paper shows, for a feature z_j of the representation, the k = 3 datapoints of a dataset
that activate it most and the k that activate it least (each then gets its own U/C
highlights), so an annotator can name the concept z_j stands for. Input is a precomputed
feature matrix (:func:`viz_engine.methods.features.feature_matrix`), so ranking any feature
costs nothing once the dataset has been encoded.
"""

from __future__ import annotations

import numpy as np

from viz_engine.adapters import AdapterError
from viz_engine.methods._common import numeric_matrix

__all__ = ["top_activating"]


def top_activating(features, feature_index: int, k: int = 3) -> dict:
    """The ``k`` datapoints with the largest and the ``k`` with the smallest value of a feature.

    Args:
        features:      ``(N, d)`` feature matrix (one row per datapoint).
        feature_index: the feature j, ``0 ≤ j < d``.
        k:             how many of each (paper: 3), ``1 ≤ k ≤ N``.

    Returns ``dict(max_indices (k,) int, max_values (k,), min_indices (k,) int,
    min_values (k,))``: max in decreasing, min in increasing order of activation; ties are
    broken by the lower row index, so the result is deterministic.
    """
    features = numeric_matrix(features, "features", finite=False)
    n, d = features.shape
    if isinstance(feature_index, bool) or not isinstance(feature_index, (int, np.integer)):
        raise AdapterError(f"feature_index must be an integer; got {feature_index!r}")
    if not 0 <= feature_index < d:
        raise AdapterError(f"feature_index={feature_index} is out of range for {d} features")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise AdapterError(f"k must be an integer in [1, N={n}]; got {k!r}")
    col = features[:, feature_index].astype(np.float64)
    if not np.isfinite(col).all():
        raise AdapterError(f"features column {feature_index} contains NaN or infinite values")
    rows = np.arange(n)
    top = np.lexsort((rows, -col))[:k]
    bottom = np.lexsort((rows, col))[:k]
    return dict(max_indices=top, max_values=col[top], min_indices=bottom, min_values=col[bottom])
