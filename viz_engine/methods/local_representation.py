"""Rℓ: local representation analysis — U and C with respect to one feature z_j.

The paper's Rℓ explains a representation feature instead of a label: which atoms of each
modality drive z_j at this datapoint (U with target z_j), and which cross-modal pairs do
(C with target z_j). Every method here takes a ``Feature(index, layer)`` target, so Rℓ is
U and C run with that target, plus the feature's value; the default layer is the
penultimate one (the input of the final linear layer), the one P's weights refer to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..adapters import AdapterError, Batch, Feature, MultimodalClassifier
from .attributions import attribution_names, get_attribution

__all__ = ["local_representation", "LocalRepresentation"]


@dataclass
class LocalRepresentation:
    """Rℓ of feature ``index`` at ``layer`` for every row of a batch.

    activation: ``(B,)`` the feature's value z_j per row.
    unimodal:   modality -> ``(B, n_atoms)`` attribution of z_j to that modality's atoms.
    cross:      "query->against" -> ``(B, n_query_atoms, n_against_atoms)`` second-order
                gradient of z_j (|values| summed per atom of ``against``).
    """

    index: int
    layer: str
    activation: np.ndarray
    unimodal: dict[str, np.ndarray] = field(default_factory=dict)
    cross: dict[str, np.ndarray] = field(default_factory=dict)


def local_representation(
    adapter: MultimodalClassifier,
    batch: Batch,
    feature: int,
    *,
    layer: str | None = None,
    method: str | Callable = "gradient_x_input",
    modalities: tuple[str, ...] | None = None,
    cross: tuple[str, str] | None = None,
    **method_kwargs,
) -> LocalRepresentation:
    """U (and optionally C) of feature ``feature`` of ``layer`` for each row of ``batch``.

    Args:
        feature:    index j of the feature in the layer's ``(B, d)`` representation.
        layer:      a name from ``adapter.layer_names()``; default the penultimate layer.
        method:     a registered attribution method's name (``attribution_names()``) or a callable with the shared
                    signature ``(adapter, batch, target, modality, **kw) -> (B, n_atoms)``.
        modalities: which modalities to explain (default all).
        cross:      ``(query, against)`` to also compute the per-atom second-order gradient.
        method_kwargs: passed to the U method (e.g. ``n_samples=1000`` for LIME).
    """
    layer_name = adapter.default_layer if layer is None else layer
    with torch.no_grad():
        feats = adapter.representation(batch, layer)
    if isinstance(feature, bool) or not isinstance(feature, (int, np.integer)):
        raise AdapterError(f"feature must be an integer index; got {feature!r}")
    if not 0 <= int(feature) < feats.shape[1]:
        raise AdapterError(
            f"feature={feature} is out of range: layer {layer_name!r} has {feats.shape[1]} features"
        )
    target = Feature(int(feature), layer)
    if isinstance(method, str):
        if method not in attribution_names():
            raise AdapterError(f"method={method!r} is not one of {attribution_names()}")
        method_fn = get_attribution(method).load()
    else:
        method_fn = method
    names = adapter.modality_names if modalities is None else tuple(modalities)
    for m in names:
        adapter.modality(m)
    result = LocalRepresentation(
        index=int(feature), layer=layer_name, activation=feats[:, int(feature)].double().numpy()
    )
    for m in names:
        result.unimodal[m] = np.asarray(method_fn(adapter, batch, target, m, **method_kwargs))
    if cross is not None:
        from .second_order_gradient import second_order_gradient_per_atom

        query, against = cross
        result.cross[f"{query}->{against}"] = second_order_gradient_per_atom(
            adapter, batch, target, query, against, magnitude=True
        )
    return result
