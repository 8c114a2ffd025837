"""U: gradient (saliency) attributions — ∂ target / ∂ input, summed per atom.

Signature shared by the unimodal methods::

    gradient(adapter, batch, target, modality, *, absolute=False, batch_size=64)
        -> np.ndarray (B, n_atoms)

* ``adapter``/``batch``: a ``MultimodalClassifier`` and a ``Batch``; the batch is not modified.
* ``target``: what is explained, anything ``target_scalars`` accepts — a class index or name,
  ``Label``, ``LogitSum``, ``Feature(index, layer)`` (a representation feature: this is Rℓ),
  or ``B`` per-row class indices.
* ``modality``: the modality whose atoms (``batch.atoms[modality]``) get scores; the other
  modalities are held fixed.
* result: float64 ``(B, n_atoms)``, ``n_atoms`` = atoms of the longest row, NaN where a row
  has fewer atoms (padding). Each atom's score is the sum of its elements' gradients.

``absolute=False`` sums the signed gradient components (positive = increasing the atom's
values raises the target). ``absolute=True`` sums their absolute values instead, the usual
saliency *magnitude* (channels of a pixel or embedding dimensions of a word with opposite
signs do not cancel). :func:`gradient_elements` returns the element-wise map for heatmaps.
"""

from __future__ import annotations

import numpy as np
import torch

from ..adapters import Batch, MultimodalClassifier
from ._common import atom_sums, check_call, row_chunks, sub_target, target_gradient

__all__ = ["gradient", "gradient_elements"]


def gradient_elements(
    adapter: MultimodalClassifier, batch: Batch, target, modality: str, *, batch_size: int = 64
) -> np.ndarray:
    """Element-wise ``∂ target / ∂ batch.inputs[modality]``, shape ``(B, *input_shape)``.

    Model calls are chunked by ``batch_size`` rows (one forward + one backward per chunk).
    """
    check_call(adapter, batch, target, modality, batch_size)
    return _gradients(adapter, batch, target, modality, batch_size).cpu().numpy()


def gradient(
    adapter: MultimodalClassifier,
    batch: Batch,
    target,
    modality: str,
    *,
    absolute: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Per-atom gradient of ``target`` w.r.t. ``modality``: ``(B, n_atoms)``, NaN = padding."""
    n_atoms = check_call(adapter, batch, target, modality, batch_size)
    grad = _gradients(adapter, batch, target, modality, batch_size)
    return atom_sums(grad.abs() if absolute else grad, batch.atoms[modality], n_atoms)


def _gradients(adapter, batch: Batch, target, modality: str, batch_size: int) -> torch.Tensor:
    parts = [
        target_gradient(adapter, batch.select(rows), sub_target(target, rows), modality)
        for rows in row_chunks(batch.size, batch_size)
    ]
    return torch.cat(parts, dim=0)
