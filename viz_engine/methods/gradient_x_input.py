"""U: gradient × input — ∂ target / ∂x ⊙ (x − baseline), summed per atom.

Signature shared by the unimodal methods::

    gradient_x_input(adapter, batch, target, modality, *, batch_size=64)
        -> np.ndarray (B, n_atoms)

* ``target``: a class index or name, ``Label``, ``LogitSum``, ``Feature(index, layer)``
  (Rℓ) or ``B`` per-row class indices (see ``target_scalars``).
* ``modality``: the explained modality; its atoms are ``batch.atoms[modality]``.
* result: float64 ``(B, n_atoms)``, NaN where a row has fewer atoms than the longest row.

The input is measured from the modality's baseline (``batch.baseline(modality)``: zeros
unless the batch says otherwise, e.g. the [PAD] embedding), so an atom equal to its
baseline gets exactly 0. For a model linear in this modality, f = wᵀx + g(other), this is
w ⊙ (x − baseline) — the exact contribution of each atom; in general it is the first-order
Taylor estimate of f(x) − f(baseline).
"""

from __future__ import annotations

import numpy as np

from ..adapters import Batch, MultimodalClassifier
from ._common import atom_sums, check_call
from .gradient import _gradients

__all__ = ["gradient_x_input"]


def gradient_x_input(
    adapter: MultimodalClassifier, batch: Batch, target, modality: str, *, batch_size: int = 64
) -> np.ndarray:
    """Per-atom ``Σ ∂f/∂x · (x − baseline)``: ``(B, n_atoms)``, NaN = padding."""
    n_atoms = check_call(adapter, batch, target, modality, batch_size)
    grad = _gradients(adapter, batch, target, modality, batch_size)
    delta = (batch.inputs[modality] - batch.baseline(modality)).detach()
    return atom_sums(grad * delta, batch.atoms[modality], n_atoms)
