"""One bundle item's sections: U, C, Rℓ, Rg and P, numbers plus rendered assets.

:class:`BundleContext` holds what every item of a bundle shares and is built once per
process (a Celery worker keeps it): the model, the reference split's features and
predictions, and the sparse linear model P (fitted once, at planning, and read back from
``shared/P.json`` so every worker explains with the same P). :func:`compute_item` writes
the missing sections of one item; it never rewrites a section that exists.

Every asset a section names is a path relative to the bundle root.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..adapters import atoms_per_patch
from ..methods.global_representation import top_activating
from ..methods.attributions import get_attribution
from ..methods.second_order_gradient import second_order_gradient, second_order_gradient_per_atom
from ..render import heatmap_overlay_png, token_highlights, top_regions
from . import modality_stages as generic
from .dataset_source import is_protocol_source
from .format import BundleError, item_dir, read_json, section_path, write_bytes, write_json
from .recipes import c_methods, perturbs
from .registry import section_writer

__all__ = ["BundleContext", "compute_item", "sparse_model_summary", "live_second_order_gradient", "item_feature_ids"]


def _r(x, digits: int = 5):
    """Round floats for JSON (NaN → None)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_r(v, digits) for v in x]
    x = float(x)
    return None if not np.isfinite(x) else float(f"{x:.{digits}g}")


@dataclass
class BundleContext:
    root: Path
    plan: dict
    source: object
    adapter: object
    examples: list            # the reference split, indexable by an item's index
    features: np.ndarray      # (N, d) representation of every reference datapoint
    probs: np.ndarray         # (N, C) predicted probabilities
    sparse: dict              # shared/P.json

    @property
    def params(self) -> dict:
        return self.plan["stages"]

    @property
    def class_names(self) -> list[str]:
        return self.plan["class_names"]


def sparse_model_summary(model, curve: dict, class_names: list[str], top_k: int) -> dict:
    """``shared/P.json``: the chosen point of the λ path, its nonzero weights, the top-k
    features per class and the accuracy–sparsity curve."""
    from ..methods.sparse_linear import top_features_per_class

    graph = top_features_per_class(model, k=top_k, class_names=[class_names[int(c)] for c in model.classes])
    nz = np.argwhere(model.weights != 0)
    return {
        "lambda": _r(model.lam),
        "alpha": model.alpha,
        "n_nonzero": int(model.n_nonzero),
        "val_accuracy": _r(model.val_accuracy) if model.val_accuracy is not None else None,
        "train_accuracy": _r(model.train_accuracy),
        "classes": [class_names[int(c)] for c in model.classes],
        "mean": _r(model.mean),
        "std": _r(model.std),
        "bias": _r(model.bias),
        "weights": [[int(k), int(j), _r(model.weights[k, j])] for k, j in nz],
        "top_features": {
            name: [[int(j), _r(w)] for j, w in zip(idx, ws) if j >= 0]
            for name, idx, ws in zip(graph["class_names"], graph["feature_indices"], graph["weights"])
        },
        "curve": {k: _r(v) for k, v in curve.items()},
    }


def class_top_features(ctx: BundleContext, class_name: str, k: int) -> list[tuple[int, float]]:
    """The ``k`` features with the highest weights for ``class_name`` in P, largest first: its
    positive weights, then (where it has fewer than ``k``) its next weights, zero ones by
    feature index. Always ``k`` (as many as there are features), so how many features an item
    shows never tells which class was predicted."""
    top = [(int(j), float(w)) for j, w in ctx.sparse["top_features"].get(class_name, [])][:k]
    if len(top) < k:
        klass = ctx.sparse["classes"].index(class_name) if class_name in ctx.sparse["classes"] else -1
        weights = np.zeros(ctx.features.shape[1])
        for c, j, w in ctx.sparse["weights"]:
            if c == klass:
                weights[j] = w
        taken = {j for j, _ in top}
        rest = [j for j in np.lexsort((np.arange(weights.size), -weights)) if int(j) not in taken]
        top += [(int(j), _r(weights[j])) for j in rest[:k - len(top)]]
    return top


def item_feature_ids(ctx: BundleContext, entry: dict) -> list[int]:
    """The features an item's Rℓ/Rg pages show: the concept item's own feature, else the top
    features of P for the predicted class."""
    if entry.get("feature") is not None:
        return [int(entry["feature"])]
    pred = ctx.class_names[int(ctx.probs[entry["index"]].argmax())]
    k = ctx.params.get("Rl", {}).get("features", 3)
    return [j for j, _ in class_top_features(ctx, pred, k)]


# -- what computes a section: the engine's methods, called as they are ------------------------
def _unimodal_fn(method: str):
    """The attribution method registered under ``method`` (``methods.attributions``)."""
    return get_attribution(method).load()


def _method_kwargs(method: str, p: dict) -> dict:
    """What a stage's parameters pass to its method: the options its registration names
    (LIME's and KernelSHAP's sample count and seed: 500 and 0 unless the stage says)."""
    defaults = {"n_samples": 500, "seed": 0}
    options = get_attribution(method).options
    return {k: p.get(k, defaults.get(k)) for k in options if k in p or k in defaults}


def _for_method(ctx, batch, modality: str, method: str):
    """The batch as ``method`` explains ``modality``: an image over patches for the
    perturbation methods (LIME, KernelSHAP), over pixels for the gradient methods."""
    src = ctx.source
    if modality != src.image_modality or not perturbs(method):
        return batch
    patch = ctx.params.get("U", {}).get("patch", 8)
    return replace(batch, atoms={**batch.atoms, modality: atoms_per_patch(batch.inputs[modality], patch)})


def _grid(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    side = int(round(np.sqrt(s.size)))
    if side * side != s.size:
        raise BundleError(f"an image attribution of {s.size} atoms is not a square grid")
    return s.reshape(side, side)


def _image_view(ctx, title: str, method: str, grid: np.ndarray, asset: str, *, signed: bool, **extra) -> dict:
    return {"modality": ctx.source.image_modality, "title": title, "method": method,
            "scores": {"grid": _r(grid, 4)}, "asset": asset, "signed": signed, **extra}


def _text_view(ctx, title: str, method: str, scores, n_tokens: int, **extra) -> dict:
    return {"modality": ctx.source.text_modality, "title": title, "method": method,
            "scores": _r(np.asarray(scores, dtype=np.float64)[:n_tokens], 4), "signed": True, **extra}


def _modalities(ctx, ex, image_asset: str, scale: int) -> list[dict]:
    """``item.json``'s (and an Rg datapoint's) modalities in display order: the image with
    its objects' boxes (unlabelled: a label could say the answer) and the words."""
    src = ctx.source
    h, w = src.image_size()
    image = {"name": src.image_modality, "kind": "image", "asset": image_asset, "width": w * scale, "height": h * scale}
    if hasattr(src, "boxes"):
        image["boxes"] = [{"box": [int(v) * scale for v in b], "label": None} for b in src.boxes(ex)]
    return [image, {"name": src.text_modality, "kind": "text", "tokens": list(ex.tokens)}]


def _box_scores(heat: np.ndarray, boxes) -> list:
    """Mean |score| per pixel inside each box (what :func:`top_regions` ranks by)."""
    s = np.abs(np.nan_to_num(heat))
    return [_r(s[y0:y1, x0:x1].mean() if s[y0:y1, x0:x1].size else 0.0, 4) for x0, y0, x1, y1 in boxes]


# -- sections ---------------------------------------------------------------------------------
def _item_record(ctx, entry, ex) -> dict:
    probs = ctx.probs[entry["index"]]
    order = np.argsort(-probs, kind="stable")
    pred = ctx.class_names[int(order[0])]
    label = ctx.source.label(ex)
    base = f"items/{entry['id']}"
    write_bytes(ctx.root / base / "assets" / "image.png", ctx.source.render(ex))
    return {
        "id": entry["id"],
        "split": ctx.plan["selection"]["split"],
        "index": entry["index"],
        "datapoint": {**ctx.source.describe(ex), "image": f"{base}/assets/image.png"},
        "modalities": _modalities(ctx, ex, f"{base}/assets/image.png", ctx.source.image_scale),
        "label": label,
        "prediction": pred,
        "correct": pred == label,
        "probabilities": [[ctx.class_names[int(c)], _r(probs[c], 4)] for c in order[:6]],
        "feature": entry.get("feature"),
    }


def _unimodal(ctx, entry, ex, batch, pred) -> dict:
    """U: the recipe's method per modality (``U.image``, ``U.text``) toward the predicted class."""
    p = ctx.params["U"]
    src = ctx.source
    m_img, m_txt = p.get("image", "lime"), p.get("text", "gradient_x_input")
    img = _unimodal_fn(m_img)(ctx.adapter, _for_method(ctx, batch, src.image_modality, m_img), pred,
                              src.image_modality, **_method_kwargs(m_img, p))[0]
    words = _unimodal_fn(m_txt)(ctx.adapter, _for_method(ctx, batch, src.text_modality, m_txt), pred,
                                src.text_modality, **_method_kwargs(m_txt, p))[0]
    grid = _grid(img)
    signed = perturbs(m_img)  # a pixel gradient's sign is noise: its magnitude is drawn
    name = f"items/{entry['id']}/assets/U-image.png"
    write_bytes(ctx.root / name, heatmap_overlay_png(ex.image, grid if signed else np.abs(grid), src.image_scale,
                                                     signed=signed))
    image = {"method": m_img, "grid": list(grid.shape), "scores": _r(img), "overlay": name}
    if perturbs(m_img):
        image["n_samples"] = p.get("n_samples", 500)
    return {
        "target": "predicted class",
        "image": image,
        "text": {"method": m_txt, **_method_kwargs(m_txt, p), "highlights": token_highlights(list(ex.tokens), words)},
        "views": [_image_view(ctx, "U · parts of the image that matter", m_img, grid, name, signed=signed),
                  _text_view(ctx, "U · words that matter", m_txt, words, len(ex.tokens))],
    }


def _reference_sample(ctx, exclude: int) -> list:
    """DIME's and EMAP's reference datapoints: ``C.reference`` of the bundle's split, drawn
    once per bundle (seeded), without the item itself."""
    n = ctx.params["C"].get("reference", 50)
    rng = np.random.default_rng(ctx.plan["selection"]["seed"])
    picks = rng.choice(len(ctx.examples), size=min(n + 1, len(ctx.examples)), replace=False)
    return [ctx.examples[int(i)] for i in [i for i in picks if int(i) != exclude][:n]]


def _dime_views(ctx, entry, ex, batch, pred) -> tuple[dict, list]:
    """DIME (the engine's ``dime``): the unimodal (UC) and multimodal (MI) parts of the
    predicted class's score, each explained with LIME over one modality, for both."""
    from ..methods.dime import dime

    p, src = ctx.params["C"], ctx.source
    reference = src.make_batch(ctx.adapter, _reference_sample(ctx, entry["index"]))
    out, views = {}, []
    for modality in (src.image_modality, src.text_modality):
        exp = dime(ctx.adapter, _for_method(ctx, batch, modality, "lime"), reference, pred, modality,
                   n_samples=p.get("n_samples", 500), seed=p.get("seed", 0), cache_dir=ctx.root / "cache")
        out[modality] = {"uc": _r(exp.uc), "mi": _r(exp.mi), "uc_value": _r(exp.uc_value), "mi_value": _r(exp.mi_value)}
        for part, scores, title in (("uc", exp.uc, "unimodal part"), ("mi", exp.mi, "multimodal part")):
            caption = ("what this modality does on its own" if part == "uc"
                       else "what it does only together with the other modality")
            if modality == src.image_modality:
                name = f"items/{entry['id']}/assets/C-dime-{part}.png"
                write_bytes(ctx.root / name, heatmap_overlay_png(ex.image, _grid(scores), src.image_scale, signed=True))
                views.append(_image_view(ctx, f"C · DIME, {title}", "dime", _grid(scores), name, signed=True,
                                         caption=caption, part=part))
            else:
                views.append(_text_view(ctx, f"C · DIME, {title}", "dime", scores, len(ex.tokens),
                                        caption=caption, part=part))
    return {"reference": reference.size, "n_samples": p.get("n_samples", 500), "parts": out}, views


def _emap_view(ctx, entry, ex, pred) -> tuple[dict, list]:
    """EMAP (the engine's ``emap``) over the reference sample plus this datapoint: its score
    for the predicted class split into the additive projection and the interaction."""
    from ..methods.emap import emap
    from ..render import bars_png

    sample = [*_reference_sample(ctx, entry["index"]), ex]
    result = emap(ctx.adapter, ctx.source.make_batch(ctx.adapter, sample))
    f, add, gap = (float(a[-1, pred]) for a in (result.logits, result.projection, result.interaction))
    name = f"items/{entry['id']}/assets/C-emap.png"
    write_bytes(ctx.root / name, bars_png([add, gap]))
    view = {"modality": None, "title": "C · EMAP", "method": "emap", "asset": name,
            "caption": "this example's score for the model's answer: the best additive part (upper bar) and "
                       "the cross-modal interaction (lower bar); green above zero, magenta below"}
    return {"value": _r(f), "additive": _r(add), "interaction": _r(gap), "reference": len(sample) - 1,
            "interaction_share": _r(result.interaction_share)}, [view]


def _sog_views(ctx, entry, ex, batch, pred) -> tuple[dict, list]:
    """Second-order gradients (the engine's): of every word (or of the ``C.words`` words with
    the largest first-order gradient) over the image; per word a heatmap with its top boxes,
    plus the section's ``words`` and the referring ``phrase`` as bundles had them."""
    from ..methods.gradient import gradient
    from ..render import outline_boxes_png

    p, src = ctx.params["C"], ctx.source
    h, w = src.image_size()
    boxes = src.boxes(ex)
    k = p.get("top_boxes", 2)
    per_word = second_order_gradient_per_atom(ctx.adapter, batch, pred, src.text_modality, src.image_modality,
                                              magnitude=True)[0]
    words = []
    for pos, token in enumerate(ex.tokens):
        heat = per_word[pos].reshape(h, w)
        words.append({"position": pos, "token": token, "magnitude": _r(np.nansum(heat)),
                      "top_boxes": top_regions(heat, boxes, k=k)})
    positions = list(range(len(ex.tokens)))
    ranked_by = None
    if p.get("words"):
        first = np.abs(np.nan_to_num(gradient(ctx.adapter, batch, pred, src.text_modality)[0][:len(ex.tokens)]))
        positions = sorted(int(i) for i in np.argsort(-first, kind="stable")[: p["words"]])
        ranked_by = "first-order gradient"
    views = []
    for pos in positions:
        heat = per_word[pos].reshape(h, w)
        top = top_regions(heat, boxes, k=k)
        name = f"items/{entry['id']}/assets/C-word{pos}.png"
        png = heatmap_overlay_png(ex.image, heat, src.image_scale)
        write_bytes(ctx.root / name, outline_boxes_png(png, [boxes[i] for i in top], src.image_scale) if top else png)
        views.append({"modality": src.image_modality, "title": f"C · where “{ex.tokens[pos]}” interacts with the image",
                      "method": "second_order_gradient",
                      "scores": {"boxes": _box_scores(heat, boxes)} if boxes else {"grid": _r(heat, 4)},
                      "asset": name, "query": [pos], "query_modality": src.text_modality, "signed": False,
                      # no digit in a caption: a count answer ("2") must not appear outside the choices
                      "caption": "the objects it interacts with most are outlined" if boxes else ""})
    phrase = list(ex.references[0][0]) if getattr(ex, "references", None) else list(range(len(ex.tokens)))
    heat = second_order_gradient(ctx.adapter, batch, pred, src.text_modality, src.image_modality, phrase,
                                 aggregate="abs", magnitude=True)[0].reshape(h, w)
    name = f"items/{entry['id']}/assets/C-phrase.png"
    write_bytes(ctx.root / name, heatmap_overlay_png(ex.image, heat, src.image_scale))
    legacy = {"boxes": [list(b) for b in boxes], "words": words,
              "phrase": {"positions": phrase, "text": " ".join(ex.tokens[i] for i in phrase),
                         "heatmap": name, "top_boxes": top_regions(heat, boxes, k=k)},
              "sog_positions": positions, "sog_ranked_by": ranked_by}
    return legacy, views


def _cross(ctx, entry, ex, batch, pred) -> dict:
    """C: the recipe's methods (``C.method``, several joined by ``+``), each drawn as views."""
    methods = c_methods(ctx.params["C"])
    out = {"target": "predicted class", "method": "+".join(methods), "methods": methods}
    views = []
    for method in methods:
        if method == "dime":
            out["dime"], more = _dime_views(ctx, entry, ex, batch, pred)
        elif method == "emap":
            out["emap"], more = _emap_view(ctx, entry, ex, pred)
        else:
            legacy, more = _sog_views(ctx, entry, ex, batch, pred)
            out.update(legacy)
        views += more
    out["views"] = views
    return out


def _prediction(ctx, entry) -> dict:
    """P as the paper shows it: the top features of the predicted class (which is not named)
    with their weights, largest first, and this datapoint's standardised values and
    contributions (weight × value). No other class's features: a list per class would tie
    each answer to ids that the feature pages share."""
    i = entry["index"]
    pred = ctx.class_names[int(ctx.probs[i].argmax())]
    mean, std = np.asarray(ctx.sparse["mean"], dtype=float), np.asarray(ctx.sparse["std"], dtype=float)
    z = (ctx.features[i] - mean) / np.where(std > 0, std, 1.0)
    k = ctx.params["P"].get("top_k", 5)
    feats = [{"feature": j, "weight": w, "value": _r(z[j]), "contribution": _r(w * z[j])}
             for j, w in class_top_features(ctx, pred, k)]
    return {"method": "sparse_linear", "lambda": ctx.sparse["lambda"], "n_nonzero": ctx.sparse["n_nonzero"],
            "features": feats}


def _toward_feature(ctx, batch, j: int, method: str, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rℓ's U toward feature j (the engine's ``local_representation``): ``(B, image atoms)``
    and ``(B, words)``."""
    from ..methods.local_representation import local_representation

    src = ctx.source
    return tuple(local_representation(ctx.adapter, _for_method(ctx, batch, m, method), j,
                                      method=_unimodal_fn(method),
                                      modalities=(m,), **_method_kwargs(method, p)).unimodal[m]
                 for m in (src.image_modality, src.text_modality))


def _local(ctx, entry, ex, batch) -> dict:
    p, src = ctx.params["Rl"], ctx.source
    method = p.get("method", "gradient_x_input")
    signed = perturbs(method)
    out = []
    method = ctx.params["Rl"].get("method", "gradient_x_input")
    for j in item_feature_ids(ctx, entry):
        img, words = (a[0] for a in _toward_feature(ctx, batch, j, method, p))
        grid = _grid(img)
        name = f"items/{entry['id']}/assets/Rl-f{j}.png"
        write_bytes(ctx.root / name, heatmap_overlay_png(ex.image, grid if signed else np.abs(grid), src.image_scale,
                                                         signed=signed))
        out.append({"feature": j, "activation": _r(ctx.features[entry["index"], j]),
                    "text": token_highlights(list(ex.tokens), words), "image": name,
                    "views": [_image_view(ctx, "Rℓ · what drives the feature in the image", method, grid, name,
                                          signed=signed),
                              _text_view(ctx, "Rℓ · words that drive the feature", method, words, len(ex.tokens))]})
    return {"method": method, "features": out}


def _feature_datapoints(ctx, j: int) -> dict:
    """``shared/Rg/f<j>.json``: the k most and least activating reference datapoints of
    feature j, each as a plain thumbnail and with the feature's highlights (``Rg.method``)."""
    path = ctx.root / "shared" / "Rg" / f"f{j}.json"
    if path.exists():
        return read_json(path)
    src = ctx.source
    p = ctx.params["Rg"]
    method = p.get("method", "gradient_x_input")
    signed = perturbs(method)
    k = p.get("k", 3)
    top = top_activating(ctx.features, j, k=k)
    result = {"feature": j, "method": method}
    for side in ("max", "min"):
        idx = [int(i) for i in top[f"{side}_indices"]]
        exs = [ctx.examples[i] for i in idx]
        batch = src.make_batch(ctx.adapter, exs)
        heat, words = _toward_feature(ctx, batch, j, method, p)
        rows = []
        for r, (i, ex) in enumerate(zip(idx, exs)):
            plain = f"shared/Rg/f{j}-{side}{r}.png"
            lit = f"shared/Rg/f{j}-{side}{r}-highlights.png"
            grid = _grid(heat[r])
            write_bytes(ctx.root / plain, src.thumbnail(ex))
            write_bytes(ctx.root / lit, heatmap_overlay_png(ex.image, grid if signed else np.abs(grid), 2, signed=signed))
            rows.append({"index": i, "value": _r(ctx.features[i, j]), **src.describe(ex),
                         "image": plain, "image_highlights": lit,
                         "text_highlights": token_highlights(list(ex.tokens), words[r]),
                         "modalities": _modalities(ctx, ex, plain, 2),
                         "views": [_image_view(ctx, "Rg · what drives the feature here", method, grid, lit,
                                               signed=signed),
                                   _text_view(ctx, "Rg · words that drive the feature", method, words[r],
                                              len(ex.tokens))]})
        result[side] = rows
    write_json(path, result)
    return result


def _global(ctx, entry) -> dict:
    return {"method": ctx.params["Rg"].get("method", "gradient_x_input"), "k": ctx.params["Rg"].get("k", 3),
            "features": [_feature_datapoints(ctx, j) for j in item_feature_ids(ctx, entry)]}


def _transformer(ctx, entry, ex, batch) -> dict:
    """T: attention statistics per layer × head; where each word attends in the image and each
    patch among the words (per layer and head, and averaged over heads); the tokens on each
    layer's shared 2-D map (``shared/T.json``) with their nearest tokens of the other modality."""
    from ..methods.attention_heatmap import attention_heatmap
    from ..methods.attention_statistics import IMAGE, TEXT, attention_statistics
    from ..methods.hidden_state_projection import LayerProjections, nearest_other_modality

    adapter = ctx.adapter
    attn = adapter.attentions(batch)
    seg, valid = adapter.token_segments(batch)
    seg0, valid0 = seg[0].numpy(), valid[0].numpy()
    image_tokens = [int(i) for i in np.flatnonzero(seg0 == IMAGE)]
    side = int(round(np.sqrt(len(image_tokens))))
    grid = (side, side) if side * side == len(image_tokens) else None
    stats = attention_statistics(attn, seg, valid, image_grid=grid)
    words = list(ex.tokens)
    word_tokens = [int(i) for i in np.flatnonzero((seg0 == TEXT) & valid0)]
    labels = []
    k_img = k_word = 0
    for i, sg in enumerate(seg0):
        if sg == IMAGE:
            labels.append(f"patch {k_img}")
            k_img += 1
        elif sg == TEXT:
            labels.append(words[k_word] if k_word < len(words) else "[PAD]")
            k_word += 1
        else:
            labels.append("[CLS]")
    heat, back = {}, {}
    for i, w in zip(word_tokens, words):  # a word over the image
        h = attention_heatmap(attn, query=i, keys=image_tokens)
        heat[f"{i}"] = {"token": w, "mean": _r(h["mean"][-1]), "share": _r(h["share"][-1].mean()),
                        "per_head": _r(h["per_head"], 4), "mean_per_layer": _r(h["mean"], 4)}
    for k, i in enumerate(image_tokens):  # a patch over the words
        h = attention_heatmap(attn, query=i, keys=word_tokens)
        back[f"{i}"] = {"patch": k, "mean": _r(h["mean"][-1]), "share": _r(h["share"][-1].mean()),
                        "per_head": _r(h["per_head"], 4)}
    shared = read_json(ctx.root / "shared" / "T.json")
    proj = LayerProjections([np.asarray(m) for m in shared["means"]], [np.asarray(c) for c in shared["components"]],
                            [np.asarray(e) for e in shared["explained"]])
    states = adapter.hidden_states(batch)
    keep = np.flatnonzero(valid0)
    maps = [{"layer": layer, "points": [_r(p, 4) for p in proj.transform(layer, states[layer][0][keep])]}
            for layer in range(proj.n_layers)]
    nearest = nearest_other_modality(states[-1][0][keep], seg0[keep], k=ctx.params["T"].get("nearest", 3))
    names = ("text_to_image", "image_to_text", "image_to_image", "text_to_text", "cross_modal", "intra_modal")
    return {
        "layers": len(attn), "heads": int(attn[0].shape[1]), "image_grid": list(grid) if grid else None,
        "statistics": {n: _r(stats[n]) for n in names + tuple(f"{n}_z" for n in names)},
        "tokens": [labels[i] for i in keep], "segments": [int(seg0[i]) for i in keep],
        "image_tokens": image_tokens, "word_tokens": word_tokens, "word_to_image": heat, "image_to_words": back,
        "maps": maps,
        "nearest_other_modality": [[labels[keep[j]] for j in row if j >= 0] for row in nearest],
    }


def compute_item(ctx: BundleContext, entry: dict, stages=None, timings: dict | None = None) -> list[str]:
    """Write the missing sections of one item (and its ``item.json``); returns the stages written.

    ``timings``, if given, accumulates the seconds spent per stage (and ``"item"`` for the record).
    """
    stages = list(stages or ctx.plan["stages"])
    folder = item_dir(ctx.root, entry["id"])
    todo = [s for s in stages if not section_path(ctx.root, entry["id"], s).exists()]
    need_record = not (folder / "item.json").exists()
    if not todo and not need_record:
        return []
    ex = ctx.examples[entry["index"]]
    batch = ctx.source.make_batch(ctx.adapter, [ex])
    pred = int(ctx.probs[entry["index"]].argmax())
    torch.manual_seed(0)
    if is_protocol_source(ctx.source):  # a modality-generic source: its datapoint as modalities
        record = lambda: generic.item_record(ctx, entry, ex, _r)  # noqa: E731
    else:
        record = lambda: _item_record(ctx, entry, ex)  # noqa: E731
    timings = {} if timings is None else timings
    for stage in todo:
        t0 = time.perf_counter()
        section = section_writer(stage)(ctx, entry, ex, batch, pred)
        write_json(section_path(ctx.root, entry["id"], stage), section)
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0
    if need_record:  # last: an item is listed as started only once its sections exist
        t0 = time.perf_counter()
        write_json(folder / "item.json", record())
        timings["item"] = timings.get("item", 0.0) + time.perf_counter() - t0
    return todo


# The section writers of the built-in stages, as the stage registry (.registry) names them:
# each is called as writer(ctx, entry, example, batch, predicted class index). A
# modality-generic source (.dataset_source) has its sections written as views over its atoms
# (.modality_stages); the image + question ones below are shapes-VQA's.
def _generic(ctx) -> bool:
    return is_protocol_source(ctx.source)


def write_unimodal(ctx, entry, ex, batch, pred) -> dict:
    if _generic(ctx):
        return generic.unimodal(ctx, batch, pred)
    return _unimodal(ctx, entry, ex, batch, pred)


def write_cross(ctx, entry, ex, batch, pred) -> dict:
    if _generic(ctx):
        return generic.cross_modal(ctx, batch, pred)
    return _cross(ctx, entry, ex, batch, pred)


def write_local(ctx, entry, ex, batch, pred) -> dict:
    if _generic(ctx):
        return generic.local(ctx, entry, batch, item_feature_ids(ctx, entry), _r)
    return _local(ctx, entry, ex, batch)


def write_global(ctx, entry, ex, batch, pred) -> dict:
    if _generic(ctx):
        return generic.global_(ctx, item_feature_ids(ctx, entry), _r)
    return _global(ctx, entry)


def write_prediction(ctx, entry, ex, batch, pred) -> dict:
    return _prediction(ctx, entry)


def write_transformer(ctx, entry, ex, batch, pred) -> dict:
    if _generic(ctx):
        raise BundleError(f"stage T is not available for dataset {ctx.plan['dataset']['name']!r}")
    return _transformer(ctx, entry, ex, batch)


def live_second_order_gradient(adapter, source, example, positions: list[int], root: Path | None = None) -> dict:
    """The paper's error-analysis request: the SOG of the words at ``positions`` over the
    image, for the model's predicted class: a heatmap (PNG bytes) and the top-2 boxes."""
    tokens = list(example.tokens)
    if not positions:
        raise BundleError("pick at least one word")
    bad = [p for p in positions if not isinstance(p, int) or not 0 <= p < len(tokens)]
    if bad:
        raise BundleError(f"word positions {bad} are not words of this question (0–{len(tokens) - 1})")
    batch = source.make_batch(adapter, [example])
    with torch.no_grad():
        pred = int(adapter.logits(batch).argmax())
    h, w = source.image_size()
    heat = second_order_gradient(adapter, batch, pred, source.text_modality, source.image_modality,
                                 sorted(set(positions)), aggregate="abs", magnitude=True)[0].reshape(h, w)
    boxes = source.boxes(example)
    return {"words": [tokens[p] for p in sorted(set(positions))], "positions": sorted(set(positions)),
            "top_boxes": top_regions(heat, boxes, k=2), "boxes": [list(b) for b in boxes],
            "heatmap_png": heatmap_overlay_png(example.image, heat, source.image_scale)}
