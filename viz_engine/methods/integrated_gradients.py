"""U: integrated gradients (Sundararajan et al. 2017), summed per atom.

Signature shared by the unimodal methods::

    integrated_gradients(adapter, batch, target, modality, *, n_steps=32,
                         method="gausslegendre", batch_size=64) -> np.ndarray (B, n_atoms)

* ``target``: a class index or name, ``Label``, ``LogitSum``, ``Feature(index, layer)``
  (Rℓ) or ``B`` per-row class indices (see ``target_scalars``).
* ``modality``: the explained modality; only it moves along the path, the other modalities
  stay at their values in ``batch``.
* result: float64 ``(B, n_atoms)``, NaN where a row has fewer atoms than the longest row.

IG_i = (x_i − x'_i) · ∫₀¹ ∂f/∂x_i (x' + α (x − x')) dα with x' = ``batch.baseline(modality)``,
the integral approximated by ``n_steps`` points:

* ``"gausslegendre"`` (default): Gauss–Legendre nodes and weights on [0, 1], exact for
  path-gradients that are polynomials of degree < 2·n_steps (smooth models converge fast);
* ``"trapezoid"``: ``n_steps`` equally spaced points including both ends (n_steps ≥ 2).

Completeness: the per-atom scores of a row sum to ≈ f(x) − f(x', other modalities
unchanged); the gap shrinks as ``n_steps`` grows. All ``B × n_steps`` path points are run
as flat chunks of ``batch_size`` (row, step) pairs: one forward + backward per chunk.
"""

from __future__ import annotations

import numpy as np
import torch

from ..adapters import AdapterError, Batch, MultimodalClassifier
from ._common import atom_sums, check_call, check_positive_int, row_chunks, sub_target, target_gradient

__all__ = ["integrated_gradients", "path_points"]

METHODS = ("gausslegendre", "trapezoid")


def path_points(n_steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, weights)``, each ``(n_steps,)``: quadrature of ∫₀¹ g(α) dα ≈ Σ w·g(α)."""
    n_steps = check_positive_int(n_steps, "n_steps")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (nodes + 1.0) / 2.0, weights / 2.0
    if method == "trapezoid":
        if n_steps < 2:
            raise AdapterError(f"n_steps must be at least 2 for method='trapezoid', got {n_steps}")
        alphas = np.linspace(0.0, 1.0, n_steps)
        weights = np.full(n_steps, 1.0 / (n_steps - 1))
        weights[[0, -1]] /= 2.0
        return alphas, weights
    raise AdapterError(f"method={method!r} is not one of {METHODS}")


def integrated_gradients(
    adapter: MultimodalClassifier,
    batch: Batch,
    target,
    modality: str,
    *,
    n_steps: int = 32,
    method: str = "gausslegendre",
    batch_size: int = 64,
) -> np.ndarray:
    """Per-atom integrated gradients from the batch baseline: ``(B, n_atoms)``, NaN = padding."""
    n_atoms = check_call(adapter, batch, target, modality, batch_size)
    alphas, weights = path_points(n_steps, method)
    x = batch.inputs[modality].detach()
    base = batch.baseline(modality).detach().to(x.dtype)
    delta = x - base
    expand = (-1,) + (1,) * (x.ndim - 1)
    alphas_t = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    weights_t = torch.as_tensor(weights, dtype=torch.float64, device=x.device)

    avg_grad = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    for pairs in row_chunks(batch.size * len(alphas), batch_size):
        pairs_t = torch.as_tensor(pairs, dtype=torch.long, device=x.device)
        rows_t, steps_t = pairs_t // len(alphas), pairs_t % len(alphas)
        rows = rows_t.tolist()
        point = base[rows_t] + alphas_t[steps_t].reshape(expand) * delta[rows_t]
        sub = batch.select(rows).with_inputs(**{modality: point})
        grad = target_gradient(adapter, sub, sub_target(target, rows), modality)
        avg_grad.index_add_(0, rows_t, grad.double() * weights_t[steps_t].reshape(expand))
    return atom_sums(avg_grad * delta.double(), batch.atoms[modality], n_atoms)
