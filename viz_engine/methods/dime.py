"""C: DIME, disentangled local explanations (Lyu et al., 2022).

DIME splits a model at a datapoint (a, b) into its unimodal contributions and its
multimodal interactions using EMAP over a reference sample {(a_j, b_j)}_{j=1..N}:

    UC(a, b) = mean_j f(a, b_j) + mean_j f(a_j, b) − mean_{j,k} f(a_j, b_k)
    MI(a, b) = f(a, b) − UC(a, b)

and explains each part with LIME over the atoms of one modality. Perturbing the atoms of
``a`` changes f(a', b) (one forward) and mean_j f(a', b_j) (N forwards); the remaining terms
are constants of the datapoint, computed once. So one LIME sample costs N + 1 forward
passes: every sample of a chunk is scored in batched forward passes (or, for late-fusion
adapters, with ``encode`` once per sample and ``fuse`` against the N cached encodings).

An additive model has MI ≡ 0, so its MI explanation is ~0 everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters import (
    AdapterError,
    Batch,
    Label,
    LogitSum,
    MultimodalClassifier,
    Target,
    perturb_one_row,
    resolve_target,
    target_scalars,
)
from .emap import pairwise_logits
from .lime import lime_from_scorer

__all__ = ["dime", "DIMEExplanation"]


@dataclass
class DIMEExplanation:
    """DIME for one datapoint, one explained modality and one target.

    uc:       ``(n_atoms,)`` LIME weights of the unimodal contribution over the atoms.
    mi:       ``(n_atoms,)`` LIME weights of the multimodal interaction over the atoms.
    uc_value, mi_value: UC and MI at the unperturbed datapoint (their sum is f).
    modality: the explained modality; atom_labels: its atoms' labels.
    """

    uc: np.ndarray
    mi: np.ndarray
    uc_value: float
    mi_value: float
    modality: str
    atom_labels: list[str]


def _scalar_fn(adapter: MultimodalClassifier, target: Target):
    t = resolve_target(adapter, target)

    def from_logits(logits: torch.Tensor) -> torch.Tensor:
        if isinstance(t, Label):
            return logits[:, t.label]
        return logits.sum(dim=1)

    return t, from_logits


@torch.no_grad()
def dime(
    adapter: MultimodalClassifier,
    point: Batch,
    reference: Batch,
    target: Target,
    explain: str,
    *,
    n_samples: int = 500,
    seed: int = 0,
    kernel_width: float = 0.25,
    batch_size: int = 2048,
    cache_dir=None,
) -> DIMEExplanation:
    """DIME explanation of ``point`` (one row) over the atoms of modality ``explain``.

    Args:
        point:      a one-row batch: the datapoint explained.
        reference:  N rows: the sample the expectations run over (the paper's DIME uses the
                    dataset; N = 50–100 is typical). Must hold the model's two modalities.
        target:     a class (index, name or ``Label``), ``LogitSum`` or ``Feature``.
        explain:    the modality whose atoms are perturbed (e.g. "image").
        n_samples:  LIME samples per part (each costs N + 1 forward passes, batched).
        batch_size: forward-pass rows per call (samples × reference points).
        cache_dir:  for class and logit-sum targets, where the reference sample's N×N matrix
                    (:func:`viz_engine.methods.emap.pairwise_logits`) is cached: explaining
                    many points against one reference computes it once.

    Returns:
        :class:`DIMEExplanation` with ``uc`` and ``mi`` of shape ``(n_atoms,)``.
    """
    if point.size != 1:
        raise AdapterError(f"point must be one datapoint; got a batch of {point.size}")
    names = adapter.modality_names
    if len(names) != 2:
        raise AdapterError(f"DIME needs a model with two modalities; this one has {list(names)}")
    if explain not in names:
        raise AdapterError(f"explain={explain!r} is not a modality of this model ({list(names)})")
    if reference.size < 2:
        raise AdapterError(f"reference must hold at least 2 datapoints; got {reference.size}")
    other = names[1] if explain == names[0] else names[0]
    t, from_logits = _scalar_fn(adapter, target)
    adapter.eval()
    n = reference.size

    def scalars(batch: Batch) -> torch.Tensor:
        if isinstance(t, (Label, LogitSum)):
            return from_logits(adapter.logits(batch))
        return target_scalars(adapter, batch, t)

    def in_chunks(make, total):
        rows = max(1, batch_size)
        return torch.cat([scalars(make(slice(s, min(s + rows, total)))) for s in range(0, total, rows)])

    # rows here are only scored: forward-only views copy no atom maps
    point_rows, reference_rows = point.model_inputs(), reference.model_inputs()
    # constants of the datapoint: mean_j f(a_j, b) and mean_{j,k} f(a_j, b_k)
    point_rep = point_rows.expand(n)
    f_ref_other = in_chunks(
        lambda sl: Batch.combine({explain: reference_rows.select(range(n)[sl]), other: point_rep.select(range(n)[sl])}),
        n,
    )
    mean_other_term = float(f_ref_other.mean())
    if isinstance(t, (Label, LogitSum)):
        matrix = pairwise_logits(adapter, reference, (explain, other), batch_size=batch_size, cache_dir=cache_dir)
        grand = float(from_logits(torch.from_numpy(matrix).reshape(n * n, -1)).double().mean())
    else:
        ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        ii, jj = ii.reshape(-1), jj.reshape(-1)
        grand = float(
            in_chunks(
                lambda sl: Batch.combine({explain: reference_rows.select(ii[sl]), other: reference_rows.select(jj[sl])}),
                n * n,
            ).mean()
        )

    late = adapter.supports_late_fusion and isinstance(t, (Label, LogitSum))
    enc_ref_other = adapter.encode(other, reference) if late else None
    enc_point_other = adapter.encode(other, point) if late else None
    n_atoms = int(point.n_atoms(explain)[0])
    if n_atoms < 1:
        raise AdapterError(f"the point has no atoms in modality {explain!r}")

    def f_and_mean(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For S keep-vectors: f(a', b) and mean_j f(a', b_j), each ``(S,)``."""
        s = keep.shape[0]
        perturbed = perturb_one_row(point, explain, keep.to(torch.bool))
        if late:
            enc = adapter.encode(explain, perturbed)
            f_self = from_logits(adapter.fuse({explain: enc, other: enc_point_other.expand(s, *enc_point_other.shape[1:])}))
            pi = torch.arange(s).repeat_interleave(n)
            rj = torch.arange(n).repeat(s)
            vals = torch.cat(
                [
                    from_logits(adapter.fuse({explain: enc[pi[c : c + batch_size]], other: enc_ref_other[rj[c : c + batch_size]]}))
                    for c in range(0, s * n, batch_size)
                ]
            )
        else:
            f_self = scalars(perturbed)
            pi = torch.arange(s).repeat_interleave(n)
            rj = torch.arange(n).repeat(s)
            vals = torch.cat(
                [
                    scalars(Batch.combine({explain: perturbed.select(pi[c : c + batch_size]), other: reference_rows.select(rj[c : c + batch_size])}))
                    for c in range(0, s * n, batch_size)
                ]
            )
        return f_self, vals.reshape(s, n).mean(dim=1)

    cache: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}

    def scored(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = keep.to(torch.uint8).numpy().tobytes()
        if key not in cache:
            cache[key] = f_and_mean(keep)
        return cache[key]

    def uc_score(keep: torch.Tensor) -> torch.Tensor:
        _, mean_a = scored(keep)
        return mean_a + mean_other_term - grand

    def mi_score(keep: torch.Tensor) -> torch.Tensor:
        f_self, mean_a = scored(keep)
        return f_self - (mean_a + mean_other_term - grand)

    chunk = max(1, batch_size // (n + 1))
    uc = lime_from_scorer(uc_score, n_atoms, n_samples=n_samples, seed=seed, kernel_width=kernel_width, batch_size=chunk)
    mi = lime_from_scorer(mi_score, n_atoms, n_samples=n_samples, seed=seed, kernel_width=kernel_width, batch_size=chunk)
    full = torch.ones(1, n_atoms, dtype=torch.bool)
    f0, m0 = f_and_mean(full)
    uc_value = float(m0[0]) + mean_other_term - grand
    labels = point.atom_labels.get(explain, [[str(i) for i in range(n_atoms)]])[0]
    return DIMEExplanation(
        uc=np.asarray(uc, dtype=np.float64),
        mi=np.asarray(mi, dtype=np.float64),
        uc_value=uc_value,
        mi_value=float(f0[0]) - uc_value,
        modality=explain,
        atom_labels=list(labels),
    )
