"""What a model is fed: its modalities (:class:`Modality`) and a batch of datapoints
(:class:`Batch`) with their atom maps, labels and baselines."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from .errors import AdapterError

__all__ = ["ATOM_KINDS", "Modality", "Batch"]

ATOM_KINDS = ("token", "pixel", "patch", "region", "time_step", "field")


@dataclass(frozen=True)
class Modality:
    """One input modality of a multimodal model.

    name:        key of this modality in ``Batch.inputs`` ("image", "question", "series" ...).
    atom_kind:   one of ``ATOM_KINDS``: what the explained parts are.
    input_shape: per-example shape of the differentiable input, without the batch axis;
                 ``None`` on an axis means "varies between batches" (e.g. sequence length).
    render:      how a front end draws per-atom scores: "image_heatmap" (scores over
                 ``(H, W)`` pixels or patches), "token_highlight" (one score per word),
                 "series_heatmap" (time × channel), "bar" (static fields).
    atom_names:  fixed names of atoms where they do not depend on the example (channels
                 of a static vector); per-example labels (words) live in ``Batch``.
    """

    name: str
    atom_kind: str
    input_shape: tuple[int | None, ...]
    render: str
    atom_names: tuple[str, ...] = ()

    def __post_init__(self):
        if self.atom_kind not in ATOM_KINDS:
            raise AdapterError(f"atom_kind={self.atom_kind!r} is not one of {ATOM_KINDS}")


@dataclass
class Batch:
    """A batch of datapoints as an adapter consumes it (batch axis first everywhere).

    inputs:      modality name -> differentiable float tensor ``(B, *input_shape)``.
    extras:      modality name -> {extra name -> tensor ``(B, ...)``}: non-differentiable
                 companions of a modality that travel with it (a token padding mask, region
                 boxes). When EMAP pairs question i with image j, question i's extras go
                 with it.
    atoms:       modality name -> long tensor shaped like ``inputs[name]``: atom index of
                 each element, ``-1`` where the element belongs to no atom (padding).
    atom_labels: modality name -> one list of atom labels per row (words, "t=3", field names).
    baselines:   modality name -> tensor shaped like ``inputs[name]``: what an atom becomes
                 when removed (zeros, the [PAD] embedding, the dataset mean ...).
    """

    inputs: dict[str, Tensor]
    atoms: dict[str, Tensor]
    extras: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    atom_labels: dict[str, list[list[str]]] = field(default_factory=dict)
    baselines: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self):
        sizes = {name: t.shape[0] for name, t in self.inputs.items()}
        if len(set(sizes.values())) > 1:
            raise AdapterError(f"inputs have different batch sizes: {sizes}")
        for name, amap in self.atoms.items():
            if name not in self.inputs:
                raise AdapterError(f"atoms names modality {name!r} that has no input")
            if amap.shape != self.inputs[name].shape:
                raise AdapterError(
                    f"atoms[{name!r}] has shape {tuple(amap.shape)}, "
                    f"inputs[{name!r}] has shape {tuple(self.inputs[name].shape)}"
                )
        for name, base in self.baselines.items():
            if base.shape != self.inputs[name].shape:
                raise AdapterError(
                    f"baselines[{name!r}] has shape {tuple(base.shape)}, "
                    f"inputs[{name!r}] has shape {tuple(self.inputs[name].shape)}"
                )

    # -- shape helpers -------------------------------------------------------------
    @property
    def size(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    def __len__(self) -> int:
        return self.size

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    def n_atoms(self, modality: str) -> Tensor:
        """``(B,)`` number of atoms of ``modality`` in each row."""
        amap = self._atom_map(modality)
        return amap.flatten(1).max(dim=1).values + 1

    def max_atoms(self, modality: str) -> int:
        return int(self.n_atoms(modality).max().item()) if self.size else 0

    def _atom_map(self, modality: str) -> Tensor:
        if modality not in self.atoms:
            raise AdapterError(
                f"modality={modality!r} is unknown; this batch has {list(self.atoms)}"
            )
        return self.atoms[modality]

    def baseline(self, modality: str) -> Tensor:
        if modality in self.baselines:
            return self.baselines[modality]
        return torch.zeros_like(self.inputs[modality])

    # -- row operations --------------------------------------------------------------
    def _map_rows(self, fn: Callable[[Tensor], Tensor], rows: Callable[[list], list]) -> "Batch":
        return Batch(
            inputs={k: fn(v) for k, v in self.inputs.items()},
            atoms={k: fn(v) for k, v in self.atoms.items()},
            extras={m: {k: fn(v) for k, v in ex.items()} for m, ex in self.extras.items()},
            atom_labels={k: rows(v) for k, v in self.atom_labels.items()},
            baselines={k: fn(v) for k, v in self.baselines.items()},
        )

    def select(self, index: Sequence[int] | Tensor) -> "Batch":
        """The rows ``index`` (any order, repeats allowed) as a new batch."""
        idx = torch.as_tensor(index, dtype=torch.long)
        if idx.ndim != 1:
            raise AdapterError(f"index must be 1-D, got shape {tuple(idx.shape)}")
        if len(idx) and (idx.min() < -self.size or idx.max() >= self.size):
            raise AdapterError(f"index out of range for a batch of {self.size}")
        ids = idx.tolist()
        return self._map_rows(lambda t: t[idx.to(t.device)], lambda rows: [rows[i] for i in ids])

    def repeat(self, n: int) -> "Batch":
        """Each row repeated ``n`` times in place: rows ``[0]*n + [1]*n + ...``."""
        return self.select(torch.arange(self.size).repeat_interleave(n))

    def model_inputs(self) -> "Batch":
        """The same rows holding only what a forward pass reads (inputs and extras); no copy.

        Selecting or combining rows of this view copies no atom maps (int64, as large as the
        inputs), labels or baselines: the cheap way to build the many rows that EMAP, DIME and
        LIME only score.
        """
        return Batch(inputs=dict(self.inputs), atoms={}, extras={m: dict(e) for m, e in self.extras.items()})

    def expand(self, n: int) -> "Batch":
        """A one-row batch seen as ``n`` identical rows: inputs and extras as views, no copy."""
        if self.size != 1:
            raise AdapterError(f"expand needs a batch of one row; this one has {self.size}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise AdapterError(f"n must be a positive integer, got {n!r}")
        return Batch(
            inputs={k: v.expand(n, *v.shape[1:]) for k, v in self.inputs.items()},
            atoms={},
            extras={m: {k: v.expand(n, *v.shape[1:]) for k, v in ex.items()} for m, ex in self.extras.items()},
        )

    def with_inputs(self, **inputs: Tensor) -> "Batch":
        """The same batch with some modality inputs replaced (shapes must match)."""
        for name, t in inputs.items():
            if name not in self.inputs:
                raise AdapterError(f"modality={name!r} is unknown; known: {list(self.inputs)}")
            if t.shape != self.inputs[name].shape:
                raise AdapterError(
                    f"new input for {name!r} has shape {tuple(t.shape)}, "
                    f"expected {tuple(self.inputs[name].shape)}"
                )
        return replace(self, inputs={**self.inputs, **inputs})

    def to(self, device: torch.device | str) -> "Batch":
        return self._map_rows(lambda t: t.to(device), lambda rows: rows)

    @staticmethod
    def combine(parts: Mapping[str, "Batch"]) -> "Batch":
        """Take each modality (with its extras, atoms, labels, baseline) from its own batch.

        ``Batch.combine({"image": a, "question": b})`` pairs row i of ``a``'s image with
        row i of ``b``'s question: the building block of EMAP and DIME.
        """
        sizes = {m: b.size for m, b in parts.items()}
        if len(set(sizes.values())) > 1:
            raise AdapterError(f"combine: parts have different sizes {sizes}")
        out = Batch(inputs={}, atoms={})
        for m, b in parts.items():
            if m not in b.inputs:
                raise AdapterError(f"combine: modality {m!r} is not in the batch given for it")
            out.inputs[m] = b.inputs[m]
            if m in b.atoms:
                out.atoms[m] = b.atoms[m]
            if m in b.extras:
                out.extras[m] = b.extras[m]
            if m in b.atom_labels:
                out.atom_labels[m] = b.atom_labels[m]
            if m in b.baselines:
                out.baselines[m] = b.baselines[m]
        return out

    @staticmethod
    def concat(batches: Iterable["Batch"]) -> "Batch":
        batches = list(batches)
        if not batches:
            raise AdapterError("concat: no batches")
        first = batches[0]

        def cat(get):
            return torch.cat([get(b) for b in batches], dim=0)

        return Batch(
            inputs={k: cat(lambda b, k=k: b.inputs[k]) for k in first.inputs},
            atoms={k: cat(lambda b, k=k: b.atoms[k]) for k in first.atoms},
            extras={
                m: {k: cat(lambda b, m=m, k=k: b.extras[m][k]) for k in ex}
                for m, ex in first.extras.items()
            },
            atom_labels={
                k: [row for b in batches for row in b.atom_labels[k]] for k in first.atom_labels
            },
            baselines={k: cat(lambda b, k=k: b.baselines[k]) for k in first.baselines},
        )
