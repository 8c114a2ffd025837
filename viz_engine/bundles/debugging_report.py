"""The model debugging report of a (dataset, model) — paper 3.4 and appendix D.5.

1. Features of a labelled split (default ``val``); a linear model on |features| → error
   names the features most associated with the model's errors
   (:func:`viz_engine.methods.debugging.error_features`).
2. Each error feature with its views: the labelled datapoints that activate it most, with
   the feature's highlights (gradient × input) and whether the model got them right.
3. Targeted selection of an unlabelled pool (default: the first 2,000 ``train`` points,
   whose labels the selection never sees) beside random and uncertainty sampling, for one
   labelling budget. Each selection is scored by what it would bring to a fix: the share
   of its points the model gets wrong, and the classes those errors belong to.

    report = build_debugging_report(out_dir, dataset="shapes_vqa", model="shapes_vqa_late")

writes ``report.json`` and its PNGs into ``out_dir`` (atomically) and returns the report.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..adapters import Feature
from ..methods.debugging import error_features, random_selection, targeted_selection, uncertainty_selection
from ..methods.features import feature_matrix
from ..methods.gradient_x_input import gradient_x_input
from ..render import token_highlights
from .format import BundleError, write_bytes, write_json
from .sources import load_dataset, load_model

__all__ = ["build_debugging_report"]


def _probs(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def build_debugging_report(out_dir, *, dataset: str, model: str, labelled_split: str = "val",
                           unlabelled_split: str = "train", pool_size: int = 2000, budget: int = 100,
                           k_features: int = 5, k_examples: int = 3, seed: int = 0) -> dict:
    out = Path(out_dir)
    source, adapter = load_dataset(dataset), load_model(model)
    if budget < k_features:
        raise BundleError(f"the budget ({budget}) must be at least the number of features ({k_features})")
    names = list(adapter.class_names)
    labelled = source.examples(labelled_split)
    feats, logits = feature_matrix(adapter, source.make_batch(adapter, labelled))
    pred = logits.argmax(axis=1)
    labels = np.array([names.index(source.label(e)) for e in labelled])
    correct = pred == labels
    found = error_features(feats, correct, k=k_features)

    h, w = source.image_size()
    features = []
    for j, weight in zip(found["feature_indices"], found["weights"]):
        j = int(j)
        top = np.argsort(-np.abs(feats[:, j]), kind="stable")[:50]
        examples = [labelled[i] for i in top[:k_examples]]
        batch = source.make_batch(adapter, examples)
        heat = np.abs(gradient_x_input(adapter, batch, Feature(j), source.image_modality))
        words = gradient_x_input(adapter, batch, Feature(j), source.text_modality)
        shown = []
        for r, (i, ex) in enumerate(zip(top[:k_examples], examples)):
            name = f"f{j}-{r}.png"
            write_bytes(out / name, source.thumbnail(ex, heat[r].reshape(h, w)))
            shown.append({"index": int(i), **source.describe(ex), "label": source.label(ex),
                          "prediction": names[int(pred[i])], "correct": bool(correct[i]), "image": name,
                          "text_highlights": token_highlights(list(ex.tokens), words[r])})
        features.append({"feature": j, "weight": float(weight), "examples": shown,
                         "error_rate_top50": float(1 - correct[top].mean())})

    pool = source.examples(unlabelled_split)[:pool_size]
    pool_feats, pool_logits = feature_matrix(adapter, source.make_batch(adapter, pool))
    pool_pred = pool_logits.argmax(axis=1)
    pool_wrong = pool_pred != np.array([names.index(source.label(e)) for e in pool])
    chosen = [int(j) for j in found["feature_indices"]]
    selections = {
        "targeted": targeted_selection(pool_feats, chosen, budget),
        "random": random_selection(len(pool), budget, seed=seed),
        "uncertainty": uncertainty_selection(_probs(pool_logits), budget),
    }
    compared = {}
    for strategy, rows in selections.items():
        wrong = rows[pool_wrong[rows]]
        compared[strategy] = {
            "budget": int(len(rows)),
            "model_errors": int(len(wrong)),
            "error_rate": float(pool_wrong[rows].mean()),
            "error_classes": dict(Counter(source.label(pool[i]) for i in wrong).most_common(5)),
        }
    report = {
        "dataset": dataset, "model": model, "labelled_split": labelled_split, "unlabelled_split": unlabelled_split,
        "pool_size": len(pool), "budget": budget, "error_rate": float(1 - correct.mean()),
        "pool_error_rate": float(pool_wrong.mean()), "features": features, "selection": compared,
    }
    write_json(out / "report.json", report)
    return report
