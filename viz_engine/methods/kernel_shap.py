"""U: KernelSHAP (Lundberg & Lee 2017) over atoms, via Captum's ``KernelShap``.

Signature shared by the unimodal methods::

    kernel_shap(adapter, batch, target, modality, *, n_samples=1000, seed=0, batch_size=256)
        -> np.ndarray (B, n_atoms)

* ``target``: a class index or name, ``Label``, ``LogitSum``, ``Feature(index, layer)``
  (Rℓ) or ``B`` per-row class indices (see ``target_scalars``).
* ``modality``: the explained modality. Only its atoms are perturbed; the other modalities
  (and all extras, e.g. padding masks) are held fixed at the row's values — the forward
  function given to Captum closes over them, the same as passing them as fixed additional
  forward arguments.
* result: float64 ``(B, n_atoms)`` Shapley value estimates, NaN where a row has fewer atoms
  than the longest row. They sum to ≈ f(x) − f(baseline of this modality).

How atoms become Captum features: the atom map is the ``feature_mask``. Padding elements
(atom id −1) get one extra feature id whose baseline equals the input, so "removing" it
changes nothing (a null player: Shapley value 0, the other values unchanged) and its
coefficient is dropped. A removed atom takes ``batch.baseline(modality)``.

``n_samples`` (default 1000, the same budget as LIME) coalitions per row are drawn from the
Shapley kernel (Captum's sampler, plus the all/none coalitions); ``batch_size`` of them go
through the model per call (Captum's ``perturbations_per_eval``). For a model linear in the
explained modality the estimate is exact: w ⊙ (x − baseline) per atom. Captum samples with
torch's global generator; we fork it and seed it with ``seed`` so results are reproducible
and the caller's random state is untouched.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import KernelShap

from ..adapters import AdapterError, Batch, MultimodalClassifier, target_scalars
from ._common import check_call, check_positive_int, sub_target

__all__ = ["kernel_shap"]


def kernel_shap(
    adapter: MultimodalClassifier,
    batch: Batch,
    target,
    modality: str,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
) -> np.ndarray:
    """Per-atom KernelSHAP values ``(B, n_atoms)`` (NaN = padding)."""
    n_max = check_call(adapter, batch, target, modality, batch_size)
    if check_positive_int(n_samples, "n_samples") < 2:
        raise AdapterError(f"n_samples must be at least 2, got {n_samples}")
    counts = batch.n_atoms(modality).tolist()
    out = np.full((batch.size, n_max), np.nan)
    for r in range(batch.size):
        n_atoms = int(counts[r])
        if n_atoms == 0:
            continue
        row, row_target = batch.select([r]), sub_target(target, [r])
        x = row.inputs[modality].detach()
        amap = row.atoms[modality]
        padding = amap < 0
        feature_mask = torch.where(padding, torch.full_like(amap, n_atoms), amap)
        # padding elements keep their value when "removed": they cannot change the output
        baseline = torch.where(padding, x, row.baseline(modality).detach().to(x.dtype))

        def forward(x_perturbed: torch.Tensor, row=row, row_target=row_target) -> torch.Tensor:
            many = row.repeat(x_perturbed.shape[0]).with_inputs(**{modality: x_perturbed})
            return target_scalars(adapter, many, sub_target(row_target, [0] * x_perturbed.shape[0]))

        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            coefs = KernelShap(forward).attribute(
                x,
                baselines=baseline,
                feature_mask=feature_mask,
                n_samples=int(n_samples),
                perturbations_per_eval=int(batch_size),
                return_input_shape=False,
            )
        out[r, :n_atoms] = coefs.reshape(-1)[:n_atoms].double().cpu().numpy()
    return out
