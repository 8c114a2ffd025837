"""Per-atom attribution methods by name: what a bundle's U and Rℓ stages may be computed with.

Each method keeps the shared signature ``method(adapter, batch, target, modality, **options)
-> (B, n_atoms)``; its registration names it, says where it lives (``"module:function"``,
imported when first used, so listing methods loads no model code) and which of the stage's
parameters it takes as options (LIME's ``n_samples`` and ``seed``). A bundle's plan names
the method per modality (``{"U": {"image": "lime", "text": "gradient_x_input"}}``,
``{"Rl": {"method": …}}``); planning refuses a name not registered here. Adding a method
is its module plus one :func:`register_attribution` line below (``docs/extending.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..registries import Registry, load_callable

__all__ = ["AttributionMethod", "register_attribution", "unregister_attribution", "attribution_names",
           "get_attribution", "attribute"]


@dataclass(frozen=True)
class AttributionMethod:
    name: str
    function: str | Callable  # "module:function" or the function itself
    options: tuple[str, ...] = ()  # stage parameters passed on as keyword arguments
    perturbs: bool = False  # perturbs atoms (an image is explained over patches, not pixels)

    def load(self) -> Callable:
        return load_callable(self.function)


_METHODS: Registry[AttributionMethod] = Registry("attribution method", "methods")


def register_attribution(method: AttributionMethod, *, replace: bool = False) -> AttributionMethod:
    return _METHODS.add(method.name, method, replace=replace)


def unregister_attribution(name: str) -> None:
    _METHODS.remove(name)


def attribution_names() -> tuple[str, ...]:
    return _METHODS.names()


def get_attribution(name: str) -> AttributionMethod:
    return _METHODS.get(name)


def attribute(name: str, adapter, batch, target, modality: str, params: dict | None = None):
    """``(B, n_atoms)`` attributions of ``modality`` by the method ``name``, with the options
    it takes from ``params`` (a stage's parameters); returns ``(scores, options used)``."""
    method = get_attribution(name)
    options = {k: (params or {})[k] for k in method.options if k in (params or {})}
    return method.load()(adapter, batch, target, modality, **options), options


_HERE = "viz_engine.methods"
register_attribution(AttributionMethod("gradient", f"{_HERE}.gradient:gradient"))
register_attribution(AttributionMethod("gradient_x_input", f"{_HERE}.gradient_x_input:gradient_x_input"))
register_attribution(AttributionMethod("integrated_gradients", f"{_HERE}.integrated_gradients:integrated_gradients",
                                       options=("n_steps",)))
register_attribution(AttributionMethod("lime", f"{_HERE}.lime:lime", options=("n_samples", "seed"), perturbs=True))
register_attribution(AttributionMethod("kernel_shap", f"{_HERE}.kernel_shap:kernel_shap", options=("n_samples", "seed"),
                                       perturbs=True))
