"""C: second-order gradients (MultiViz section 2.2, appendix A.2).

For a set A of atoms of the *query* modality x1 (the words "large brown matte thing"), the
first-order gradient ∂f/∂x1 is aggregated over A to one scalar s = Σ_{a∈A} agg(∂f/∂x1[a]),
and the gradient of s with respect to every element of the other modality x2 is the
interaction map: ∂s/∂x2. An additive model f = g1(x1) + g2(x2) gives exactly zero, since
∂f/∂x1 does not depend on x2.

Aggregation (``aggregate=``):
* ``"sum"`` — Σ of the gradient's components (the paper's main text, section 2.2);
* ``"abs"`` — Σ of their absolute values (the paper's faithfulness check, appendix D.2:
  "sum up the absolute gradients of the words in the phrase").

Two functions share one signature shape:
* :func:`second_order_gradient` — one query set per row → ``(B, n_atoms_x2)``;
* :func:`second_order_gradient_per_atom` — every query atom of every row at once (all words
  of a question in one call) → ``(B, n_atoms_x1, n_atoms_x2)``. Each (row, query atom) pair
  becomes one row of a replicated batch, so the whole question costs one forward pass, one
  backward pass with ``create_graph`` and one second backward pass, instead of one of each
  per word.

Per-atom values over x2 are the *signed* sums of the element-wise second derivatives over
each atom; with ``magnitude=True`` they are sums of absolute values (what heatmaps and the
top-k regions use, since opposite-signed channels of one pixel should not cancel).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..adapters import (
    AdapterError,
    Batch,
    MultimodalClassifier,
    Target,
    per_atom_sum,
    select_target,
    target_scalars,
)

__all__ = ["second_order_gradient", "second_order_gradient_per_atom", "second_order_gradient_elements"]

AGGREGATES = ("sum", "abs")


def _check_modalities(adapter: MultimodalClassifier, batch: Batch, query: str, against: str) -> None:
    for arg, name in (("query", query), ("against", against)):
        if name not in batch.inputs:
            raise AdapterError(f"{arg}={name!r} is not a modality of this batch ({list(batch.inputs)})")
        adapter.modality(name)
    if query == against:
        raise AdapterError(f"query and against must be different modalities; both are {query!r}")


def _query_masks(batch: Batch, query: str, query_atoms) -> Tensor:
    """``(B, *shape)`` float mask of the elements of x1 that belong to the query set."""
    amap = batch.atoms[query]
    n_atoms = batch.n_atoms(query)
    b = batch.size
    if query_atoms is None:
        raise AdapterError("query_atoms must name at least one atom of the query modality")
    # one list for every row, or one list per row
    if len(query_atoms) and isinstance(query_atoms[0], (list, tuple, np.ndarray, Tensor)):
        per_row = [list(map(int, q)) for q in query_atoms]
        if len(per_row) != b:
            raise AdapterError(f"query_atoms has {len(per_row)} lists for a batch of {b} rows")
    else:
        per_row = [list(map(int, query_atoms))] * b
    masks = torch.zeros_like(amap, dtype=torch.bool)
    for r, atoms in enumerate(per_row):
        if not atoms:
            raise AdapterError(f"query_atoms is empty for row {r}: name at least one atom")
        for a in atoms:
            if not 0 <= a < int(n_atoms[r]):
                raise AdapterError(
                    f"query_atoms names atom {a} but row {r} of {query!r} has {int(n_atoms[r])} atoms"
                )
        masks[r] = torch.isin(amap[r], torch.tensor(atoms, device=amap.device))
    return masks


def _aggregate(grad: Tensor, mask: Tensor, aggregate: str) -> Tensor:
    if aggregate not in AGGREGATES:
        raise AdapterError(f"aggregate={aggregate!r} is not one of {AGGREGATES}")
    g = grad.abs() if aggregate == "abs" else grad
    return (g * mask).flatten(1).sum(1)


def second_order_gradient_elements(
    adapter: MultimodalClassifier,
    batch: Batch,
    target: Target,
    query: str,
    against: str,
    query_mask: Tensor,
    *,
    aggregate: str = "sum",
) -> Tensor:
    """Element-wise ∂/∂x2 [Σ_{e∈mask} agg(∂f/∂x1[e])] → tensor shaped like ``batch.inputs[against]``.

    ``query_mask`` is a bool/float tensor shaped like ``batch.inputs[query]``. One forward,
    one backward with ``create_graph`` and one second backward for the whole batch. Rows are
    independent, so summing the per-row scalars before the second backward is exact.
    """
    _check_modalities(adapter, batch, query, against)
    if query_mask.shape != batch.inputs[query].shape:
        raise AdapterError(
            f"query_mask has shape {tuple(query_mask.shape)}; expected {tuple(batch.inputs[query].shape)}"
        )
    x1 = batch.inputs[query].detach().clone().requires_grad_(True)
    x2 = batch.inputs[against].detach().clone().requires_grad_(True)
    work = batch.with_inputs(**{query: x1, against: x2})
    with adapter.frozen(), torch.enable_grad():
        out = target_scalars(adapter, work, target)
        (g1,) = torch.autograd.grad(out.sum(), x1, create_graph=True)
        s = _aggregate(g1, query_mask.to(g1.dtype), aggregate)
        if not s.requires_grad:  # f does not depend on x1 through x2 at all: exactly zero
            return torch.zeros_like(x2)
        (g12,) = torch.autograd.grad(s.sum(), x2, allow_unused=True)
    return torch.zeros_like(x2) if g12 is None else g12.detach()


def second_order_gradient(
    adapter: MultimodalClassifier,
    batch: Batch,
    target: Target,
    query: str,
    against: str,
    query_atoms: Sequence[int] | Sequence[Sequence[int]],
    *,
    aggregate: str = "sum",
    magnitude: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Interaction of a set of query atoms with every atom of another modality.

    Args:
        adapter, batch, target: as every method (``target``: class, ``Label``, ``LogitSum``,
            ``Feature`` for Rℓ, or per-row labels).
        query:       the modality whose atoms are queried (e.g. "question").
        against:     the modality the interaction is mapped over (e.g. "image").
        query_atoms: atom indices of ``query`` (the same for all rows) or one list per row.
        aggregate:   "sum" or "abs" (see the module docstring).
        magnitude:   sum |∂²f| over each atom of ``against`` instead of the signed sum.
        batch_size:  rows per autograd call.

    Returns:
        ``(B, n_atoms_against)`` float64; NaN where a row has fewer atoms.
    """
    _check_modalities(adapter, batch, query, against)
    masks = _query_masks(batch, query, query_atoms)
    outs = []
    for s in range(0, batch.size, batch_size):
        rows = list(range(s, min(s + batch_size, batch.size)))
        part = batch.select(rows)
        g = second_order_gradient_elements(
            adapter, part, select_target(target, rows), query, against, masks[rows], aggregate=aggregate
        )
        outs.append(per_atom_sum(g.abs() if magnitude else g, part.atoms[against], batch.max_atoms(against)))
    return torch.cat(outs).double().numpy()


def second_order_gradient_per_atom(
    adapter: MultimodalClassifier,
    batch: Batch,
    target: Target,
    query: str,
    against: str,
    *,
    aggregate: str = "sum",
    magnitude: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Second-order gradient of *every* atom of ``query`` (each word) over ``against``.

    Each (row, query atom) pair is one row of a replicated batch whose query mask selects
    that atom; ``batch_size`` such rows go through autograd at once.

    Returns:
        ``(B, n_atoms_query, n_atoms_against)`` float64; NaN for query atoms a row does not
        have (padding) and for missing atoms of ``against``.
    """
    _check_modalities(adapter, batch, query, against)
    n_q = batch.n_atoms(query)
    max_q, max_a = batch.max_atoms(query), batch.max_atoms(against)
    pairs = [(r, a) for r in range(batch.size) for a in range(int(n_q[r]))]
    result = torch.full((batch.size, max_q, max_a), float("nan"), dtype=torch.float64)
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        rows = [r for r, _ in chunk]
        part = batch.select(rows)
        wanted = torch.tensor([a for _, a in chunk], device=part.atoms[query].device)
        shape = (-1,) + (1,) * (part.atoms[query].ndim - 1)
        mask = part.atoms[query] == wanted.reshape(shape)
        g = second_order_gradient_elements(
            adapter, part, select_target(target, rows), query, against, mask, aggregate=aggregate
        )
        per_atom = per_atom_sum(g.abs() if magnitude else g, part.atoms[against], max_a).double()
        result[rows, [a for _, a in chunk]] = per_atom
    return result.numpy()
