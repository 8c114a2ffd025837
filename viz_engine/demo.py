"""The engine demo: the MultiViz stages of the built-in shapes-VQA models on a few questions.

    python -m viz_engine.demo var/demo/engine_demo.json

writes one self-contained JSON (images as data: URLs) that the platform's demo page shows:
per question the prediction, U (gradient × input over words, LIME over image patches),
C (second-order gradient of the referring phrase over the image, with its top-2 objects),
P (the sparse linear model's top features for the predicted class), and for the strongest
of those features Rℓ (its own U) and Rg (the test questions that most and least activate it);
for the dataset, EMAP's interaction share for each reference model.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .adapters import Feature, LogitSum, atoms_per_patch
from .data import shapes_vqa as data
from .methods.emap import emap
from .methods.global_representation import top_activating
from .methods.gradient_x_input import gradient_x_input
from .methods.lime import lime
from .methods.second_order_gradient import second_order_gradient
from .methods.sparse_linear import choose_path_point, fit_sparse_linear_path, top_features_per_class
from .models import shapes_vqa as models
from .render import data_url, heatmap_overlay_png, image_png, token_highlights, top_regions

LIME_PATCH = 8


def _thumb(ex: data.Example, scores=None) -> str:
    png = image_png(ex.image, 3) if scores is None else heatmap_overlay_png(ex.image, scores, 3)
    return data_url(png)


def _explain_item(adapter, ex: data.Example, sparse, feats_test, test, class_names) -> dict:
    batch = adapter.make_batch([ex])
    with torch.no_grad():
        probs = torch.softmax(adapter.logits(batch), -1)[0]
    pred = int(probs.argmax())
    top = torch.topk(probs, 3)
    words_u = gradient_x_input(adapter, batch, pred, "question")[0]
    patch_batch = replace(batch, atoms={**batch.atoms, "image": atoms_per_patch(batch.inputs["image"], LIME_PATCH)})
    image_u = lime(adapter, patch_batch, pred, "image", n_samples=500, seed=0)[0]
    side = data.IMAGE_SIZE // LIME_PATCH
    item = {
        "question": ex.question,
        "answer": ex.answer,
        "prediction": class_names[pred],
        "correct": class_names[pred] == ex.answer,
        "top_probabilities": [[class_names[int(i)], round(float(p), 4)] for p, i in zip(top.values, top.indices)],
        "image": _thumb(ex),
        "unimodal": {
            "question": token_highlights(ex.tokens, words_u),
            "image_lime": data_url(heatmap_overlay_png(ex.image, image_u.reshape(side, side), 3, signed=True)),
        },
    }
    if ex.references:
        tokens, obj = ex.references[0]
        sog = second_order_gradient(
            adapter, batch, LogitSum(), "question", "image", list(tokens), aggregate="abs", magnitude=True
        )[0].reshape(data.IMAGE_SIZE, data.IMAGE_SIZE)
        ranked = top_regions(sog, [o.box for o in ex.objects], k=2)
        item["cross"] = {
            "phrase": " ".join(ex.tokens[t] for t in tokens),
            "heatmap": data_url(heatmap_overlay_png(ex.image, sog, 3)),
            "referred_object": obj,
            "top2_objects": ranked,
            "top1_hit": ranked[0] == obj,
        }
    # P knows only the classes the model predicted on its training points
    graph = top_features_per_class(sparse, k=5, class_names=[class_names[int(c)] for c in sparse.classes])
    row = list(graph["classes"]).index(pred) if pred in list(graph["classes"]) else None
    feats = []
    if row is not None:
        for j, w in zip(graph["feature_indices"][row], graph["weights"][row]):
            if j >= 0:
                feats.append({"feature": int(j), "weight": round(float(w), 4)})
    item["prediction_stage"] = {"class": class_names[pred], "features": feats}
    if feats:
        j = feats[0]["feature"]
        local_words = gradient_x_input(adapter, batch, Feature(j), "question")[0]
        local_img = np.abs(gradient_x_input(adapter, batch, Feature(j), "image")[0])
        rg = top_activating(feats_test, j, k=3)
        item["feature_page"] = {
            "feature": j,
            "local": {
                "question": token_highlights(ex.tokens, local_words),
                "image": data_url(heatmap_overlay_png(ex.image, local_img.reshape(data.IMAGE_SIZE, data.IMAGE_SIZE), 3)),
            },
            "max": [{"question": test[i].question, "value": round(float(v), 3), "image": _thumb(test[i])}
                    for i, v in zip(rg["max_indices"], rg["max_values"])],
            "min": [{"question": test[i].question, "value": round(float(v), 3), "image": _thumb(test[i])}
                    for i, v in zip(rg["min_indices"], rg["min_values"])],
        }
    return item


def build_engine_demo(path: str | os.PathLike, n_items: int = 4, log: Callable[[str], None] = print) -> dict:
    """Compute the demo and write it atomically to ``path``; returns the dict written."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    adapter = models.load_pretrained("early")
    class_names = list(adapter.class_names)
    test = data.load_split("test", 600)
    log("features of 600 test questions for P and Rg …")
    with torch.no_grad():
        batch = adapter.make_batch(test)
        logits, feats = adapter.logits_and_representation(batch)
    feats_np = feats.double().numpy()
    preds = logits.argmax(1).numpy()
    log("fitting the sparse linear model (P) …")
    path_fit = fit_sparse_linear_path(feats_np[:400], preds[:400], val_features=feats_np[400:], val_labels=preds[400:],
                                      n_lambdas=12)
    sparse = choose_path_point(path_fit, max_acc_drop=0.02)
    chosen = [ex for ex in test if ex.question_type in ("colour", "shape", "relate", "size")][:n_items]
    items = []
    for k, ex in enumerate(chosen):
        log(f"explaining question {k + 1}/{len(chosen)}: {ex.question}")
        items.append(_explain_item(adapter, ex, sparse, feats_np, test, class_names))
    dataset = {}
    for kind in ("early", "late"):
        ad = models.load_pretrained(kind)
        sample = test[:60]
        res = emap(ad, ad.make_batch(sample), ("image", "question"), labels=data.answer_indices(sample))
        dataset[kind] = {
            "interaction_share": round(res.interaction_share, 4),
            "accuracy_model": res.accuracy_model,
            "accuracy_emap": res.accuracy_projection,
            "test_accuracy": json.loads(models.metrics_path(kind).read_text()).get("test_accuracy"),
        }
    demo = {
        "model": "shapes-VQA early-fusion transformer",
        "sparse_linear": {"n_nonzero": int(sparse.n_nonzero), "val_accuracy": sparse.val_accuracy},
        "items": items,
        "emap": dataset,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(demo, fh)
    os.replace(tmp, out)
    return demo


if __name__ == "__main__":
    build_engine_demo(sys.argv[1] if len(sys.argv) > 1 else "var/demo/engine_demo.json")
