"""The stages a bundle can hold, in one place: name, label, the methods it may use, what it
needs from the model, its default parameters and the function that writes its section.

Everything that lists stages (the format's checks, the bundle schema, planning, the item
writer, and on the platform the conditions and the annotator's pages) asks this registry,
so adding a stage is one module that calls :func:`register_stage` (see
``docs/extending.md``). It imports no Django and no torch: a section writer is named by its
dotted path (``"package.module:function"``) and imported only when a section is written,
so the web processes can list stages without loading a model.

A section writer is called as ``writer(ctx, entry, example, batch, prediction)`` (the
bundle's :class:`~viz_engine.bundles.stages.BundleContext`, the item's plan entry, its
datapoint, the model batch of that datapoint and the predicted class index) and returns the
section as a JSON-ready dict; asset paths in it are relative to the bundle root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..registries import Registry, load_callable

__all__ = ["StageSpec", "register_stage", "unregister_stage", "get_stage", "stages", "stage_names",
           "default_stage_names", "section_writer"]


@dataclass(frozen=True)
class StageSpec:
    """One stage of a bundle.

    name: the key of the stage everywhere (section file ``<name>.json``, ``Condition.stages``).
    label: how people read it (``"Rℓ"``).
    methods: the analysis methods (``viz_engine.methods`` module names) it may be computed with.
    needs: the adapter attributes the model must have for this stage (checked at planning).
    params: the default parameters of the stage (``plan["stages"][name]``), overridable per bundle.
    writer: the section writer, a callable or ``"module:function"`` (imported when first used).
    method_params: the parameters that name the stage's method: an attribution method
        (``methods.attributions``) for U, Rℓ and Rg, a cross-modal one for C; a recipe or an
        override sets them, and planning refuses a method the stage cannot use (``recipes``).
    default: whether a bundle holds it unless asked otherwise (the paper's five stages).
    description: one line for help texts.
    """

    name: str
    label: str
    methods: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    writer: str | Callable = ""
    method_params: tuple[str, ...] = ()
    default: bool = False
    description: str = ""


_STAGES: Registry[StageSpec] = Registry("stage")


def register_stage(spec: StageSpec, *, replace: bool = False) -> StageSpec:
    """Add a stage (after those registered before it: the order is the canonical one)."""
    if not spec.name.isidentifier() or len(spec.name) > 16:
        raise ValueError(f"stage name {spec.name!r}: letters, digits and _, at most 16 characters")
    return _STAGES.add(spec.name, spec, replace=replace)


def unregister_stage(name: str) -> None:
    """Remove a stage (tests that register a toy stage clean up with this)."""
    _STAGES.remove(name)


def get_stage(name: str) -> StageSpec:
    return _STAGES.get(name)


def stages() -> tuple[StageSpec, ...]:
    """Every registered stage, in canonical order."""
    return _STAGES.entries()


def stage_names() -> tuple[str, ...]:
    return _STAGES.names()


def default_stage_names() -> tuple[str, ...]:
    """What a bundle holds unless asked for more."""
    return tuple(s.name for s in _STAGES.entries() if s.default)


def section_writer(name: str) -> Callable:
    """The stage's section writer (importing its module the first time)."""
    return load_callable(get_stage(name).writer)


# -- the built-in stages (MultiViz, Liang et al. 2023, plus the transformer views) -----------------
_WRITERS = "viz_engine.bundles.stages"
register_stage(StageSpec(
    "U", "U", methods=("gradient", "gradient_x_input", "integrated_gradients", "lime", "kernel_shap"),
    params={"image": "lime", "n_samples": 500, "patch": 8, "seed": 0, "text": "gradient_x_input"},
    writer=f"{_WRITERS}:write_unimodal", method_params=("image", "text"), default=True, description="unimodal importance"))
register_stage(StageSpec(
    "C", "C", methods=("second_order_gradient", "emap", "dime"),
    params={"method": "second_order_gradient", "top_boxes": 2}, method_params=("method",),
    writer=f"{_WRITERS}:write_cross", default=True, description="cross-modal interactions"))
register_stage(StageSpec(
    "Rl", "Rℓ", methods=("local_representation", "gradient_x_input"),
    params={"features": 3, "method": "gradient_x_input"},
    writer=f"{_WRITERS}:write_local", method_params=("method",), default=True, description="local representation: what drives a feature here"))
register_stage(StageSpec(
    "Rg", "Rg", methods=("global_representation",), params={"k": 3, "method": "gradient_x_input"},
    method_params=("method",),
    writer=f"{_WRITERS}:write_global", default=True, description="global representation: datapoints that activate a feature"))
register_stage(StageSpec(
    "P", "P", methods=("sparse_linear",),
    params={"alpha": 0.99, "n_lambdas": 12, "max_acc_drop": 0.02, "top_k": 5, "points": 3000},
    writer=f"{_WRITERS}:write_prediction", default=True, description="the prediction's sparse linear model"))
register_stage(StageSpec(
    "T", "T", methods=("attention_statistics", "attention_heatmap", "hidden_state_projection"),
    needs=("attentions", "hidden_states", "token_segments"), params={"projection_sample": 200, "nearest": 3},
    writer=f"{_WRITERS}:write_transformer", description="transformer views"))
