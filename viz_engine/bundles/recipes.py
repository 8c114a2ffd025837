"""Which engine method computes each stage of a bundle: named recipes and overrides.

A bundle's ``plan.json`` holds one parameter dict per stage (``"stages"``); the methods are
part of it, so the plan (and the manifest, which copies it) records what computed every
section. A *recipe* is a named set of those parameters; the command line and
:func:`resolve_params` start from one and apply per-stage overrides::

    precompute --recipe paper-vqa                       # the paper's VQA recipe
    precompute --recipe paper-vqa --method C=second_order_gradient --param U.n_samples=200

Methods per stage (each one an engine module in ``viz_engine/methods``, called as it is):

=====  =========================================================================  ================
stage  methods                                                                    key
=====  =========================================================================  ================
U      lime, gradient, gradient_x_input, integrated_gradients, kernel_shap        ``image``, ``text`` (per modality)
C      second_order_gradient, dime, emap (one, or several joined by ``+``)        ``method``
Rl     lime, gradient, gradient_x_input (toward the feature; also IG, KernelSHAP)  ``method``
Rg     the same as Rl, on the k most and k least activating datapoints           ``method``
=====  =========================================================================  ================

The number of features: ``Rl.features`` (shown per item) and ``P.top_k`` (P's graph); the
paper's 5.

Recipes (the defaults a bundle records; any can be overridden):

* ``default``: what bundles held before recipes (LIME over 8×8 patches and gradient × input
  over the words for U, second-order gradient for C, gradient × input for Rℓ/Rg, 3 features,
  top-5 P).
* ``paper-vqa`` (MultiViz on VQA): LIME on both modalities for U (1000 samples, LIME's own
  default), DIME for C (unimodal and multimodal parts per modality, 1000 LIME samples, a
  reference sample of 50 datapoints) together with the second-order gradient of every word,
  LIME toward the feature for Rℓ, LIME on the 3 most (and 3 least) activating datapoints
  for Rg, 5 features and top-5 P.
* ``paper-fusion`` (MultiViz on the fusion models): first-order gradients for U, Rℓ and Rg;
  second-order gradient for the 10 words with the largest first-order gradient; 5 features
  and top-5 P.
"""

from __future__ import annotations

import copy
import json

from ..methods.attributions import attribution_names, get_attribution
from .format import BundleError
from .registry import get_stage, stage_names
from .registry import stages as registered_stages

__all__ = ["RECIPES", "stage_methods", "CROSS_MODAL", "resolve_params", "parse_method_overrides",
           "parse_param_overrides", "c_methods", "recipe_record", "perturbs"]

CROSS_MODAL = ("second_order_gradient", "dime", "emap")


def stage_methods(stage: str) -> tuple[str, ...]:
    """The methods a stage may use: C's cross-modal ones; U's, Rℓ's and Rg's, every
    attribution method registered (``methods.attributions``: LIME, gradient, gradient ×
    input, IG, KernelSHAP and any added)."""
    return CROSS_MODAL if stage == "C" else attribution_names()


def perturbs(method: str) -> bool:
    """Whether an attribution method perturbs atoms (LIME, KernelSHAP): an image is then
    explained over patches, not pixels, and its signed map is drawn."""
    return get_attribution(method).perturbs
def method_keys(stage: str) -> tuple[str, ...]:
    """The keys of a stage's parameters that name its methods (the stage registry says)."""
    return get_stage(stage).method_params if stage in stage_names() else ()


def stages_with_methods() -> tuple[str, ...]:
    return tuple(s.name for s in registered_stages() if s.method_params)

RECIPES: dict[str, dict] = {
    "default": {},
    "paper-vqa": {
        "U": {"image": "lime", "text": "lime", "n_samples": 1000},
        "C": {"method": "dime+second_order_gradient", "n_samples": 1000, "reference": 50},
        "Rl": {"method": "lime", "features": 5, "n_samples": 1000},
        "Rg": {"method": "lime", "k": 3, "n_samples": 1000},
        "P": {"top_k": 5},
    },
    "paper-fusion": {
        "U": {"image": "gradient", "text": "gradient"},
        "C": {"method": "second_order_gradient", "words": 10},
        "Rl": {"method": "gradient", "features": 5},
        "Rg": {"method": "gradient", "k": 3},
        "P": {"top_k": 5},
    },
}


def c_methods(params: dict) -> list[str]:
    """The C methods of a stage's parameters, in the order they are drawn."""
    return [m for m in str(params.get("method", "second_order_gradient")).split("+") if m]


def _check_method(stage: str, key: str, value) -> None:
    allowed = stage_methods(stage)
    names = c_methods({"method": value}) if stage == "C" else [value]
    bad = [n for n in names if n not in allowed]
    if not isinstance(value, str) or not names or bad or len(set(names)) != len(names):
        raise BundleError(f"{stage}.{key}: {value!r} is not a method of stage {stage}; "
                          f"methods: {', '.join(allowed)}" + (" (several joined by '+')" if stage == "C" else ""))


def parse_method_overrides(items) -> dict[str, dict]:
    """``["U=gradient", "U.text=lime", "C=dime+second_order_gradient"]`` → per-stage parameter
    overrides. ``U=m`` sets both of U's modalities; ``U.image=m`` / ``U.text=m`` one of them."""
    out: dict[str, dict] = {}
    for item in items or ():
        target, sep, value = str(item).partition("=")
        stage, _, key = target.strip().partition(".")
        value = value.strip()
        if not sep or stage not in stages_with_methods() or not value:
            raise BundleError(f"--method {item!r}: write STAGE=METHOD with STAGE one of {', '.join(stages_with_methods())} "
                              "(U.image=… or U.text=… for one modality of U)")
        keys = (key,) if key else method_keys(stage)
        if any(k not in method_keys(stage) for k in keys):
            raise BundleError(f"--method {item!r}: stage {stage} has no method key {key!r}; "
                              f"keys: {', '.join(method_keys(stage))}")
        for k in keys:
            _check_method(stage, k, value)
            out.setdefault(stage, {})[k] = value
    return out


def parse_param_overrides(items) -> dict[str, dict]:
    """``["U.n_samples=200", "P.points=300"]`` → per-stage overrides; values are JSON (a bare
    word is taken as text)."""
    out: dict[str, dict] = {}
    for item in items or ():
        target, sep, raw = str(item).partition("=")
        stage, _, key = target.strip().partition(".")
        if not sep or not stage or not key:
            raise BundleError(f"--param {item!r}: write STAGE.KEY=VALUE, e.g. U.n_samples=200")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw.strip()
        out.setdefault(stage, {})[key] = value
    return out


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for stage, values in over.items():
        out.setdefault(stage, {}).update(values)
    return out


def resolve_params(defaults: dict, stages, recipe: str = "default", overrides: dict | None = None) -> dict:
    """Each stage's parameters: ``defaults`` ← the recipe ← ``overrides`` (per stage), for the
    requested ``stages`` only; every method named is checked against the engine's."""
    if recipe not in RECIPES:
        raise BundleError(f"recipe {recipe!r} is unknown; recipes: {', '.join(RECIPES)}")
    unknown = [s for s in (overrides or {}) if s not in defaults]
    if unknown:
        raise BundleError(f"parameters for unknown stage(s) {', '.join(map(repr, unknown))}; stages: {', '.join(defaults)}")
    merged = _merge(_merge({s: defaults[s] for s in defaults}, RECIPES[recipe]), overrides or {})
    params = {s: merged[s] for s in stages}
    for stage, values in params.items():
        for key in method_keys(stage):
            if key in values:  # a protocol source's U names one method, not one per image and text
                _check_method(stage, key, values[key])
    for stage, key in (("Rl", "features"), ("P", "top_k"), ("Rg", "k")):
        value = params.get(stage, {}).get(key)
        if stage in params and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BundleError(f"{stage}.{key} must be a positive integer; got {value!r}")
    words = params.get("C", {}).get("words")
    if words is not None and (isinstance(words, bool) or not isinstance(words, int) or words < 1):
        raise BundleError(f"C.words (how many words get a second-order gradient) must be a positive integer "
                          f"or null (every word); got {words!r}")
    return params


def recipe_record(recipe: str, overrides: dict | None, params: dict) -> dict:
    """What ``plan.json`` says of the recipe: its name, the overrides given and the method of
    each stage (as computed)."""
    methods = {}
    for stage, values in params.items():
        keys = method_keys(stage)
        if stage == "U":  # per modality (image + question), or one method (a protocol source)
            methods["U"] = ({"image": values["image"], "text": values["text"]} if "image" in values
                            else values.get("method"))
        elif stage == "C":
            methods["C"] = c_methods(values)
        elif keys:
            methods[stage] = values.get("method")
        elif stage == "P":
            methods["P"] = "sparse_linear"
    return {"name": recipe, "overrides": overrides or {}, "methods": methods,
            "features": params.get("Rl", {}).get("features"), "top_k": params.get("P", {}).get("top_k")}
