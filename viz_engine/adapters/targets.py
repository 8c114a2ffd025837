"""What an explanation is computed with respect to: a class (:class:`Label`), the sum of
the logits (:class:`LogitSum`) or one feature of a layer (:class:`Feature`), and the scalar
each row's explanation is about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from .batch import Batch
from .errors import AdapterError

if TYPE_CHECKING:
    from .classifier import MultimodalClassifier

__all__ = [
    "Label",
    "LogitSum",
    "Feature",
    "Target",
    "resolve_target",
    "target_scalars",
    "scalars_from_logits",
    "select_target",
]


@dataclass(frozen=True)
class Label:
    """The logit of one class (by index or by name)."""

    label: int | str


@dataclass(frozen=True)
class LogitSum:
    """The sum of all logits (the paper's choice for its faithfulness check, D.2)."""


@dataclass(frozen=True)
class Feature:
    """Feature ``index`` of the representation at ``layer`` (``None``: the penultimate one).

    Explaining a ``Feature`` instead of a ``Label`` is what turns U and C into Rℓ.
    """

    index: int
    layer: str | None = None


Target = Label | LogitSum | Feature | int | str


def resolve_target(adapter: MultimodalClassifier, target: Target) -> Label | LogitSum | Feature:
    if isinstance(target, (Label, LogitSum, Feature)):
        if isinstance(target, Label):
            return Label(adapter.label_index(target.label))
        return target
    if isinstance(target, (int, str)):
        return Label(adapter.label_index(target))
    raise AdapterError(f"target must be a Label, LogitSum, Feature, class index or name; got {target!r}")


def target_scalars(adapter: MultimodalClassifier, batch: Batch, target: Target | Sequence[int] | Tensor) -> Tensor:
    """``(B,)`` the scalar each row's explanation is about.

    ``target`` may also be a sequence/tensor of ``B`` class indices (one label per row, e.g.
    each row's predicted class).
    """
    t = target
    if not isinstance(target, (Tensor, list, tuple)) or isinstance(target, str):
        t = resolve_target(adapter, target)
        if isinstance(t, Feature):
            return _feature_scalars(adapter, batch, t)
    elif torch.as_tensor(target).shape != (batch.size,):
        raise AdapterError(f"target has shape {tuple(torch.as_tensor(target).shape)}; expected ({batch.size},) labels")
    return scalars_from_logits(adapter, adapter.logits(batch), t)


def _feature_scalars(adapter: MultimodalClassifier, batch: Batch, t: Feature) -> Tensor:
    feats = adapter.representation(batch, t.layer)
    if not 0 <= t.index < feats.shape[1]:
        raise AdapterError(
            f"feature index={t.index} is out of range: layer {t.layer or adapter.default_layer!r} "
            f"has {feats.shape[1]} features"
        )
    return feats[:, t.index]


def scalars_from_logits(adapter: MultimodalClassifier, logits: Tensor, target) -> Tensor | None:
    """``(B,)`` the target read off ``(B, C)`` logits, or None for a ``Feature`` target (which
    needs the representation, not the logits). Accepts what :func:`target_scalars` accepts."""
    if isinstance(target, (Tensor, list, tuple)) and not isinstance(target, str):
        labels = torch.as_tensor(target, dtype=torch.long)
        if labels.shape != (logits.shape[0],):
            raise AdapterError(f"target has shape {tuple(labels.shape)}; expected ({logits.shape[0]},) labels")
        for lab in labels.unique().tolist():
            adapter.label_index(int(lab))
        return logits.gather(1, labels.to(logits.device)[:, None] % adapter.n_classes)[:, 0]
    t = resolve_target(adapter, target)
    if isinstance(t, Label):
        return logits[:, t.label]
    if isinstance(t, LogitSum):
        return logits.sum(dim=1)
    return None


def select_target(target, rows: Sequence[int]):
    """The part of ``target`` that goes with ``batch.select(rows)``.

    Per-row label targets (a list/tuple/tensor of class indices) are indexed by ``rows``;
    every other kind of target is the same for all rows and is returned unchanged.
    """
    if isinstance(target, (Tensor, list, tuple)) and not isinstance(target, str):
        labels = torch.as_tensor(target, dtype=torch.long)
        return labels[torch.as_tensor(list(rows), dtype=torch.long)]
    return target
