"""Does the C map depend on the word? Controls for the SOG faithfulness check (issue 20).

The check of :mod:`viz_engine.faithfulness` asks whether the second-order gradient (SOG)
from a phrase points at the object the phrase names. A map that points at salient objects
whatever the word passes that check too, so every pair is also scored with maps that
should *not* point at the referred object if the map followed the word:

* ``phrase`` — SOG from the referring phrase (what the C stage shows);
* ``other_phrase`` — SOG from the phrase of *another* object of the same scene: the other
  phrase of the same question when the question names two objects (relations), otherwise
  the question with the phrase replaced by a description that singles out another object
  (seeded choice). The referred object is still the one scored;
* ``non_referring`` — SOG from the "?" token, which names nothing;
* ``first_order`` — the first-order gradient of the same target over the pixels (no word);
  ``first_order_other`` — the same on the control's question: when the control edits the
  question, a map that follows the *question* but not the queried word also moves;
* ``attention`` — mean attention (layers × heads × phrase words) from the phrase to each
  image patch, for models that have attention.

Two pointing games: ``top1``/``top2`` rank the scene's objects by the mean map value per
pixel of their boxes; ``pixel`` is a hit when the map's strongest pixel lies inside the
referred object's box (attention has one value per 16×16 patch, so no pixel figure).
Intervals are percentile bootstraps over pairs (seeded); every method is resampled with
the same pair indices, so ``specificity = phrase − other_phrase`` gets a paired interval
(also per control source; ``specificity_vs_non_referring = phrase − "?"``: the same
question, only the queried word changes; ``phrase_vs_first_order``; and
``first_order_specificity = first_order − first_order_other``, how far a map with no word
moves under the same control). ``map_correlation``: the median per-pair correlation of the
phrase's map with the "?" map and with the first-order map.

Method settings (:class:`Setting`) vary what is differentiated and how it is aggregated,
to find out why a map ignores its word: ``target`` (the logit sum or the predicted logit),
``aggregate`` (absolute or signed sum of the phrase's word gradients), ``query``
(``"phrase"``: one query set; ``"per_word"``: each word's map normalised to unit mass, then
averaged over the phrase; ``"contrast"``: the per-word phrase map minus the mean per-word
map of all the question's words), and ``score`` (how objects are ranked: ``"box_mean"``,
``"box_max"`` or ``"box_sum"`` of the map).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np
import torch

from .adapters import LogitSum
from .data import shapes_vqa as data
from .faithfulness import AlignmentPair, alignment_pairs
from .methods.gradient import gradient
from .methods.second_order_gradient import second_order_gradient, second_order_gradient_per_atom

__all__ = ["Setting", "SWEEP", "ControlPair", "control_pairs", "control_table", "bootstrap_interval", "format_controls",
           "setting_sweep", "format_sweep", "c_specificity"]

METHODS = ("phrase", "other_phrase", "non_referring", "first_order", "first_order_other", "attention")
N_PATCH_SIDE = 3


@dataclass(frozen=True)
class Setting:
    """How a C map is computed and scored (the defaults are what the C stage shows)."""

    target: str = "logit_sum"      # "logit_sum" | "predicted"
    aggregate: str = "abs"         # "abs" | "sum"
    query: str = "phrase"          # "phrase" | "per_word" | "contrast"
    score: str = "box_mean"        # "box_mean" | "box_max" | "box_sum"

    def __post_init__(self):
        choices = {"target": ("logit_sum", "predicted"), "aggregate": ("abs", "sum"),
                   "query": ("phrase", "per_word", "contrast"), "score": ("box_mean", "box_max", "box_sum")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {allowed}")


@dataclass(frozen=True)
class ControlPair:
    """A phrase–object pair with its other-object control.

    ``other_example`` is the example whose question carries ``other_tokens`` (the pair's
    own example for in-question controls, an edited copy otherwise); ``other_obj`` is the
    object those tokens name."""

    pair: AlignmentPair
    other_example: data.Example
    other_tokens: tuple[int, ...]
    other_obj: int
    source: str  # "in_question" | "substituted"


def _substitute(ex: data.Example, pair: AlignmentPair, rng: np.random.Generator):
    """``ex`` with the pair's phrase replaced by a description singling out another object."""
    candidates = []
    for i in range(len(ex.objects)):
        if i != pair.obj:
            descs = data._unique_descriptions(ex.objects, i, data._ATTRS)
            if descs:
                candidates.append((i, descs))
    if not candidates:
        return None
    other, descs = candidates[rng.integers(len(candidates))]
    words = data._phrase(descs[rng.integers(len(descs))], plural=ex.question_type == "count")
    start, stop = pair.tokens[0], pair.tokens[-1] + 1
    tokens = list(ex.tokens[:start]) + words + list(ex.tokens[stop:])
    span = tuple(range(start, start + len(words)))
    edited = replace(ex, tokens=tokens, question=" ".join(tokens[:-1]) + "?", references=[(span, other)])
    return edited, span, other


def control_pairs(examples: Sequence[data.Example], *, max_pairs: int | None = None, seed: int = 0) -> list[ControlPair]:
    """Every single-object pair of ``examples`` (first ``max_pairs``) with its control."""
    out = []
    for k, pair in enumerate(alignment_pairs(examples)[:max_pairs]):
        ex = examples[pair.example]
        others = [(t, o) for t, o in {(tuple(t), o) for t, o in ex.references}
                  if o != pair.obj and t != pair.tokens and 1 <= len(t) <= 4]
        if others:
            tokens, obj = sorted(others)[0]
            out.append(ControlPair(pair, ex, tokens, obj, "in_question"))
            continue
        made = _substitute(ex, pair, np.random.default_rng([seed, k]))
        if made is not None:
            out.append(ControlPair(pair, *made, "substituted"))
    return out


# -- maps ---------------------------------------------------------------------------------------
def _target(adapter, batch, setting: Setting):
    if setting.target == "logit_sum":
        return LogitSum()
    return adapter.predict_proba(batch).argmax(1)


def _pixels(flat: np.ndarray) -> np.ndarray:
    return np.nan_to_num(flat).reshape(-1, data.IMAGE_SIZE, data.IMAGE_SIZE)


def _unit(maps: np.ndarray) -> np.ndarray:
    total = maps.reshape(*maps.shape[:-2], -1).sum(-1)[..., None, None]
    return np.divide(maps, total, out=np.zeros_like(maps), where=total > 0)


def sog_maps(adapter, examples: Sequence[data.Example], phrases: Sequence[Sequence[int]],
             setting: Setting = Setting(), batch_size: int = 64) -> np.ndarray:
    """``(N, H, W)`` C maps of ``phrases[i]`` (token positions) in ``examples[i]``."""
    batch = adapter.make_batch(list(examples))
    target = _target(adapter, batch, setting)
    if setting.query == "phrase":
        flat = second_order_gradient(adapter, batch, target, "question", "image", [list(p) for p in phrases],
                                     aggregate=setting.aggregate, magnitude=True, batch_size=batch_size)
        return _pixels(flat)
    per_word = second_order_gradient_per_atom(adapter, batch, target, "question", "image",
                                              aggregate=setting.aggregate, magnitude=True, batch_size=batch_size)
    per_word = _unit(np.nan_to_num(per_word).reshape(len(examples), per_word.shape[1], data.IMAGE_SIZE, data.IMAGE_SIZE))
    maps = np.stack([per_word[i, list(p)].mean(0) for i, p in enumerate(phrases)])
    if setting.query == "contrast":
        n_words = np.array([len(ex.tokens) for ex in examples])
        maps = maps - per_word.sum(1) / n_words[:, None, None]
    return maps


def first_order_maps(adapter, examples: Sequence[data.Example], setting: Setting = Setting()) -> np.ndarray:
    """``(N, H, W)`` |∂ target / ∂ pixel| (channels summed): the map with no word."""
    batch = adapter.make_batch(list(examples))
    return _pixels(gradient(adapter, batch, _target(adapter, batch, setting), "image", absolute=True))


def attention_maps(adapter, examples: Sequence[data.Example], phrases: Sequence[Sequence[int]],
                   batch_size: int = 128) -> np.ndarray | None:
    """``(N, H, W)`` mean attention from the phrase's words to each patch (None: no attention)."""
    if not hasattr(adapter, "attentions") or not hasattr(adapter.module, "blocks"):
        return None
    n_patch = N_PATCH_SIDE * N_PATCH_SIDE
    side = data.IMAGE_SIZE // N_PATCH_SIDE
    out = []
    for s in range(0, len(examples), batch_size):
        chunk = list(range(s, min(s + batch_size, len(examples))))
        attn = torch.stack(adapter.attentions(adapter.make_batch([examples[i] for i in chunk])))  # (layers, B, heads, T, T)
        to_patches = attn[..., 1:1 + n_patch].mean(dim=(0, 2))  # (B, T, patches)
        for row, i in enumerate(chunk):
            words = [1 + n_patch + t for t in phrases[i]]
            grid = to_patches[row, words].mean(0).reshape(N_PATCH_SIDE, N_PATCH_SIDE).double().numpy()
            out.append(np.kron(grid, np.ones((side, side))))
    return np.stack(out)


# -- pointing games -----------------------------------------------------------------------------
def object_ranking(heat: np.ndarray, boxes, score: str = "box_mean") -> list[int]:
    """Object indices ordered by their boxes' score on ``heat`` (ties: box order)."""
    reduce = {"box_mean": np.mean, "box_max": np.max, "box_sum": np.sum}[score]
    vals = [reduce(heat[y0:y1, x0:x1]) if (y1 > y0 and x1 > x0) else -np.inf for x0, y0, x1, y1 in boxes]
    return sorted(range(len(boxes)), key=lambda i: (-vals[i], i))


def pointing_hits(maps: np.ndarray, examples: Sequence[data.Example], objs: Sequence[int],
                  score: str = "box_mean") -> dict[str, np.ndarray]:
    """Per pair: is ``objs[i]`` first / in the first two of the ranking, and does the map's
    strongest pixel fall inside its box?"""
    top1, top2, pixel = [], [], []
    for heat, ex, obj in zip(maps, examples, objs):
        boxes = [o.box for o in ex.objects]
        ranked = object_ranking(heat, boxes, score)
        top1.append(ranked[0] == obj)
        top2.append(obj in ranked[:2])
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        x0, y0, x1, y1 = boxes[obj]
        pixel.append(x0 <= x < x1 and y0 <= y < y1)
    return {"top1": np.array(top1), "top2": np.array(top2), "pixel": np.array(pixel)}


def bootstrap_interval(values: np.ndarray, resamples: np.ndarray) -> dict:
    """``{"value", "lo", "hi"}``: the mean of ``values`` and the 95 % percentile interval of
    its mean over ``resamples`` (an ``(n_boot, n)`` array of pair indices)."""
    means = values[resamples].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"value": float(values.mean()), "lo": float(lo), "hi": float(hi)}


def control_table(adapter, examples: Sequence[data.Example], *, max_pairs: int | None = None,
                  setting: Setting = Setting(), n_boot: int = 2000, seed: int = 0,
                  methods: Sequence[str] = METHODS) -> dict:
    """Every method × pointing game with bootstrap intervals, and the specificity.

    Returns ``{"n", "setting", "sources", "chance": {...}, "methods": {method: {game:
    {value, lo, hi}} or None}, "specificity": {game: {value, lo, hi}}}`` (rates as fractions).
    """
    cps = control_pairs(examples, max_pairs=max_pairs, seed=seed)
    if not cps:
        raise ValueError("no phrase–object pairs among the examples")
    own = [examples[c.pair.example] for c in cps]
    objs = [c.pair.obj for c in cps]
    question_mark = [(len(ex.tokens) - 1,) for ex in own]
    compute = {
        "phrase": lambda: sog_maps(adapter, own, [c.pair.tokens for c in cps], setting),
        "other_phrase": lambda: sog_maps(adapter, [c.other_example for c in cps], [c.other_tokens for c in cps], setting),
        "non_referring": lambda: sog_maps(adapter, own, question_mark, setting),
        "first_order": lambda: first_order_maps(adapter, own, setting),
        "first_order_other": lambda: first_order_maps(adapter, [c.other_example for c in cps], setting),
        "attention": lambda: attention_maps(adapter, own, [c.pair.tokens for c in cps]),
    }
    n = len(cps)
    resamples = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    hits, table, kept = {}, {}, {}
    for m in methods:
        maps = compute[m]()
        if maps is None:
            table[m] = None
            continue
        if m in ("phrase", "non_referring", "first_order"):
            kept[m] = maps
        hits[m] = pointing_hits(maps, own, objs, setting.score)
        games = ("top1", "top2") if m == "attention" else ("top1", "top2", "pixel")
        table[m] = {g: bootstrap_interval(hits[m][g].astype(float), resamples) for g in games}
    n_obj = np.array([len(ex.objects) for ex in own], dtype=float)
    area = np.array([(ex.objects[o].box[2] - ex.objects[o].box[0]) * (ex.objects[o].box[3] - ex.objects[o].box[1])
                     for ex, o in zip(own, objs)], dtype=float)
    out = {
        "n": n,
        "setting": asdict(setting),
        "sources": {s: sum(c.source == s for c in cps) for s in ("in_question", "substituted")},
        "chance": {"top1": float(np.mean(1 / n_obj)), "top2": float(np.mean(np.minimum(2, n_obj) / n_obj)),
                   "pixel": float(np.mean(area / data.IMAGE_SIZE ** 2))},
        "methods": table,
    }
    if "phrase" in hits and "other_phrase" in hits:
        out["specificity"] = _differences(hits["phrase"], hits["other_phrase"], resamples)
        rng = np.random.default_rng(seed)
        out["specificity_by_source"] = {}
        for source, count in out["sources"].items():
            rows = np.array([i for i, c in enumerate(cps) if c.source == source])
            if count:
                sub = rng.integers(0, count, size=(n_boot, count))
                out["specificity_by_source"][source] = _differences(hits["phrase"], hits["other_phrase"], sub, rows)
    for key, a, b in (("specificity_vs_non_referring", "phrase", "non_referring"),
                      ("phrase_vs_first_order", "phrase", "first_order"),
                      ("first_order_specificity", "first_order", "first_order_other")):
        if a in hits and b in hits:
            out[key] = _differences(hits[a], hits[b], resamples)
    if "phrase" in kept:
        out["map_correlation"] = {f"phrase_vs_{m}": _median_correlation(kept["phrase"], kept[m])
                                  for m in ("non_referring", "first_order") if m in kept}
    return out


def _differences(a: dict, b: dict, resamples: np.ndarray, rows: np.ndarray | None = None) -> dict:
    """Paired ``a − b`` hit rates per game (over ``rows``, default all), with the interval
    over the same resamples (indices into ``rows``)."""
    rows = np.arange(len(a["top1"])) if rows is None else rows
    return {g: bootstrap_interval(a[g][rows].astype(float) - b[g][rows].astype(float), resamples)
            for g in ("top1", "top2", "pixel")}


def _median_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Median over pairs of the Pearson correlation of two maps of the same image."""
    x, y = a.reshape(len(a), -1), b.reshape(len(b), -1)
    x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    den = np.sqrt((x * x).sum(1) * (y * y).sum(1))
    return float(np.median(np.divide((x * y).sum(1), den, out=np.zeros(len(x)), where=den > 0)))


def format_controls(results: dict[str, dict]) -> str:
    """``{model: control_table(...)}`` as a text table (percentages, 95 % intervals)."""

    def cell(c):
        return "—" if c is None else f"{100 * c['value']:5.1f} [{100 * c['lo']:5.1f}, {100 * c['hi']:5.1f}]"

    w = max([18, *(len(m) + 2 for m in results)])
    lines = [f"{'model':<{w}}{'method':<18}{'top-1':>22}{'top-2':>22}{'pixel':>22}"]
    for model, r in results.items():
        for m, games in r["methods"].items():
            games = games or {}
            lines.append(f"{model:<{w}}{m:<18}" + "".join(f"{cell(games.get(g)):>22}" for g in ("top1", "top2", "pixel")))
        for key, label in (("specificity", "specificity"), ("specificity_vs_non_referring", "phrase − \"?\""),
                           ("phrase_vs_first_order", "phrase − FOG"), ("first_order_specificity", "FOG − FOG other")):
            if key in r:
                lines.append(f"{model:<{w}}{label:<18}" + "".join(f"{cell(r[key][g]):>22}" for g in ("top1", "top2", "pixel")))
        ch = r["chance"]
        lines.append(f"{model:<{w}}{'chance':<18}{100 * ch['top1']:>22.1f}{100 * ch['top2']:>22.1f}{100 * ch['pixel']:>22.1f}")
    return "\n".join(lines)


# -- why does the map ignore the word? ----------------------------------------------------------
SWEEP = (
    Setting(),
    Setting(target="predicted"),
    Setting(aggregate="sum"),
    Setting(target="predicted", aggregate="sum"),
    Setting(score="box_max"),
    Setting(score="box_sum"),
    Setting(query="per_word"),
    Setting(query="contrast"),
    Setting(target="predicted", query="contrast"),
)


def setting_sweep(adapter, examples: Sequence[data.Example], *, max_pairs: int = 300,
                  settings: Sequence[Setting] = SWEEP, seed: int = 0, n_boot: int = 1000) -> list[dict]:
    """:func:`control_table` under each method setting (the first-order gradient is kept:
    a setting only helps if the phrase's map also beats the map with no word)."""
    methods = ("phrase", "other_phrase", "non_referring", "first_order", "first_order_other")
    return [control_table(adapter, examples, max_pairs=max_pairs, setting=s, seed=seed, n_boot=n_boot, methods=methods)
            for s in settings]


def format_sweep(rows: dict[str, list[dict]]) -> str:
    """``{model: setting_sweep(...)}`` as one line per setting (top-1, percentage points)."""

    def pct(c):
        return f"{100 * c['value']:+.1f} [{100 * c['lo']:+.1f}, {100 * c['hi']:+.1f}]"

    lines = [f"{'model':<18}{'target':<10}{'agg':<5}{'query':<10}{'score':<9}{'phrase':>7}{'other':>7}"
             f"{'?':>7}{'FOG':>7}   {'phrase − other (top-1)':<26}{'phrase − ?':<26}{'phrase − FOG':<26}"
             f"{'FOG − FOG other':<26}{'r(phrase, ?)':>12}"]
    for model, sweep in rows.items():
        for r in sweep:
            s, m = r["setting"], r["methods"]
            lines.append(
                f"{model:<18}{s['target']:<10}{s['aggregate']:<5}{s['query']:<10}{s['score']:<9}"
                + "".join(f"{100 * m[k]['top1']['value']:>7.1f}" for k in ("phrase", "other_phrase", "non_referring", "first_order"))
                + "   " + "".join(f"{pct(r[k]['top1']):<26}" for k in ("specificity", "specificity_vs_non_referring",
                                                                        "phrase_vs_first_order", "first_order_specificity"))
                + f"{r['map_correlation']['phrase_vs_non_referring']:>12.2f}"
            )
    return "\n".join(lines)


def c_specificity(adapter, examples: Sequence[data.Example], *, n_pairs: int = 60, seed: int = 0,
                  n_boot: int = 1000) -> dict:
    """Compact record of how far a model's C maps move with the word (kept in bundle
    manifests): the top-1 specificity over another object's phrase, the same figure within
    one question (phrase − "?"), the phrase's own top-1, each ``{value, lo, hi}``."""
    r = control_table(adapter, examples, max_pairs=n_pairs, seed=seed, n_boot=n_boot,
                      methods=("phrase", "other_phrase", "non_referring"))
    return {"n_pairs": r["n"], "seed": seed, "setting": r["setting"], "game": "object top-1",
            "over_other_object": r["specificity"]["top1"],
            "over_non_referring": r["specificity_vs_non_referring"]["top1"],
            "phrase": r["methods"]["phrase"]["top1"], "chance": r["chance"]["top1"]}
