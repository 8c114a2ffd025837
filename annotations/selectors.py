"""Reads that compute: the metrics of a condition, as the paper's Tables 2 and 3 report them.

Practice responses never count. Accuracy (model simulation) is against the model's
prediction, per annotator, then mean ± standard deviation (sample, ddof = 1) over the
group. Agreement is Krippendorff's α, nominal, from the ``krippendorff`` package, over the
annotators × items matrix of answers (missing answers allowed); it is reported as
undefined (None, with the reason) where it is: fewer than two annotators, no item answered
twice, or a single value throughout. Its 95 % interval is a percentile bootstrap over items.
"""

from __future__ import annotations

import numpy as np

from studies.models import Condition, Study

from .models import Response

__all__ = ["krippendorff_nominal", "bootstrap_alpha_interval", "mean_std", "condition_metrics", "counted_responses"]


def mean_std(values) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def _matrix(answers: dict[tuple[str, str], str]) -> tuple[np.ndarray, list, list]:
    """``{(annotator, item): value}`` → (annotators × items float matrix of value codes, NaN missing)."""
    annotators = sorted({a for a, _ in answers})
    items = sorted({i for _, i in answers})
    values = sorted(set(answers.values()))
    code = {v: k for k, v in enumerate(values)}
    m = np.full((len(annotators), len(items)), np.nan)
    ai, ii = {a: k for k, a in enumerate(annotators)}, {i: k for k, i in enumerate(items)}
    for (a, i), v in answers.items():
        m[ai[a], ii[i]] = code[v]
    return m, annotators, items


def _alpha_of_matrix(m: np.ndarray) -> tuple[float | None, str]:
    import krippendorff

    if m.shape[0] < 2:
        return None, "fewer than two annotators"
    pairable = (~np.isnan(m)).sum(axis=0) >= 2
    if not pairable.any():
        return None, "no item was answered by two annotators"
    if len(np.unique(m[:, pairable][~np.isnan(m[:, pairable])])) < 2:
        return None, "every answer is the same value: α is undefined"
    return float(krippendorff.alpha(reliability_data=m, level_of_measurement="nominal")), ""


def krippendorff_nominal(answers: dict[tuple[str, str], str]) -> tuple[float | None, str]:
    """Nominal α of ``{(annotator, item): answer}``, or ``(None, why it is undefined)``."""
    if not answers:
        return None, "no answers"
    return _alpha_of_matrix(_matrix(answers)[0])


def bootstrap_alpha_interval(answers: dict[tuple[str, str], str], n_boot: int = 1000, seed: int = 0,
                             level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of α, resampling items with replacement (None if undefined)."""
    if not answers:
        return None
    m, _, _ = _matrix(answers)
    if _alpha_of_matrix(m)[0] is None:
        return None
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        cols = rng.integers(0, m.shape[1], size=m.shape[1])
        a, _ = _alpha_of_matrix(m[:, cols])
        if a is not None:
            draws.append(a)
    if len(draws) < n_boot / 2:
        return None
    lo, hi = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def counted_responses(condition: Condition):
    return (Response.objects.filter(enrolment__condition=condition, is_practice=False)
            .select_related("enrolment", "item__bundle_item"))


def condition_metrics(condition: Condition, concept_clusters: dict[int, str] | None = None,
                      n_boot: int = 1000, seed: int = 0) -> dict:
    """Every figure of one condition (read-only).

    concept_clusters: for concept assignment, ``{response id: cluster name}``; by default the
    clusters the researcher saved on the responses. α is computed over clusters (answers not
    yet clustered count as missing).
    """
    task = condition.study.task
    responses = list(counted_responses(condition))
    enrolments = condition.enrolments.all()
    out = {
        "condition": condition.name,
        "stages": condition.stages,
        "annotators": len({r.enrolment_id for r in responses}),
        "enrolled": enrolments.count(),
        "completed": enrolments.filter(completed_at__isnull=False).count(),
        "responses": len(responses),
        "confidence": mean_std(r.confidence for r in responses),
        "seconds_per_item": mean_std(r.seconds_on_item for r in responses),
    }
    if task == Study.Task.SIMULATION:
        per_annotator: dict[int, list[bool]] = {}
        for r in responses:
            per_annotator.setdefault(r.enrolment_id, []).append(r.choice == r.item.bundle_item.prediction)
        out["accuracy"] = mean_std(float(np.mean(v)) for v in per_annotator.values())
        answers = {(r.enrolment.pseudonym, r.item.bundle_item.item_id): r.choice for r in responses}
    elif task == Study.Task.ERROR:
        out["categories"] = {c: sum(r.category == c for r in responses) for c in Response.Category.values if c}
        answers = {(r.enrolment.pseudonym, r.item.bundle_item.item_id): r.category for r in responses}
    else:
        clusters = concept_clusters if concept_clusters is not None else {
            r.pk: r.concept_cluster for r in responses if r.concept_cluster}
        answers = {(r.enrolment.pseudonym, r.item.bundle_item.item_id): clusters[r.pk]
                   for r in responses if r.pk in clusters}
        out["clustered"] = len(answers)
        by_item: dict[str, set] = {}
        counts: dict[str, int] = {}
        for (_, item), v in answers.items():
            by_item.setdefault(item, set()).add(v)
            counts[item] = counts.get(item, 0) + 1
        out["full_agreement_items"] = sum(1 for i, vs in by_item.items() if len(vs) == 1 and counts[i] >= 2)
    alpha, why = krippendorff_nominal(answers)
    out["alpha"] = alpha
    out["alpha_undefined_because"] = why or None
    out["alpha_interval"] = bootstrap_alpha_interval(answers, n_boot=n_boot, seed=seed) if alpha is not None else None
    asked = [r for r in responses if r.helpful_page]
    out["features_helped_more"] = (sum(r.helpful_page == Response.HelpfulPage.FEATURES for r in asked) / len(asked)
                                   if asked else None)
    return out


# -- comparisons and per-item views (the researcher's dashboard) ------------------------------------
def permutation_test(a, b, *, n_resamples: int = 10000, seed: int = 0) -> dict:
    """Two-sided permutation test of the difference in means of two groups (e.g. per-annotator
    accuracies of two conditions).

    Exact (every relabelling) when there are at most 20,000 of them, else ``n_resamples``
    seeded random relabellings with the +1 correction. Returns ``{"difference", "p_value",
    "exact", "n_permutations"}``; ``p_value`` is None when a group is empty.
    """
    from itertools import combinations
    from math import comb

    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if a.size == 0 or b.size == 0:
        return {"difference": None, "p_value": None, "exact": False, "n_permutations": 0}
    pooled = np.concatenate([a, b])
    observed = a.mean() - b.mean()
    total = comb(pooled.size, a.size)
    tol = 1e-12
    if total <= 20000:
        hits = 0
        idx = np.arange(pooled.size)
        for chosen in combinations(idx, a.size):
            mask = np.zeros(pooled.size, bool)
            mask[list(chosen)] = True
            hits += abs(pooled[mask].mean() - pooled[~mask].mean()) >= abs(observed) - tol
        return {"difference": float(observed), "p_value": hits / total, "exact": True, "n_permutations": total}
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_resamples):
        perm = rng.permutation(pooled)
        hits += abs(perm[: a.size].mean() - perm[a.size:].mean()) >= abs(observed) - tol
    return {"difference": float(observed), "p_value": (hits + 1) / (n_resamples + 1), "exact": False,
            "n_permutations": n_resamples}


def annotator_accuracies(condition: Condition) -> dict[str, float]:
    """Simulation: each annotator's accuracy against the model's prediction (counted items)."""
    per: dict[str, list[bool]] = {}
    for r in counted_responses(condition):
        per.setdefault(r.enrolment.pseudonym, []).append(r.choice == r.item.bundle_item.prediction)
    return {k: float(np.mean(v)) for k, v in per.items()}


def compare_conditions(a: Condition, b: Condition, **kwargs) -> dict:
    """Permutation test between two conditions' per-annotator accuracies."""
    if a.study_id != b.study_id:
        raise ValueError("the conditions belong to different studies")
    result = permutation_test(annotator_accuracies(a).values(), annotator_accuracies(b).values(), **kwargs)
    return {"a": a.name, "b": b.name, **result}


def item_agreement(condition: Condition) -> list[dict]:
    """Per counted item: how many answered, the most common answer and its share, and (in
    simulation) the share that matched the model."""
    task = condition.study.task
    per: dict[str, list] = {}
    prediction: dict[str, str] = {}
    for r in counted_responses(condition):
        key = r.item.bundle_item.item_id
        value = r.choice if task == Study.Task.SIMULATION else (r.category or r.concept_cluster or r.free_text)
        per.setdefault(key, []).append(value)
        prediction[key] = r.item.bundle_item.prediction
    rows = []
    for item, values in sorted(per.items()):
        counts: dict[str, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        top = max(sorted(counts), key=counts.get)
        row = {"item": item, "answers": len(values), "most_common": top, "agreement": counts[top] / len(values)}
        if task == Study.Task.SIMULATION:
            row["matched_model"] = sum(v == prediction[item] for v in values) / len(values)
        rows.append(row)
    return rows
