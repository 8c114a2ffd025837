"""Transformer views: 2-D maps of the hidden states of both modalities' tokens, per layer.

VL-InterpreT fitted one t-SNE per example and layer, so maps of two examples (or of one
example at two layers) are not comparable and every example costs a fit. Here one
projection (PCA) is fitted per layer over a sample of datapoints, then every example is
mapped by that layer's projection: the same axes for every example, and mapping costs a
matrix product.

Signatures::

    fit_layer_projections(hidden_states, valid=None, n_components=2) -> LayerProjections
    LayerProjections.transform(layer, states (T, dim)) -> (T, n_components)
    nearest_other_modality(states (T, dim), segments (T,), k=3) -> (T, k) token indices

``hidden_states``: one ``(N, T, dim)`` array per layer over the sample; ``valid`` ``(N, T)``
bool marks real tokens (padding is left out of the fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..adapters import AdapterError

__all__ = ["LayerProjections", "fit_layer_projections", "nearest_other_modality"]


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@dataclass
class LayerProjections:
    """Per layer: ``mean (dim,)`` and ``components (n_components, dim)`` of its PCA, and the
    share of variance each component explains."""

    means: list[np.ndarray]
    components: list[np.ndarray]
    explained: list[np.ndarray]

    @property
    def n_layers(self) -> int:
        return len(self.means)

    def transform(self, layer: int, states) -> np.ndarray:
        if not 0 <= layer < self.n_layers:
            raise AdapterError(f"layer {layer} is out of range for {self.n_layers} layers")
        x = _np(states).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.means[layer].shape[0]:
            raise AdapterError(f"states must be (T, {self.means[layer].shape[0]}); got {x.shape}")
        return (x - self.means[layer]) @ self.components[layer].T


def fit_layer_projections(hidden_states: Sequence, valid=None, n_components: int = 2) -> LayerProjections:
    from sklearn.decomposition import PCA

    if len(hidden_states) == 0:
        raise AdapterError("hidden_states must hold at least one layer")
    means, comps, explained = [], [], []
    for i, h in enumerate(hidden_states):
        x = _np(h).astype(np.float64)
        if x.ndim != 3:
            raise AdapterError(f"hidden_states[{i}] must be (N, T, dim); got {x.shape}")
        rows = x.reshape(-1, x.shape[-1]) if valid is None else x[_np(valid).astype(bool)]
        if rows.shape[0] <= n_components:
            raise AdapterError(f"need more than {n_components} tokens to fit a projection; got {rows.shape[0]}")
        pca = PCA(n_components=n_components, svd_solver="full").fit(rows)
        means.append(pca.mean_)
        comps.append(pca.components_)
        explained.append(pca.explained_variance_ratio_)
    return LayerProjections(means, comps, explained)


def nearest_other_modality(states, segments, k: int = 3) -> np.ndarray:
    """For every token, the ``k`` tokens of the *other* modality (segment 1 ↔ 2) with the
    most similar hidden state (cosine); −1 where there are fewer, and for special tokens."""
    x = _np(states).astype(np.float64)
    seg = _np(segments)
    norm = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = norm @ norm.T
    out = np.full((x.shape[0], k), -1, dtype=np.int64)
    for i in range(x.shape[0]):
        if seg[i] not in (1, 2):
            continue
        other = np.flatnonzero(seg == (2 if seg[i] == 1 else 1))
        order = other[np.argsort(-sim[i, other], kind="stable")][:k]
        out[i, : len(order)] = order
    return out
