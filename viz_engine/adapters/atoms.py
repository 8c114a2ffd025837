"""Atom maps (which element of an input belongs to which atom) and the operations over atoms
that every method shares: per-atom sums and the one perturbation (an atom set to its
baseline)."""

from __future__ import annotations

import torch
from torch import Tensor

from .batch import Batch
from .errors import AdapterError

__all__ = [
    "atoms_per_element",
    "atoms_per_position",
    "atoms_per_pixel",
    "atoms_per_patch",
    "per_atom_sum",
    "mask_atoms",
    "perturb_one_row",
]


def atoms_per_element(x: Tensor) -> Tensor:
    """Every element of the per-example input is its own atom."""
    per_example = x.shape[1:]
    n = int(torch.tensor(per_example).prod().item()) if per_example else 1
    return torch.arange(n, device=x.device).reshape(per_example).expand_as(x).clone()


def atoms_per_position(x: Tensor, axis: int = 1) -> Tensor:
    """One atom per index along ``axis`` (a token, a time step), shared by the other axes."""
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return torch.arange(x.shape[axis], device=x.device).reshape(shape).expand_as(x).clone()


def atoms_per_pixel(x: Tensor) -> Tensor:
    """``x``: ``(B, C, H, W)``; one atom per pixel, shared by the channels."""
    b, c, h, w = x.shape
    return torch.arange(h * w, device=x.device).reshape(1, 1, h, w).expand(b, c, h, w).clone()


def atoms_per_patch(x: Tensor, patch: int) -> Tensor:
    """``x``: ``(B, C, H, W)``; one atom per ``patch × patch`` square (row-major)."""
    b, c, h, w = x.shape
    if h % patch or w % patch:
        raise AdapterError(f"patch={patch} does not divide the image size {h}×{w}")
    rows = torch.arange(h, device=x.device) // patch
    cols = torch.arange(w, device=x.device) // patch
    ids = rows[:, None] * (w // patch) + cols[None, :]
    return ids.reshape(1, 1, h, w).expand(b, c, h, w).clone()


def per_atom_sum(values: Tensor, atom_map: Tensor, n_atoms: int | None = None) -> Tensor:
    """Sum ``values`` ``(B, *shape)`` over each atom of ``atom_map`` -> ``(B, n_atoms)``.

    Rows with fewer atoms than ``n_atoms`` get NaN in the missing places, so a padded word
    never looks like a word with zero importance.
    """
    if values.shape != atom_map.shape:
        raise AdapterError(f"values shape {tuple(values.shape)} != atom map shape {tuple(atom_map.shape)}")
    b = values.shape[0]
    flat_v = values.reshape(b, -1)
    flat_a = atom_map.reshape(b, -1)
    counts = flat_a.max(dim=1).values + 1
    n = int(counts.max().item()) if n_atoms is None else n_atoms
    valid = flat_a >= 0
    out = torch.zeros(b, n + 1, dtype=values.dtype, device=values.device)
    idx = torch.where(valid, flat_a, torch.full_like(flat_a, n))
    out.scatter_add_(1, idx, torch.where(valid, flat_v, torch.zeros_like(flat_v)))
    out = out[:, :n]
    missing = torch.arange(n, device=values.device)[None, :] >= counts[:, None]
    return out.masked_fill(missing, float("nan"))


def mask_atoms(batch: Batch, modality: str, keep: Tensor) -> Batch:
    """``batch`` with the atoms of ``modality`` where ``keep`` is False set to the baseline.

    keep: bool ``(B, n_atoms)``, one row per batch row. Elements that belong to no atom
    (padding) are left as they are. This is the one perturbation LIME and KernelSHAP use.
    """
    amap = batch._atom_map(modality)
    if keep.ndim != 2 or keep.shape[0] != batch.size:
        raise AdapterError(f"keep must have shape ({batch.size}, n_atoms); got {tuple(keep.shape)}")
    b = batch.size
    flat = amap.reshape(b, -1)
    padded = torch.cat([keep.to(torch.bool), torch.ones(b, 1, dtype=torch.bool, device=keep.device)], 1)
    idx = torch.where(flat >= 0, flat, torch.full_like(flat, keep.shape[1]))
    if int(idx.max().item()) > keep.shape[1]:
        raise AdapterError(f"keep has {keep.shape[1]} atoms but {modality!r} has more")
    kept = padded.gather(1, idx.to(padded.device)).reshape(amap.shape)
    x = batch.inputs[modality]
    return batch.with_inputs(**{modality: torch.where(kept, x, batch.baseline(modality))})


def perturb_one_row(batch: Batch, modality: str, keep: Tensor) -> Batch:
    """``S`` perturbations of a one-row ``batch``: row ``s`` keeps the atoms of ``modality``
    where ``keep[s]`` is True and sets the others to the baseline.

    keep: bool ``(S, n_atoms)``. The same numbers as ``mask_atoms(batch.repeat(S), …)``, but
    only the perturbed modality is materialised (``S`` copies); the other inputs are views of
    the one row and no atom maps are copied. Returns a forward-only batch
    (:meth:`Batch.model_inputs`).
    """
    if batch.size != 1:
        raise AdapterError(f"perturb_one_row needs a batch of one row; this one has {batch.size}")
    amap = batch._atom_map(modality)
    if keep.ndim != 2 or keep.shape[0] < 1:
        raise AdapterError(f"keep must have shape (S, n_atoms) with S ≥ 1; got {tuple(keep.shape)}")
    n_keep, s = keep.shape[1], keep.shape[0]
    flat = amap.reshape(-1)
    idx = torch.where(flat >= 0, flat, torch.full_like(flat, n_keep))
    if int(idx.max().item()) > n_keep:
        raise AdapterError(f"keep has {n_keep} atoms but {modality!r} has more")
    padded = torch.cat([keep.to(torch.bool), torch.ones(s, 1, dtype=torch.bool, device=keep.device)], 1)
    kept = padded[:, idx.to(padded.device)].reshape(s, *amap.shape[1:])
    masked = torch.where(kept, batch.inputs[modality], batch.baseline(modality))
    return batch.expand(s).with_inputs(**{modality: masked})
