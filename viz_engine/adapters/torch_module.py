"""The adapter for any ``nn.Module`` whose forward takes one tensor per modality."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .atoms import atoms_per_element
from .batch import Batch, Modality
from .classifier import MultimodalClassifier
from .errors import AdapterError, check_finite

__all__ = ["TorchModuleAdapter"]


class TorchModuleAdapter(MultimodalClassifier):
    """Adapter for any ``nn.Module`` whose forward takes one tensor per modality.

    ``module(*[batch.inputs[m.name] for m in modalities])`` must return ``(B, C)`` logits.
    Atoms default to one atom per element of the per-example input, unless ``atom_fns``
    gives, per modality, a function ``(input_tensor) -> atom map``; use the helpers
    :func:`atoms_per_position` and :func:`atoms_per_patch`.

    Args:
        module:       the model; put in eval mode.
        modalities:   one :class:`Modality` per forward argument, in order.
        class_names:  names of the logits.
        final_linear: the final ``nn.Linear``; found automatically when the module has
                      exactly one ``nn.Linear`` that produces ``len(class_names)`` outputs
                      and is the last ``nn.Linear`` registered.
        layers:       extra readable layers by name; by default every named submodule.
        atom_fns:     per modality, ``input -> atom map`` (see above).
        baseline_fns: per modality, ``input -> baseline`` (default zeros).
    """

    def __init__(
        self,
        module: nn.Module,
        modalities: Sequence[Modality],
        class_names: Sequence[str],
        final_linear: nn.Linear | None = None,
        layers: Mapping[str, nn.Module] | None = None,
        atom_fns: Mapping[str, Callable[[Tensor], Tensor]] | None = None,
        baseline_fns: Mapping[str, Callable[[Tensor], Tensor]] | None = None,
    ):
        if not isinstance(module, nn.Module):
            raise AdapterError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if not modalities:
            raise AdapterError("modalities must name at least one modality")
        names = [m.name for m in modalities]
        if len(set(names)) != len(names):
            raise AdapterError(f"modalities have duplicate names: {names}")
        if not class_names:
            raise AdapterError("class_names must not be empty")
        self.module = module.eval()
        self.modalities = tuple(modalities)
        self.class_names = tuple(str(c) for c in class_names)
        self._final_linear = final_linear or self._find_final_linear(module, len(self.class_names))
        self._layers = dict(layers) if layers is not None else {
            n: m for n, m in module.named_modules() if n
        }
        for fns, what in ((atom_fns, "atom_fns"), (baseline_fns, "baseline_fns")):
            for key in (fns or {}):
                if key not in names:
                    raise AdapterError(f"{what} names modality {key!r}; modalities: {names}")
        self._atom_fns = dict(atom_fns or {})
        self._baseline_fns = dict(baseline_fns or {})

    @staticmethod
    def _find_final_linear(module: nn.Module, n_classes: int) -> nn.Linear:
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        if not linears or linears[-1].out_features != n_classes:
            raise AdapterError(
                "final_linear could not be found: pass final_linear= the nn.Linear that "
                f"produces the {n_classes} logits"
            )
        return linears[-1]

    @property
    def final_linear(self) -> nn.Linear:
        return self._final_linear

    def layers(self) -> dict[str, nn.Module]:
        return self._layers

    def logits(self, batch: Batch) -> Tensor:
        args = []
        for m in self.modalities:
            if m.name not in batch.inputs:
                raise AdapterError(f"batch has no input for modality {m.name!r}")
            args.append(batch.inputs[m.name])
        out = self.module(*args)
        if out.ndim != 2 or out.shape[1] != self.n_classes:
            raise AdapterError(
                f"the module returned shape {tuple(out.shape)}; expected (B, {self.n_classes}) logits"
            )
        return out

    def make_batch(self, *inputs: Tensor, atom_labels: Mapping[str, list[list[str]]] | None = None) -> Batch:
        """A :class:`Batch` from one tensor per modality (batch axis first), validated."""
        if len(inputs) != len(self.modalities):
            raise AdapterError(
                f"expected {len(self.modalities)} input tensors ({', '.join(self.modality_names)}), "
                f"got {len(inputs)}"
            )
        tensors, atoms, baselines = {}, {}, {}
        for m, x in zip(self.modalities, inputs):
            x = torch.as_tensor(x, dtype=torch.float32)
            expected = tuple(m.input_shape)
            if x.ndim != len(expected) + 1 or any(
                e is not None and e != s for e, s in zip(expected, x.shape[1:])
            ):
                raise AdapterError(
                    f"input for modality {m.name!r} has shape {tuple(x.shape)}; "
                    f"expected (B, {', '.join('*' if e is None else str(e) for e in expected)})"
                )
            check_finite(x, f"input for modality {m.name!r}")
            tensors[m.name] = x
            atoms[m.name] = (
                self._atom_fns[m.name](x) if m.name in self._atom_fns else atoms_per_element(x)
            )
            if m.name in self._baseline_fns:
                baselines[m.name] = self._baseline_fns[m.name](x)
        labels = dict(atom_labels or {})
        for m in self.modalities:
            if m.name not in labels:
                n = int(atoms[m.name].max().item()) + 1 if atoms[m.name].numel() else 0
                names = list(m.atom_names) if len(m.atom_names) == n else [f"{m.name}[{i}]" for i in range(n)]
                labels[m.name] = [list(names) for _ in range(x.shape[0])]
        return Batch(inputs=tensors, atoms=atoms, atom_labels=labels, baselines=baselines)
