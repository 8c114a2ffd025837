"""The model debugging report of a (dataset, model) — paper 3.4 and appendix D.5.

1. Features of a labelled split V (default ``val``); a linear model on |features| → error
   names the features most associated with the model's errors
   (:func:`viz_engine.methods.debugging.error_features`).
2. Each error feature with its views: the labelled datapoints that activate it most, with
   the feature's highlights (gradient × input) and whether the model got them right.
3. Three selections of one labelling budget from an unlabelled pool U (default: the
   ``unlabelled`` split, which no model was trained on; the selections never see its
   labels): targeted (the points that most activate the error features), random and
   uncertainty sampling, with how many of the model's errors each picked.
4. What they are for: each selection is labelled and the last layer fine-tuned on it from
   the same starting weights (the paper's recipe: one epoch, batch 32, the learning rate
   tuned — here on V), once per seed; the report gives the change of accuracy on a held-out
   split T (default ``test``) overall and on two slices of it, each with its interval over
   the seeds, and a verdict in words — also when targeted selection does not win:

   - the *error slice*: the held-out points the linear error model of step 1 rates most
     likely wrong (its top ``slice_share`` as placed on V);
   - the *error-feature slice*: the held-out points that activate an error feature as
     strongly as the top ``slice_share / k`` of V do — the points targeted selection aims at.

    report = build_debugging_report(out_dir, dataset="shapes_vqa", model="shapes_vqa_late")

writes ``report.json`` and its PNGs into ``out_dir`` (atomically) and returns the report.
``progress(fraction, stage)`` is called as it goes. Same arguments (and seed), same report.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..adapters import Feature
from ..methods.debugging import (compare_selections, error_features, random_selection, targeted_selection,
                                 uncertainty_selection)
from ..methods.features import feature_matrix
from ..methods.gradient_x_input import gradient_x_input
from ..render import token_highlights
from .format import BundleError, write_bytes, write_json
from .report_figures import SLICES, points
from .sources import load_dataset, load_model

__all__ = ["build_debugging_report", "verdict", "points", "SLICES"]

_CHUNK = 250  # rows per feature pass: one progress step each


def _probs(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _split(source, split: str, size: int | None, what: str) -> list:
    examples = source.examples(split)
    if size is not None:
        examples = examples[:size]
    if not examples:
        raise BundleError(f"the {what} split {split!r} has no examples")
    return examples


def _features(adapter, source, examples, step: Callable[[float], None]):
    """Penultimate features and logits, in chunks so ``step`` can report each one."""
    feats, logits = [], []
    for start in range(0, len(examples), _CHUNK):
        f, lg = feature_matrix(adapter, source.make_batch(adapter, examples[start:start + _CHUNK]))
        feats.append(f)
        logits.append(lg)
        step(min(1.0, (start + _CHUNK) / len(examples)))
    return np.concatenate(feats), np.concatenate(logits)


def _kinds(source, examples, rows) -> dict[str, int]:
    """What the rows are: question types where the source has them, else their labels."""
    def kind(e):
        return source.describe(e).get("question_type") or source.label(e)

    return dict(Counter(kind(examples[i]) for i in rows).most_common(4))


def _slice_summary(source, examples, mask, correct) -> dict:
    rows = np.flatnonzero(mask)
    return {"size": int(len(rows)), "accuracy": float(correct[rows].mean()) if len(rows) else None,
            "kinds": _kinds(source, examples, rows), "error_kinds": _kinds(source, examples, rows[~correct[rows]])}


def build_debugging_report(out_dir, *, dataset: str, model: str, labelled_split: str = "val",
                           unlabelled_split: str = "unlabelled", held_out_split: str = "test",
                           labelled_size: int | None = None, pool_size: int = 2000, held_out_size: int | None = None,
                           budget: int = 100, k_features: int = 5, k_examples: int = 3, runs: int = 10,
                           epochs: int = 1, batch_size: int = 32,
                           learning_rates: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3),
                           slice_share: float = 0.2, seed: int = 0,
                           progress: Callable[[float, str], None] | None = None) -> dict:
    out = Path(out_dir)

    def report_progress(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(min(1.0, max(0.0, fraction)), stage)

    def span(lo: float, hi: float, stage: str) -> Callable[[float], None]:
        return lambda f: report_progress(lo + (hi - lo) * f, stage)

    if budget < k_features:
        raise BundleError(f"the budget ({budget}) must be at least the number of features ({k_features})")
    if runs < 2:
        raise BundleError(f"runs must be at least 2, for an interval over seeds; got {runs}")
    if not 0 < slice_share < 1:
        raise BundleError(f"slice_share must be between 0 and 1; got {slice_share}")
    report_progress(0.0, "loading the model and the data")
    source = load_dataset(dataset)
    if not hasattr(source, "image_modality"):
        raise BundleError(f"the debugging report draws image + question datasets (shapes-VQA) only; "
                          f"{dataset!r} is not one")
    adapter = load_model(model)
    names = list(adapter.class_names)
    labelled = _split(source, labelled_split, labelled_size, "labelled")
    pool = _split(source, unlabelled_split, pool_size, "unlabelled")
    held_out = _split(source, held_out_split, held_out_size, "held-out")
    if budget > len(pool):
        raise BundleError(f"the budget ({budget}) is larger than the unlabelled pool ({len(pool)} points)")

    def labels_of(examples) -> np.ndarray:
        return np.array([names.index(source.label(e)) for e in examples])

    feats, logits = _features(adapter, source, labelled, span(0.02, 0.3, f"features of the {labelled_split} split"))
    labelled_labels = labels_of(labelled)
    correct = logits.argmax(axis=1) == labelled_labels
    if correct.all() or not correct.any():
        raise BundleError(f"the model is {'right' if correct.all() else 'wrong'} on every point of the "
                          f"{labelled_split} split: there are no errors to relate features to")
    report_progress(0.3, "fitting the error model")
    found = error_features(feats, correct, k=k_features)
    valid = found["feature_indices"] >= 0
    chosen = [int(j) for j in found["feature_indices"][valid]]
    if not chosen:
        raise BundleError("no feature has a positive weight in the error model: none is associated with errors")

    h, w = source.image_size()
    pred = logits.argmax(axis=1)
    features = []
    for n, (j, weight) in enumerate(zip(chosen, found["weights"][valid])):
        report_progress(0.3 + 0.15 * n / len(chosen), f"views of error feature z{j}")
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

    pool_feats, pool_logits = _features(adapter, source, pool, span(0.45, 0.62, f"features of the {unlabelled_split} pool"))
    pool_labels = labels_of(pool)
    pool_wrong = pool_logits.argmax(axis=1) != pool_labels
    targeted = targeted_selection(pool_feats, chosen, budget)
    uncertain = uncertainty_selection(_probs(pool_logits), budget)
    selections = {"targeted": lambda s: targeted,
                  "random": lambda s: random_selection(len(pool), budget, seed=s),
                  "uncertainty": lambda s: uncertain}
    seeds = [seed + r for r in range(runs)]
    picked = {"targeted": targeted, "random": random_selection(len(pool), budget, seed=seeds[0]),
              "uncertainty": uncertain}
    compared = {}
    for strategy, rows in picked.items():
        wrong = rows[pool_wrong[rows]]
        compared[strategy] = {"budget": int(len(rows)), "model_errors": int(len(wrong)),
                              "error_rate": float(pool_wrong[rows].mean()),
                              "error_classes": dict(Counter(source.label(pool[i]) for i in wrong).most_common(5))}

    t_feats, t_logits = _features(adapter, source, held_out, span(0.62, 0.8, f"features of the {held_out_split} split"))
    t_labels = labels_of(held_out)
    with torch.no_grad():
        relogits = adapter.final_linear(torch.as_tensor(t_feats, dtype=adapter.final_linear.weight.dtype)).numpy()
    if not np.allclose(relogits, t_logits, rtol=1e-3, atol=1e-3):
        raise BundleError("the model's logits are not its final layer applied to its penultimate features, "
                          "so fine-tuning that layer on them would not fine-tune the model")
    t_correct = t_logits.argmax(axis=1) == t_labels
    # the error model of step 1 (standardised |features| as it was fit), ranking held-out points
    mag = np.abs(feats)
    centre, scale = mag.mean(axis=0), mag.std(axis=0)
    scale = np.where(scale < 1e-12, 1.0, scale)

    def risk(f):
        return ((np.abs(f) - centre) / scale) @ found["all_weights"]

    error_slice = risk(t_feats) >= np.quantile(risk(feats), 1 - slice_share)
    cut = np.quantile(mag[:, chosen], 1 - slice_share / len(chosen), axis=0)
    feature_slice = (np.abs(t_feats[:, chosen]) >= cut).any(axis=1)
    slices = {name: m for name, m in (("error_slice", error_slice), ("feature_slice", feature_slice)) if m.any()}

    comparison = compare_selections(
        adapter.final_linear, pool_feats, pool_labels, selections, t_feats, t_labels, slices, seeds=seeds,
        learning_rates=learning_rates, tuning_features=feats, tuning_labels=labelled_labels, epochs=epochs,
        batch_size=batch_size, progress=span(0.8, 0.99, "fine-tuning the last layer on each selection"))
    report = {
        "dataset": dataset, "model": model, "labelled_split": labelled_split, "unlabelled_split": unlabelled_split,
        "held_out_split": held_out_split, "labelled_size": len(labelled), "pool_size": len(pool),
        "held_out_size": len(held_out), "budget": budget, "seed": seed, "error_rate": float(1 - correct.mean()),
        "pool_error_rate": float(pool_wrong.mean()), "features": features, "selection": compared,
        "slice_share": slice_share,
        "slices": {name: _slice_summary(source, held_out, m, t_correct)
                   for name, m in (("error_slice", error_slice), ("feature_slice", feature_slice))},
        "fine_tuning": {"epochs": epochs, "batch_size": batch_size, "learning_rates": list(learning_rates),
                        **comparison},
    }
    report["verdict"] = verdict(report)
    write_json(out / "report.json", report)
    report_progress(1.0, "done")
    return report


def _change(summary: dict) -> str:
    return f"{points(summary['mean'])} points (95 % CI {points(summary['low'])} to {points(summary['high'])})"


def verdict(report: dict) -> dict:
    """The report's conclusion in words: which selection helped, on which slice, by how
    much — an interval that includes 0 is no effect, and targeted selection losing is said
    as plainly as it winning."""
    ft = report["fine_tuning"]
    runs, first, diffs = ft["runs"], ft["first"], ft["differences"]
    per_slice = {}
    for name in [s for s in SLICES if s in ft["base"]]:
        lines = [f"{SLICES[name].capitalize()} ({ft['sizes'][name]} points, "
                 f"{100 * ft['base'][name]:.1f} % right before): "
                 + "; ".join(f"{s} {_change(r['summary'][name])}" for s, r in runs.items()) + "."]
        for other, d in diffs.items():
            d = d[name]
            if d["low"] > 0:
                lines.append(f"{first.capitalize()} beat {other} by {_change(d)}.")
            elif d["high"] < 0:
                lines.append(f"{first.capitalize()} did worse than {other}: {_change(d)}.")
            else:
                lines.append(f"{first.capitalize()} and {other} cannot be told apart here: {_change(d)}.")
        per_slice[name] = lines

    main = "error_slice" if "error_slice" in ft["base"] else "overall"
    where = SLICES[main]
    helped = {s: r["summary"][main] for s, r in runs.items() if r["summary"][main]["low"] > 0}
    wins = all(d[main]["low"] > 0 for d in diffs.values())
    mine = runs[first]["summary"][main]
    if first in helped and wins:
        headline = (f"{first.capitalize()} selection helped most: it changed accuracy on the {where} by {_change(mine)}, "
                    + " and ".join(f"{points(d[main]['mean'])} points more than {o}" for o, d in diffs.items()) + ".")
    elif first in helped:
        headline = (f"{first.capitalize()} selection helped on the {where} ({_change(mine)}), but not clearly more "
                    f"than {' or '.join(o for o, d in diffs.items() if d[main]['low'] <= 0)}.")
    elif helped:
        top = max(helped, key=lambda s: helped[s]["mean"])
        headline = (f"{first.capitalize()} selection did not win: {top} selection helped more on the {where} "
                    f"({_change(helped[top])}; {first}: {_change(mine)}).")
    else:
        headline = (f"No selection improved the {where} beyond seed-to-seed noise, so {first} selection did not win: "
                    + "; ".join(f"{s} {_change(r['summary'][main])}" for s, r in runs.items()) + ".")
        less_harm = [o for o, d in diffs.items() if d[main]["low"] > 0]
        if less_harm:
            headline += f" {first.capitalize()} only did less harm than {' and '.join(less_harm)}."
    sel = report["selection"]
    expected = report["pool_error_rate"] * report["budget"]
    caught = sel[first]["model_errors"]
    picks = (f"Of its {sel[first]['budget']} points, {first} selection picked {caught} the model gets wrong; a random "
             f"draw of that size holds about {expected:.0f} ({sel['random']['model_errors']} in the one shown).")
    if caught < expected:
        picks += (" The points that most activate the error features are mostly points the model already gets "
                  "right, so labelling them teaches it little about its errors.")
    return {"headline": headline, "slices": per_slice, "selection": picks, "targeted_wins": bool(first in helped and wins)}
