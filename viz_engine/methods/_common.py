"""Small helpers shared by the unimodal-importance (U) methods.

Every U method has the signature::

    method(adapter, batch, target, modality, *, <method params>, batch_size=...) -> np.ndarray (B, n_atoms)

and starts with :func:`check_call`, which validates the arguments once (so a bad modality,
target or NaN input fails before any expensive work) and returns the number of atoms of the
explained modality.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..adapters import (
    AdapterError,
    Batch,
    Feature,
    MultimodalClassifier,
    check_finite,
    per_atom_sum,
    resolve_target,
    select_target,
    target_scalars,
)

__all__ = [
    "check_call",
    "numeric_matrix",
    "check_positive_int",
    "row_chunks",
    "target_gradient",
    "atom_sums",
    "sub_target",
]


def numeric_matrix(x, name: str, *, finite: bool = True) -> np.ndarray:
    """``x`` (array or tensor) as a non-empty 2-D float64 array, or an error naming ``name``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2 or 0 in x.shape:
        raise AdapterError(f"{name} must be a non-empty 2-D array; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise AdapterError(f"{name} must be numeric; got dtype {x.dtype}")
    if finite and not np.isfinite(x).all():
        raise AdapterError(f"{name} contains NaN or infinite values")
    return x.astype(np.float64, copy=False)


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise AdapterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_call(adapter: MultimodalClassifier, batch: Batch, target, modality: str, batch_size: int) -> int:
    """Validate the shared arguments; return ``n_atoms`` (atoms in the longest row).

    Raises :class:`AdapterError` naming ``modality``, ``target``, ``batch`` or
    ``batch_size``. A ``Feature`` target is checked with one forward pass on one row (its
    index can only be checked against the layer's width).
    """
    if not isinstance(batch, Batch):
        raise AdapterError(f"batch must be a Batch, got {type(batch).__name__}")
    adapter.modality(modality)  # AdapterError naming modality= if the model lacks it
    if modality not in batch.inputs or modality not in batch.atoms:
        raise AdapterError(
            f"modality={modality!r} has no input or atom map in this batch ({list(batch.atoms)})"
        )
    check_positive_int(batch_size, "batch_size")
    if batch.size == 0:
        raise AdapterError("batch has no rows")
    for name, x in batch.inputs.items():
        check_finite(x, f"batch.inputs[{name!r}]")
    try:
        if isinstance(target, (Tensor, list, tuple)) and not isinstance(target, str):
            labels = torch.as_tensor(target)
            if labels.shape != (batch.size,) or labels.is_floating_point():
                raise AdapterError(
                    f"per-row labels must be {batch.size} integers, got shape {tuple(labels.shape)}"
                )
            for lab in labels.unique().tolist():
                adapter.label_index(int(lab))
        elif isinstance(resolve_target(adapter, target), Feature):
            with torch.no_grad():
                target_scalars(adapter, batch.select([0]), target)
    except AdapterError as err:
        raise AdapterError(f"target={target!r} is not valid: {err}") from None
    return batch.max_atoms(modality)


def row_chunks(n: int, size: int) -> Iterator[list[int]]:
    """Consecutive index lists ``[0..size)``, ``[size..2*size)`` … covering ``range(n)``."""
    for start in range(0, n, size):
        yield list(range(start, min(start + size, n)))


def target_gradient(adapter: MultimodalClassifier, batch: Batch, target, modality: str) -> Tensor:
    """``d target_scalars / d batch.inputs[modality]`` for every row, same shape as the input.

    Rows are independent (one scalar per row), so the gradient of the *sum* of the row
    scalars is each row's own gradient. Only the input is differentiated: parameters are
    frozen, and the input is a detached copy, so the caller's batch is never touched.
    """
    x = batch.inputs[modality].detach().clone().requires_grad_(True)
    with adapter.frozen(), torch.enable_grad():
        scalars = target_scalars(adapter, batch.with_inputs(**{modality: x}), target)
        if not scalars.requires_grad:  # the target does not depend on this modality at all
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(scalars.sum(), x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return grad.detach()


def atom_sums(values: Tensor, atom_map: Tensor, n_atoms: int) -> np.ndarray:
    """``(B, n_atoms)`` float64 per-atom sums of element ``values``, NaN for padding atoms."""
    return per_atom_sum(values.double(), atom_map, n_atoms).cpu().numpy()


def sub_target(target, rows: Sequence[int]):
    """The target for ``batch.select(rows)`` (slices per-row label tensors)."""
    return select_target(target, rows)
