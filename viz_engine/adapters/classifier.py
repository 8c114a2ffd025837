"""The base class every adapter is: :class:`MultimodalClassifier`."""

from __future__ import annotations

import contextlib
from typing import Mapping

import torch
from torch import Tensor, nn

from .batch import Batch, Modality
from .errors import AdapterError
from .representation import read_layer

__all__ = ["MultimodalClassifier"]


class MultimodalClassifier:
    """Base class of adapters. Subclasses implement ``logits`` and, usually, ``layers``.

    Attributes every adapter has:
        modalities:  tuple of :class:`Modality`, in the order the model takes them.
        class_names: tuple of class names, index = logit index.
        module:      the wrapped ``nn.Module`` (its parameters are what sanity checks randomise).
        default_layer: the layer whose output is "the representation" (the input of
                     ``final_linear``), named like the keys of ``layers()``.
    """

    modalities: tuple[Modality, ...] = ()
    class_names: tuple[str, ...] = ()
    module: nn.Module
    default_layer: str = "penultimate"

    # -- required -----------------------------------------------------------------------
    def logits(self, batch: Batch) -> Tensor:
        """``(B, C)`` logits. Must be differentiable w.r.t. ``batch.inputs`` (twice, for C)."""
        raise NotImplementedError

    @property
    def final_linear(self) -> nn.Linear:
        """The final linear layer (its input is the default representation)."""
        raise NotImplementedError

    def layers(self) -> dict[str, nn.Module]:
        """Named layers whose *output* can be read as a representation.

        ``default_layer`` is special: it names the *input* of ``final_linear``.
        """
        return {}

    # -- optional: late fusion -------------------------------------------------------------
    def encode(self, modality: str, batch: Batch) -> Tensor:  # pragma: no cover - optional
        """Encoding of one modality alone, ``(B, ...)``; only for late-fusion models."""
        raise NotImplementedError

    def fuse(self, encodings: Mapping[str, Tensor]) -> Tensor:  # pragma: no cover - optional
        """Logits ``(B, C)`` from one encoding per modality; only for late-fusion models."""
        raise NotImplementedError

    @property
    def supports_late_fusion(self) -> bool:
        cls = type(self)
        return (
            cls.encode is not MultimodalClassifier.encode
            and cls.fuse is not MultimodalClassifier.fuse
        )

    # -- provided ------------------------------------------------------------------------
    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def modality(self, name: str) -> Modality:
        for m in self.modalities:
            if m.name == name:
                return m
        raise AdapterError(f"modality={name!r} is unknown; this model has {list(self.modality_names)}")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def label_index(self, label: int | str) -> int:
        if isinstance(label, str):
            try:
                return self.class_names.index(label)
            except ValueError:
                raise AdapterError(
                    f"label={label!r} is not a class of this model "
                    f"(classes: {', '.join(self.class_names[:20])}{' …' if self.n_classes > 20 else ''})"
                ) from None
        if isinstance(label, bool) or not isinstance(label, int):
            raise AdapterError(f"label must be a class index or name, got {label!r}")
        if not -self.n_classes <= label < self.n_classes:
            raise AdapterError(f"label={label} is out of range for {self.n_classes} classes")
        return label % self.n_classes

    def layer_names(self) -> list[str]:
        return [self.default_layer, *[n for n in self.layers() if n != self.default_layer]]

    def layer_module(self, layer: str | None = None) -> tuple[str, nn.Module, bool]:
        """Where ``layer`` is read: ``(name, module, read_input)``.

        The default layer is the *input* of ``final_linear``; any other name is the output
        of ``layers()[name]``. Adapters whose layers live elsewhere override this, not the
        reading itself.
        """
        layer = self.default_layer if layer is None else layer
        if layer == self.default_layer:
            return layer, self.final_linear, True
        known = self.layers()
        if layer not in known:
            raise AdapterError(f"layer={layer!r} is unknown; layers: {self.layer_names()}")
        return layer, known[layer], False

    def representation(self, batch: Batch, layer: str | None = None) -> Tensor:
        """``(B, d)`` features at ``layer`` (default: the input of the final linear layer).

        Non-flat layer outputs are mean-pooled over every axis but the batch and the last
        (e.g. token axis of a transformer block), then flattened to ``(B, d)``. A layer the
        forward pass does not reach is an :class:`AdapterError` that names it.
        """
        return self.logits_and_representation(batch, layer)[1]

    def logits_and_representation(self, batch: Batch, layer: str | None = None) -> tuple[Tensor, Tensor]:
        """Logits and features in one forward pass (the same reading as :meth:`representation`)."""
        name, module, read_input = self.layer_module(layer)
        return read_layer(self, batch, name, module, read_input)

    @torch.no_grad()
    def predict_proba(self, batch: Batch, batch_size: int = 512) -> Tensor:
        """``(B, C)`` class probabilities, computed in chunks without gradients."""
        outs = [
            torch.softmax(self.logits(batch.select(range(s, min(s + batch_size, batch.size)))), -1)
            for s in range(0, batch.size, batch_size)
        ]
        return torch.cat(outs) if outs else torch.empty(0, self.n_classes)

    def eval(self) -> "MultimodalClassifier":
        self.module.eval()
        return self

    @contextlib.contextmanager
    def frozen(self):
        """Parameters without gradients (methods only differentiate w.r.t. inputs)."""
        flags = [p.requires_grad for p in self.module.parameters()]
        for p in self.module.parameters():
            p.requires_grad_(False)
        try:
            yield self
        finally:
            for p, f in zip(self.module.parameters(), flags):
                p.requires_grad_(f)
