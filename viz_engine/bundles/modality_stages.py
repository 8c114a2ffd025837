"""The sections of an item of a :class:`~viz_engine.bundles.dataset_source.DatasetSource`,
written as ``views`` over the item's modalities (the modality contract of docs/bundles.md).

Every attribution is per atom and for the class the model predicts (never named): a view
holds ``scores`` shaped like the modality's atoms (:func:`~.dataset_source.atom_scores`),
and the platform's viewer for the kind draws them. No asset is rendered here.

* U  — ``gradient``: ∂ logit / ∂ x summed over each atom, one view per modality.
* C  — ``second_order_gradient``: for the ``C.queries`` atoms of the query modality with the
  largest |U|, ∂/∂x₂ of the query atom's first-order gradient, summed over each atom of
  every other modality: one view per (query atom, other modality).
* Rℓ — the ``Rl.method`` attribution (``gradient`` or ``gradient_x_input``) of each shown
  feature of the representation layer, one view per modality.
* Rg — ``shared/Rg/f<j>.json``: the ``k`` most and least activating datapoints of the
  reference split, each with its ``modalities`` and the feature's views over them.
* P  — as for every bundle (``stages._prediction``).
"""

from __future__ import annotations

import numpy as np

from ..adapters import Feature
from ..methods.global_representation import top_activating
from ..methods.gradient import gradient
from ..methods.gradient_x_input import gradient_x_input
from ..methods.second_order_gradient import second_order_gradient_per_atom
from .dataset_source import atom_scores, query_modality
from .format import BundleError, read_json, write_json

__all__ = ["GENERIC_PARAMS", "item_record", "unimodal", "cross_modal", "local", "global_", "METHODS"]

# U and C of a protocol source (the shapes-VQA defaults name image methods it has no use for)
GENERIC_PARAMS = {
    "U": {"method": "gradient"},
    "C": {"method": "second_order_gradient", "queries": 3},
}
METHODS = {"gradient": gradient, "gradient_x_input": gradient_x_input}


def _method(name: str):
    if name not in METHODS:
        raise BundleError(f"method {name!r} is not one of {', '.join(METHODS)}")
    return METHODS[name]


def views_of(adapter, source, batch, target, method: str, caption: str | None = None) -> list[list[dict]]:
    """Per row of ``batch``, one view per modality of ``method``'s per-atom attribution."""
    fn = _method(method)
    per_mod = {spec.name: fn(adapter, batch, target, spec.name) for spec in source.modalities}
    rows = []
    for r in range(batch.size):
        rows.append([{"modality": spec.name, "title": f"{spec.atoms}", "method": method,
                      "scores": atom_scores(spec, per_mod[spec.name][r]),
                      **({"caption": caption} if caption else {})}
                     for spec in source.modalities])
    return rows


def item_record(ctx, entry, ex, r) -> dict:
    """``item.json`` of a protocol source: the datapoint as ``modalities``."""
    probs = ctx.probs[entry["index"]]
    order = np.argsort(-probs, kind="stable")
    pred = ctx.class_names[int(order[0])]
    label = ctx.source.label(ex)
    return {
        "id": entry["id"],
        "split": ctx.plan["selection"]["split"],
        "index": entry["index"],
        "modalities": list(ctx.source.datapoint(ex)),
        "label": label,
        "prediction": pred,
        "correct": pred == label,
        "probabilities": [[ctx.class_names[int(c)], r(probs[c], 4)] for c in order[:6]],
        "feature": entry.get("feature"),
    }


def unimodal(ctx, batch, pred) -> dict:
    method = ctx.params["U"].get("method", "gradient")
    return {"target": "predicted class", "method": method,
            "views": views_of(ctx.adapter, ctx.source, batch, pred, method,
                              caption="How much each part moves the model's answer")[0]}


def cross_modal(ctx, batch, pred) -> dict:
    """C: the second-order gradient from the query atoms with the largest |first-order
    gradient| over every atom of each other modality."""
    src = ctx.source
    q = query_modality(src, batch)
    if q is None:
        raise BundleError("stage C needs two modalities; the dataset has one")
    n_queries = int(ctx.params["C"].get("queries", 3))
    first = gradient(ctx.adapter, batch, pred, q)[0]
    n_q = int(batch.n_atoms(q)[0])
    order = np.argsort(-np.abs(np.nan_to_num(first[:n_q])), kind="stable")[:n_queries]
    labels = batch.atom_labels.get(q, [[]])[0] if batch.atom_labels else []
    views = []
    for spec in src.modalities:
        if spec.name == q:
            continue
        per_atom = second_order_gradient_per_atom(ctx.adapter, batch, pred, q, spec.name)[0]
        for a in order:
            name = labels[a] if a < len(labels) else f"{q} {a}"
            views.append({"modality": spec.name, "title": f"With “{name}”", "method": "second_order_gradient",
                          "scores": atom_scores(spec, per_atom[a]), "query": [int(a)], "query_modality": q,
                          "caption": f"How “{name}” changes the effect of each {spec.atoms}"})
    return {"target": "predicted class", "method": "second_order_gradient", "query_modality": q,
            "queries": [int(a) for a in order], "views": views}


def local(ctx, entry, batch, feature_ids, r) -> dict:
    method = ctx.params["Rl"].get("method", "gradient_x_input")
    out = []
    for j in feature_ids:
        out.append({"feature": j, "activation": r(ctx.features[entry["index"], j]),
                    "views": views_of(ctx.adapter, ctx.source, batch, Feature(j), method)[0]})
    return {"method": method, "features": out}


def feature_datapoints(ctx, j: int, r) -> dict:
    """``shared/Rg/f<j>.json``: the k most and least activating reference datapoints of
    feature j, each with its modalities and the feature's views over them."""
    path = ctx.root / "shared" / "Rg" / f"f{j}.json"
    if path.exists():
        return read_json(path)
    src = ctx.source
    k = ctx.params["Rg"].get("k", 3)
    method = ctx.params.get("Rl", {}).get("method", "gradient_x_input")
    top = top_activating(ctx.features, j, k=k)
    result = {"feature": j}
    for side in ("max", "min"):
        idx = [int(i) for i in top[f"{side}_indices"]]
        exs = [ctx.examples[i] for i in idx]
        views = views_of(ctx.adapter, src, src.make_batch(ctx.adapter, exs), Feature(j), method)
        result[side] = [{"index": i, "value": r(ctx.features[i, j]), "modalities": list(src.datapoint(ex)),
                         "views": v} for i, ex, v in zip(idx, exs, views)]
    write_json(path, result)
    return result


def global_(ctx, feature_ids, r) -> dict:
    return {"method": "top_activating", "k": ctx.params["Rg"].get("k", 3),
            "features": [feature_datapoints(ctx, j, r) for j in feature_ids]}
