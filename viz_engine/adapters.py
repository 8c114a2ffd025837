"""The one protocol every analysis method speaks: "a multimodal classifier we can explain".

A model is wrapped in a :class:`MultimodalClassifier`. Methods never call the raw
``nn.Module``; they call the adapter with a :class:`Batch`:

* ``adapter.modalities`` — named modalities, each a :class:`Modality` saying what its atoms
  are (tokens, pixels, patches, regions, time steps, static fields) and how to render them;
* ``adapter.logits(batch)`` — ``(B, C)`` logits from differentiable inputs (token
  *embeddings*, never ids, so gradients reach words);
* ``adapter.representation(batch, layer)`` — ``(B, d)`` features at any named layer
  (default: the input of the final linear layer, the "penultimate" features P uses);
* ``adapter.final_linear`` — the last ``nn.Linear`` (for P);
* optionally ``adapter.encode(name, x)`` / ``adapter.fuse(encodings)`` for late-fusion models,
  which lets EMAP and DIME encode each modality once instead of once per pair.

Atoms are described by an *atom map*: a long tensor with the shape of the modality's input
in which each element holds the index of the atom it belongs to (``-1``: not an atom, e.g.
padding). Per-atom scores are sums over an atom's elements; perturbing an atom replaces
its elements by the modality's baseline. The same idea as Captum's feature masks, so any
granularity (pixels for heatmaps, patches for LIME, words for text) is one tensor away.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "Modality",
    "Batch",
    "Target",
    "Label",
    "LogitSum",
    "Feature",
    "MultimodalClassifier",
    "TorchModuleAdapter",
    "AdapterError",
    "target_scalars",
    "scalars_from_logits",
    "per_atom_sum",
    "check_finite",
    "mask_atoms",
    "perturb_one_row",
    "select_target",
    "resolve_target",
    "atoms_per_element",
    "atoms_per_position",
    "atoms_per_pixel",
    "atoms_per_patch",
]

ATOM_KINDS = ("token", "pixel", "patch", "region", "time_step", "field")


class AdapterError(ValueError):
    """Bad input to the engine: the message names the argument at fault."""


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


# -- what an explanation is computed with respect to --------------------------------------
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

    def representation(self, batch: Batch, layer: str | None = None) -> Tensor:
        """``(B, d)`` features at ``layer`` (default: the input of the final linear layer).

        Non-flat layer outputs are mean-pooled over every axis but the batch and the last
        (e.g. token axis of a transformer block), then flattened to ``(B, d)``.
        """
        layer = self.default_layer if layer is None else layer
        if layer == self.default_layer:
            module, want_input = self.final_linear, True
        else:
            known = self.layers()
            if layer not in known:
                raise AdapterError(f"layer={layer!r} is unknown; layers: {self.layer_names()}")
            module, want_input = known[layer], False
        captured: list[Tensor] = []

        def hook(_mod, args, output):
            captured.append(args[0] if want_input else output)

        handle = module.register_forward_hook(hook)
        try:
            self.logits(batch)
        finally:
            handle.remove()
        if not captured:
            raise AdapterError(f"layer={layer!r} was not reached by the forward pass")
        out = captured[-1]
        if isinstance(out, tuple):
            out = out[0]
        if out.ndim > 2:
            out = out.mean(dim=tuple(range(1, out.ndim - 1)))
        return out

    def logits_and_representation(self, batch: Batch, layer: str | None = None) -> tuple[Tensor, Tensor]:
        """Logits and features in one forward pass."""
        layer = self.default_layer if layer is None else layer
        if layer == self.default_layer:
            module, want_input = self.final_linear, True
        else:
            known = self.layers()
            if layer not in known:
                raise AdapterError(f"layer={layer!r} is unknown; layers: {self.layer_names()}")
            module, want_input = known[layer], False
        captured: list[Tensor] = []
        handle = module.register_forward_hook(
            lambda _m, a, o: captured.append(a[0] if want_input else o)
        )
        try:
            logits = self.logits(batch)
        finally:
            handle.remove()
        out = captured[-1]
        if isinstance(out, tuple):
            out = out[0]
        if out.ndim > 2:
            out = out.mean(dim=tuple(range(1, out.ndim - 1)))
        return logits, out

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


# -- atom maps ---------------------------------------------------------------------------------
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


# -- helpers shared by methods -----------------------------------------------------------------
def check_finite(x: Tensor, what: str) -> None:
    if torch.is_floating_point(x) and not torch.isfinite(x).all():
        raise AdapterError(f"{what} contains NaN or infinite values")


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


def select_target(target, rows: Sequence[int]):
    """The part of ``target`` that goes with ``batch.select(rows)``.

    Per-row label targets (a list/tuple/tensor of class indices) are indexed by ``rows``;
    every other kind of target is the same for all rows and is returned unchanged.
    """
    if isinstance(target, (Tensor, list, tuple)) and not isinstance(target, str):
        labels = torch.as_tensor(target, dtype=torch.long)
        return labels[torch.as_tensor(list(rows), dtype=torch.long)]
    return target
