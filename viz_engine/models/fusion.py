"""Two reference models for the fusion dataset (:mod:`viz_engine.data.fusion`) and their adapter.

* :class:`LateFusionNet` — series encoder and static encoder, concatenated, then ONE linear
  head: ``logits = head(concat(enc_series(series), enc_static(static)))``. Everything after
  the concatenation is linear, so the logits are ``g1(series) + g2(static)`` and the
  cross-modal second-order gradient is exactly zero; it cannot learn the planted XOR.
* :class:`InteractionNet` — the same encoders, then a nonlinear fusion MLP (GELU) before the
  final ``nn.Linear``: it learns the planted series × static interaction.

Both use smooth activations (GELU) so second-order gradients are meaningful, and both keep
the training-split mean of each modality as buffers ``baseline_series`` / ``baseline_static``:
the baseline an atom takes when it is removed (shipped with the weights).

Use :func:`load_pretrained` (``"late"`` or ``"interaction"``) for the shipped weights, and
``adapter.make_batch(examples)`` to turn dataset examples into a :class:`Batch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from viz_engine.adapters import (
    AdapterError,
    Batch,
    Modality,
    MultimodalClassifier,
    atoms_per_element,
    atoms_per_position,
    check_finite,
)
from viz_engine.data.fusion import CHANNEL_NAMES, CLASS_NAMES, FIELD_NAMES, N_STEPS, FusionData

__all__ = [
    "SeriesEncoder",
    "StaticEncoder",
    "LateFusionNet",
    "InteractionNet",
    "FusionAdapter",
    "LateFusionAdapter",
    "build_model",
    "make_adapter",
    "load_pretrained",
    "weights_path",
    "KINDS",
]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
KINDS = ("late", "interaction")
N_CHANNELS = len(CHANNEL_NAMES)
N_FIELDS = len(FIELD_NAMES)


class SeriesEncoder(nn.Module):
    """``(B, 24, C)`` -> ``(B, d)``: two 1-D convolutions over time, average pooling over
    ``pool`` steps, then a position-aware linear layer over the flattened feature map (the
    planted bump counts only at steps 16–20, an early one does not)."""

    def __init__(self, n_channels: int = N_CHANNELS, n_steps: int = N_STEPS, width: int = 16,
                 dim: int = 32, pool: int = 4):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(n_channels, width, kernel_size=5, padding=2), nn.GELU(),
            nn.Conv1d(width, width, kernel_size=5, padding=2), nn.GELU(),
            nn.AvgPool1d(pool),
        )
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(width * (n_steps // pool), dim), nn.GELU())

    def forward(self, series: Tensor) -> Tensor:
        return self.proj(self.conv(series.transpose(1, 2)))


class StaticEncoder(nn.Module):
    """``(B, F)`` -> ``(B, d)``: a two-layer GELU MLP."""

    def __init__(self, n_fields: int = N_FIELDS, dim: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_fields, dim), nn.GELU(), nn.Linear(dim, dim), nn.GELU())

    def forward(self, static: Tensor) -> Tensor:
        return self.net(static)


class _FusionBase(nn.Module):
    def __init__(self, dim: int = 32):
        super().__init__()
        self.series_encoder = SeriesEncoder(dim=dim)
        self.static_encoder = StaticEncoder(dim=dim)
        self.register_buffer("baseline_series", torch.zeros(N_STEPS, N_CHANNELS))
        self.register_buffer("baseline_static", torch.zeros(N_FIELDS))

    def set_baselines(self, series_mean: Tensor, static_mean: Tensor) -> None:
        self.baseline_series.copy_(torch.as_tensor(series_mean, dtype=torch.float32))
        self.baseline_static.copy_(torch.as_tensor(static_mean, dtype=torch.float32))


class LateFusionNet(_FusionBase):
    """``logits = head(concat(series_encoder(series), static_encoder(static)))``, head linear."""

    def __init__(self, dim: int = 32, n_classes: int = len(CLASS_NAMES)):
        super().__init__(dim)
        self.head = nn.Linear(2 * dim, n_classes)

    def fuse(self, enc_series: Tensor, enc_static: Tensor) -> Tensor:
        return self.head(torch.cat([enc_series, enc_static], dim=1))

    def forward(self, series: Tensor, static: Tensor) -> Tensor:
        return self.fuse(self.series_encoder(series), self.static_encoder(static))


class InteractionNet(_FusionBase):
    """``logits = head(fusion(concat(enc_series, enc_static)))`` with a GELU fusion MLP."""

    def __init__(self, dim: int = 32, n_classes: int = len(CLASS_NAMES)):
        super().__init__(dim)
        self.fusion = nn.Sequential(
            nn.Linear(2 * dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim), nn.GELU(),
        )
        self.head = nn.Linear(dim, n_classes)

    def forward(self, series: Tensor, static: Tensor) -> Tensor:
        enc = torch.cat([self.series_encoder(series), self.static_encoder(static)], dim=1)
        return self.head(self.fusion(enc))


class FusionAdapter(MultimodalClassifier):
    """Adapter for :class:`LateFusionNet` / :class:`InteractionNet`.

    Modalities:
        ``series``: ``(24, 5)``, one atom per time step (all channels of a step together,
        :func:`atoms_per_position` on axis 1); ``make_batch(..., series_atoms="element")``
        gives one atom per time step × channel instead (:func:`atoms_per_element`, atom
        ``t * 5 + c``), for a full time × channel heatmap.
        ``static``: ``(8,)``, one atom per field, named by :data:`FIELD_NAMES`.
    Baselines: the training-split mean of each modality (buffers of the module).
    """

    default_layer = "penultimate"

    def __init__(self, module: LateFusionNet | InteractionNet):
        if not isinstance(module, _FusionBase):
            raise AdapterError(f"module must be a LateFusionNet or InteractionNet, got {type(module).__name__}")
        self.module = module.eval()
        self.modalities = (
            Modality("series", "time_step", (N_STEPS, N_CHANNELS), "series_heatmap"),
            Modality("static", "field", (N_FIELDS,), "bar", atom_names=FIELD_NAMES),
        )
        self.class_names = CLASS_NAMES
        self.channel_names = CHANNEL_NAMES
        self.field_names = FIELD_NAMES

    @property
    def final_linear(self) -> nn.Linear:
        return self.module.head

    def layers(self) -> dict[str, nn.Module]:
        out = {"series_encoder": self.module.series_encoder, "static_encoder": self.module.static_encoder}
        if hasattr(self.module, "fusion"):
            out["fusion"] = self.module.fusion
        return out

    def _inputs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        xs = []
        for m in self.modalities:
            if m.name not in batch.inputs:
                raise AdapterError(f"batch has no input for modality {m.name!r}")
            x = batch.inputs[m.name]
            if tuple(x.shape[1:]) != m.input_shape:
                raise AdapterError(
                    f"batch.inputs[{m.name!r}] has shape {tuple(x.shape)}; expected (B, {', '.join(map(str, m.input_shape))})"
                )
            xs.append(x)
        return xs[0], xs[1]

    def logits(self, batch: Batch) -> Tensor:
        """``(B, 2)`` logits, differentiable (twice) w.r.t. both inputs."""
        return self.module(*self._inputs(batch))

    def make_batch(self, examples: Any, series_atoms: str = "time_step") -> Batch:
        """A validated :class:`Batch` from dataset examples.

        examples: a :class:`FusionData`; a sequence of example dicts (``FusionData.example``)
                  with ``"series"`` ``(24, 5)`` and ``"static"`` ``(8,)``; or one mapping
                  ``{"series": (B, 24, 5), "static": (B, 8)}``.
        series_atoms: ``"time_step"`` (24 atoms, labels ``"t=3"``) or ``"element"``
                  (120 atoms, labels ``"spo2@t=3"``).
        """
        if series_atoms not in ("time_step", "element"):
            raise AdapterError(f"series_atoms={series_atoms!r} must be 'time_step' or 'element'")
        series, static = _stack_examples(examples)
        for name, x, shape in (("series", series, (N_STEPS, N_CHANNELS)), ("static", static, (N_FIELDS,))):
            if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
                raise AdapterError(
                    f"examples: {name} has shape {tuple(x.shape)}; expected (B, {', '.join(map(str, shape))})"
                )
            check_finite(x, f"examples: {name}")
        if series.shape[0] != static.shape[0]:
            raise AdapterError(f"examples: {series.shape[0]} series but {static.shape[0]} static vectors")
        if series.shape[0] == 0:
            raise AdapterError("examples is empty")
        b = series.shape[0]
        if series_atoms == "time_step":
            s_atoms = atoms_per_position(series, axis=1)
            s_labels = [f"t={t}" for t in range(N_STEPS)]
        else:
            s_atoms = atoms_per_element(series)
            s_labels = [f"{c}@t={t}" for t in range(N_STEPS) for c in CHANNEL_NAMES]
        return Batch(
            inputs={"series": series, "static": static},
            atoms={"series": s_atoms, "static": atoms_per_element(static)},
            atom_labels={
                "series": [list(s_labels) for _ in range(b)],
                "static": [list(FIELD_NAMES) for _ in range(b)],
            },
            baselines={
                "series": self.module.baseline_series.expand(b, -1, -1).clone(),
                "static": self.module.baseline_static.expand(b, -1).clone(),
            },
        )


class LateFusionAdapter(FusionAdapter):
    """:class:`FusionAdapter` for :class:`LateFusionNet`, with ``encode``/``fuse``:
    ``logits(batch) == fuse({m: encode(m, batch) for m in ("series", "static")})``."""

    def __init__(self, module: LateFusionNet):
        if not isinstance(module, LateFusionNet):
            raise AdapterError(f"module must be a LateFusionNet, got {type(module).__name__}")
        super().__init__(module)

    def encode(self, modality: str, batch: Batch) -> Tensor:
        """``(B, 32)`` encoding of ``modality`` alone."""
        self.modality(modality)
        series, static = self._inputs(batch)
        if modality == "series":
            return self.module.series_encoder(series)
        return self.module.static_encoder(static)

    def fuse(self, encodings: Mapping[str, Tensor]) -> Tensor:
        """``(B, 2)`` logits from ``{"series": (B, 32), "static": (B, 32)}``."""
        missing = [m for m in self.modality_names if m not in encodings]
        if missing:
            raise AdapterError(f"encodings is missing modalities {missing}")
        s, t = encodings["series"], encodings["static"]
        if s.ndim != 2 or t.ndim != 2 or s.shape[0] != t.shape[0]:
            raise AdapterError(
                f"encodings must be (B, d) with one B; got series {tuple(s.shape)}, static {tuple(t.shape)}"
            )
        return self.module.fuse(s, t)


def _stack_examples(examples: Any) -> tuple[Tensor, Tensor]:
    if isinstance(examples, FusionData):
        return torch.as_tensor(examples.series, dtype=torch.float32), torch.as_tensor(examples.static, dtype=torch.float32)
    if isinstance(examples, Mapping):
        if "series" not in examples or "static" not in examples:
            raise AdapterError("examples mapping must have keys 'series' and 'static'")
        return (torch.as_tensor(np.asarray(examples["series"]), dtype=torch.float32),
                torch.as_tensor(np.asarray(examples["static"]), dtype=torch.float32))
    if isinstance(examples, Sequence) and not isinstance(examples, str):
        if len(examples) == 0:
            raise AdapterError("examples is empty")
        series, static = [], []
        for i, ex in enumerate(examples):
            if not isinstance(ex, Mapping) or "series" not in ex or "static" not in ex:
                raise AdapterError(f"examples[{i}] must be a mapping with 'series' and 'static'")
            series.append(torch.as_tensor(np.asarray(ex["series"]), dtype=torch.float32))
            static.append(torch.as_tensor(np.asarray(ex["static"]), dtype=torch.float32))
        for name, xs in (("series", series), ("static", static)):
            shapes = {tuple(x.shape) for x in xs}
            if len(shapes) > 1:
                raise AdapterError(f"examples: {name} shapes differ between examples: {sorted(shapes)}")
        return torch.stack(series), torch.stack(static)
    raise AdapterError(
        f"examples must be FusionData, a sequence of example dicts or a mapping; got {type(examples).__name__}"
    )


def build_model(kind: str) -> LateFusionNet | InteractionNet:
    """A freshly initialised ``"late"`` or ``"interaction"`` network."""
    if kind == "late":
        return LateFusionNet()
    if kind == "interaction":
        return InteractionNet()
    raise AdapterError(f"kind={kind!r} is not one of {KINDS}")


def make_adapter(module: LateFusionNet | InteractionNet) -> FusionAdapter:
    """The right adapter for ``module`` (late fusion gets ``encode``/``fuse``)."""
    return LateFusionAdapter(module) if isinstance(module, LateFusionNet) else FusionAdapter(module)


def weights_path(kind: str) -> Path:
    if kind not in KINDS:
        raise AdapterError(f"kind={kind!r} is not one of {KINDS}")
    return WEIGHTS_DIR / f"fusion_{kind}.pt"


def load_pretrained(kind: str) -> FusionAdapter:
    """The shipped ``"late"`` or ``"interaction"`` model (CPU, eval mode, nothing downloaded)."""
    path = weights_path(kind)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m viz_engine.training.fusion {kind}`")
    module = build_model(kind)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return make_adapter(module.eval())
