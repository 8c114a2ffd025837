"""Building a bundle: plan, compute items (in any order, on any number of workers), finalize.

    plan = plan_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", task="simulation",
                       n_items=20, seed=0)                   # checks everything, before any work
    ctx = load_context(out)                                  # once per worker process
    for ids in chunks(plan):  compute_chunk(ctx, ids)        # idempotent, resumable
    manifest = finalize(out)                                 # hashes; refuses an incomplete bundle

Re-running any step computes only what is missing. A plan that differs from the one already
in the folder is refused (nothing there is lost); pick another folder.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .. import __version__
from ..methods.features import feature_matrix
from ..methods.sparse_linear import accuracy_sparsity_curve, choose_path_point, fit_sparse_linear_path
from .folder import item_done, progress, validate_bundle
from .format import (
    FORMAT,
    FORMAT_VERSION,
    MULTIVIZ_STAGES,
    BundleError,
    bundle_files,
    check_stages,
    read_json,
    remove_stale_temporaries,
    sha256_file,
    write_json,
)
from .dataset_source import check_source, is_protocol_source
from .modality_stages import GENERIC_PARAMS
from .recipes import recipe_record, resolve_params
from .registry import get_stage
from .registry import stages as registered_stages
from .selection import TASKS, select_features, select_items
from .sources import MODELS, load_dataset, load_model
from .stages import BundleContext, compute_item, sparse_model_summary

__all__ = ["DEFAULT_PARAMS", "plan_bundle", "load_context", "compute_chunk", "progress", "finalize",
           "validate_bundle", "chunks", "model_fingerprint", "build_bundle", "missing_items", "default_bundle_dir",
           "p_points", "random_datapoint"]

# the built-in stages' defaults as registered (.registry is the source; planning asks it)
DEFAULT_PARAMS = {spec.name: dict(spec.params) for spec in registered_stages()}

# phrase–object pairs of the C specificity check at plan time (issue 20): three SOG passes over 60 rows
C_SPECIFICITY_PAIRS = 60


def model_fingerprint(adapter) -> str:
    h = hashlib.sha256()
    for name, t in sorted(adapter.module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-check.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BundleError(f"the output folder {out} is not writable: {exc.strerror or exc}") from None


def _features(source, adapter, examples, cache: Path):
    """``(features (N, d) float64, predicted probabilities (N, C))`` of ``examples``."""
    feats, logits = feature_matrix(adapter, source.make_batch(adapter, examples), cache_path=cache)
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return feats.astype(np.float64), probs


def _reference(ctx_source, adapter, split: str, cache: Path):
    examples = ctx_source.examples(split)
    return (examples, *_features(ctx_source, adapter, examples, cache))


def _p_split(source, p_split: str | None, split: str) -> str:
    """The split P is fitted on: ``p_split``, or the dataset's training split; never the items' split."""
    splits = tuple(getattr(source, "splits", ()))
    if p_split is None:
        if "train" not in splits:
            raise BundleError(f"p_split: the dataset has no 'train' split to fit P on (splits: {', '.join(splits)}); "
                              "name the split P is fitted on")
        p_split = "train"
    if splits and p_split not in splits:
        raise BundleError(f"p_split: {p_split!r} is not a split of the dataset; splits: {', '.join(splits)}")
    if p_split == split:
        raise BundleError(f"p_split: P cannot be fitted on {p_split!r}, the split the items come from; "
                          "choose a split disjoint from the items (default: 'train')")
    return p_split


def p_points(source, split: str, n: int | None, seed: int) -> tuple[list, str]:
    """The datapoints P is fitted on: ``n`` of ``split`` (all when ``n`` is None) and how they
    were chosen. A source whose ``examples`` takes ``n`` draws them itself; from any other,
    ``n`` are drawn at random (seeded)."""
    if "n" in inspect.signature(source.examples).parameters:
        examples = list(source.examples(split, n=n))
        return examples, "all of the split" if n is None or len(examples) < n else "a random sample drawn by the dataset"
    examples = list(source.examples(split))
    if n is None or len(examples) <= n:
        return examples, "all of the split"
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), size=n, replace=False))
    return [examples[i] for i in keep], f"a random sample (seed {seed})"


def _fit_p(source, adapter, out: Path, *, p_split: str, p: dict, seed: int, class_names, items_feats, items_probs,
           split: str) -> tuple[dict, dict, np.ndarray]:
    """Fit P on ``p_split`` (model predictions as labels; the last quarter chooses λ) and
    measure it on the items' split: ``(shared/P.json, the manifest's p_fit, P's features)``."""
    examples, how = p_points(source, p_split, p["points"], seed)
    if len(examples) < 8:
        raise BundleError(f"p_split: {p_split!r} has {len(examples)} datapoints; P needs at least 8")
    feats, probs = _features(source, adapter, examples, out / "cache")
    y = probs.argmax(axis=1)
    cut = int(0.75 * len(examples))
    path = fit_sparse_linear_path(feats[:cut], y[:cut], val_features=feats[cut:], val_labels=y[cut:],
                                  alpha=p["alpha"], n_lambdas=p["n_lambdas"])
    chosen = choose_path_point(path, p["max_acc_drop"])
    heldout = float(np.mean(chosen.predict(items_feats) == items_probs.argmax(axis=1)))
    record = {"split": p_split, "n_points": len(examples), "points": how, "labels": "the model's predictions",
              "heldout_split": split, "heldout_points": len(items_feats), "heldout_accuracy": round(heldout, 5)}
    summary = sparse_model_summary(chosen, accuracy_sparsity_curve(path), class_names, p["top_k"])
    return summary, record, feats


def _refuse_overlap(items: list[dict], items_feats: np.ndarray, p_feats: np.ndarray, p_split: str) -> None:
    """A datapoint of the items whose representation is among P's fitting points is the same
    datapoint in two splits (or one P has learnt verbatim): refuse it."""
    fitted = {row.tobytes() for row in p_feats}
    clash = [e["id"] for e in items if items_feats[e["index"]].tobytes() in fitted]
    if clash:
        raise BundleError(f"p_split: {len(clash)} item(s) (e.g. {clash[0]}) are also among the datapoints of "
                          f"{p_split!r} P is fitted on; the splits overlap: choose a disjoint p_split")


def plan_bundle(out, *, dataset: str, model: str, task: str = "simulation", n_items: int = 20,
                seed: int = 0, stages=MULTIVIZ_STAGES, split: str = "test", p_split: str | None = None,
                exclude_yes_no: bool = True,
                min_answer_count: int = 20, params: dict | None = None, recipe: str = "default",
                log: Callable[[str], None] = lambda _m: None) -> dict:
    """Check the request, choose the items, fit P, and write ``plan.json`` (returns the plan).

    P is fitted on ``p_split`` (default: the dataset's ``"train"`` split), never on the
    datapoints the items come from; the plan's ``p_fit`` says on what and how well it did.

    Each stage's methods come from ``recipe`` (``recipes.RECIPES``), then ``params`` (per-stage
    overrides); the plan's ``recipe`` names them and ``stages`` holds every parameter.

    Every check (names, stages, folder, model loading, enough items) runs before anything
    is written; an existing identical plan is returned as it is (resume).
    """
    out = Path(out)
    stages = check_stages(stages)
    if task not in TASKS:
        raise BundleError(f"task {task!r} is unknown; tasks: {', '.join(TASKS)}")
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise BundleError(f"n_items must be a positive integer; got {n_items!r}")
    source = load_dataset(dataset)
    if model in MODELS and MODELS[model][0] != dataset:
        raise BundleError(f"model {model!r} was trained on {MODELS[model][0]!r}, not on {dataset!r}")
    generic = is_protocol_source(source)
    if generic:
        check_source(source)
    p_split = _p_split(source, p_split, split)
    # each stage's defaults as registered (.registry), a protocol source's U and C its own,
    # then the recipe, then the overrides (.recipes checks every method named)
    overrides = params or {}
    defaults = {s.name: dict(GENERIC_PARAMS[s.name]) if generic and s.name in GENERIC_PARAMS else dict(s.params)
                for s in registered_stages()}
    params = resolve_params(defaults, stages, recipe, overrides)
    points = {**defaults["P"], **overrides.get("P", {}), **params.get("P", {})}["points"]
    if points is not None and (isinstance(points, bool) or not isinstance(points, int) or points < 8):
        raise BundleError(f"P.points: the number of datapoints P is fitted on must be an integer ≥ 8 or null "
                          f"(all of p_split); got {points!r}")
    request = {"dataset": dataset, "model": model, "task": task, "n_items": n_items, "seed": seed,
               "stages": list(stages), "split": split, "p_split": p_split, "exclude_yes_no": exclude_yes_no,
               "min_answer_count": min_answer_count, "params": params}
    if recipe != "default":  # the default's requests stay those of bundles planned before recipes
        request["recipe"] = recipe
    plan_path = out / "plan.json"
    if plan_path.exists():
        existing = read_json(plan_path)
        if existing.get("request") != request:
            raise BundleError(f"{out} already holds a different bundle ({existing.get('request')}); "
                              "choose another output folder")
        return existing
    adapter = load_model(model)  # a model that fails to load stops us here
    if generic:
        check_source(source, adapter)
    for s in stages:  # what each stage needs from the model (the registry says)
        lacking = [m for m in get_stage(s).needs if not hasattr(adapter, m)]
        if lacking:
            raise BundleError(f"model {model!r} has no {get_stage(s).description} "
                              f"(stage {s} needs the adapter's {', '.join(lacking)})")
    _check_writable(out)
    if "T" in stages:
        try:
            adapter.token_segments(source.make_batch(adapter, source.examples(split)[:1]))
        except Exception as exc:  # noqa: BLE001 - the adapter says why it has none
            raise BundleError(f"model {model!r} has no transformer views: {exc}") from None

    log(f"features of the {split} split …")
    examples, feats, probs = _reference(source, adapter, split, out / "cache")
    class_names = list(adapter.class_names)
    preds = [class_names[i] for i in probs.argmax(axis=1)]
    labels = [source.label(e) for e in examples]

    log(f"fitting the sparse linear model (P) on the {p_split} split …")
    p = {**get_stage("P").params, **overrides.get("P", {}), **params.get("P", {})}
    sparse, p_fit, p_feats = _fit_p(source, adapter, out, p_split=p_split, p=p, seed=seed, class_names=class_names,
                                    items_feats=feats, items_probs=probs, split=split)

    if task == "concept":
        picks = select_features(sparse["weights"], feats, n=n_items)
        k = params.get("Rg", DEFAULT_PARAMS["Rg"])["k"]
        items = []
        for j, _most in picks:  # Rℓ on a random datapoint (the paper's), not on Rg's first max example
            i = random_datapoint(feats, j, k=k, seed=seed)
            items.append({"id": f"{split}-{i:05d}-f{j}", "index": i, "feature": j})
    else:
        chosen = select_items(labels, preds, [bool(getattr(source, "is_yes_no", lambda _e: False)(e)) for e in examples], task=task, n=n_items,
                              seed=seed, exclude_yes_no=exclude_yes_no, min_answer_count=min_answer_count)
        items = [{"id": f"{split}-{i:05d}", "index": i} for i in chosen]
    _refuse_overlap(items, feats, p_feats, p_split)

    if "T" in stages:
        log("fitting the per-layer hidden-state projections (T) …")
        write_json(out / "shared" / "T.json", _layer_projections(adapter, source, examples, params["T"]))
    write_json(out / "shared" / "P.json", sparse)
    c_check = None
    if "C" in stages and getattr(source, "name", None) in ("shapes_vqa", "shapes_vqa_grounded"):
        from ..faithfulness_controls import c_specificity

        log("measuring how far C maps move with the word …")
        c_check = c_specificity(adapter, examples[:300], n_pairs=C_SPECIFICITY_PAIRS, seed=seed)
    plan = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "engine_version": __version__,
        "request": request,
        "dataset": {"name": dataset, "split": split},
        "model": {"name": model, "weights_sha256": model_fingerprint(adapter),
                  "class": f"{type(adapter).__module__}.{type(adapter).__qualname__}"},
        "class_names": class_names,
        "answer_types": _answer_types(source, class_names),
        "representation_layer": adapter.default_layer,
        "task": task,
        "selection": {"split": split, "seed": seed, "n_items": n_items, "exclude_yes_no": exclude_yes_no,
                      "min_answer_count": min_answer_count, "misclassified_only": task == "error"},
        "stages": params,
        "recipe": recipe_record(recipe, overrides, params),
        "p_fit": p_fit,
        "c_specificity": c_check,
        "items": items,
    }
    write_json(plan_path, plan)  # last: a plan exists only once its shared parts do
    return plan


def random_datapoint(feats: np.ndarray, feature: int, *, k: int, seed: int) -> int:
    """A concept item's datapoint: drawn at random from the split (seeded by the bundle's
    seed and the feature), never one of the feature's ``k`` most or least activating
    datapoints that Rg shows beside it."""
    from ..methods.global_representation import top_activating

    top = top_activating(feats, feature, k=min(k, len(feats)))
    shown = {int(i) for i in top["max_indices"]} | {int(i) for i in top["min_indices"]}
    pool = [i for i in range(len(feats)) if i not in shown] or list(range(len(feats)))
    return int(np.random.default_rng([seed, feature]).choice(pool))


def _answer_types(source, class_names) -> dict[str, list[str]]:
    """The dataset's answer types over the model's classes ({} when the dataset has none)."""
    types = source.answer_types() if hasattr(source, "answer_types") else {}
    return {name: [c for c in names if c in class_names] for name, names in types.items()
            if any(c in class_names for c in names)}


def _layer_projections(adapter, source, examples, params) -> dict:
    """``shared/T.json``: one 2-D projection per layer, fitted over a sample of the split."""
    from ..methods.hidden_state_projection import fit_layer_projections

    sample = source.make_batch(adapter, examples[: params["projection_sample"]])
    _, valid = adapter.token_segments(sample)
    proj = fit_layer_projections(adapter.hidden_states(sample), valid)
    return {"means": [m.tolist() for m in proj.means], "components": [c.tolist() for c in proj.components],
            "explained": [e.tolist() for e in proj.explained]}


def load_context(out, adapter=None) -> BundleContext:
    """Everything an item needs, loaded once (a worker process keeps it)."""
    out = Path(out)
    plan = read_json(out / "plan.json")
    source = load_dataset(plan["dataset"]["name"])
    adapter = adapter or load_model(plan["model"]["name"])
    if model_fingerprint(adapter) != plan["model"]["weights_sha256"]:
        raise BundleError(f"the weights of model {plan['model']['name']!r} changed since {out} was planned; "
                          "plan a new bundle")
    examples, feats, probs = _reference(source, adapter, plan["dataset"]["split"], out / "cache")
    return BundleContext(out, plan, source, adapter, examples, feats, probs, read_json(out / "shared" / "P.json"))


def missing_items(out) -> list[str]:
    plan = read_json(Path(out) / "plan.json")
    return [e["id"] for e in plan["items"] if not item_done(Path(out), e, plan["request"]["stages"])]


def chunks(ids: list[str], size: int) -> Iterable[list[str]]:
    for s in range(0, len(ids), max(1, size)):
        yield ids[s : s + size]


def compute_chunk(ctx: BundleContext, ids: Iterable[str], on_item: Callable[[str], None] = lambda _i: None) -> int:
    """Compute the missing sections of the items ``ids``; returns how many items it touched."""
    entries = {e["id"]: e for e in ctx.plan["items"]}
    n = 0
    for item_id in ids:
        if item_id not in entries:
            raise BundleError(f"item {item_id!r} is not in the plan of {ctx.root}")
        if compute_item(ctx, entries[item_id]):
            n += 1
        on_item(item_id)
    return n


def finalize(out) -> dict:
    """Write ``manifest.json`` (the plan, every file's sha256, ``complete: true``)."""
    out = Path(out)
    remove_stale_temporaries(out)
    left = missing_items(out)
    if left:
        raise BundleError(f"{len(left)} item(s) are not computed yet (e.g. {left[0]}); run precompute again")
    plan = read_json(out / "plan.json")
    files = {name: sha256_file(out / name) for name in bundle_files(out)}
    manifest = {**plan, "files": files, "complete": True}
    write_json(out / "manifest.json", manifest)
    return manifest


def build_bundle(out, log: Callable[[str], None] = lambda _m: None, **plan_kwargs) -> dict:
    """Plan, compute every item in this process, finalize: the whole job without a broker."""
    plan_bundle(out, log=log, **plan_kwargs)
    ctx = load_context(out)
    compute_chunk(ctx, missing_items(out), on_item=lambda i: log(f"item {i} done"))
    return finalize(out)


def default_bundle_dir(data_dir, dataset: str, model: str, task: str, n_items: int, seed: int) -> Path:
    return Path(data_dir) / "bundles" / f"{dataset}-{model.replace(':', '_').replace('.', '_')}-{task}-{n_items}-s{seed}"

