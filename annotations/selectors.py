"""Reads that compute: the metrics of a condition, as the paper's Tables 2 and 3 report them.

Practice responses never count, nor do the answers of annotators the researcher excluded
(:func:`counted_responses`). Accuracy (model simulation) is against the model's
prediction, per annotator, then mean ± standard deviation (sample, ddof = 1) over the
group. Agreement is Krippendorff's α, nominal, over the annotators × items matrix of
answers (missing answers allowed), computed by :func:`agreement` and nowhere else: the
study page, its plots, the API and every export read it from :func:`condition_metrics`.
:func:`condition_metrics` computes them once per version of a condition's answers (a digest
of the rows they are computed from, :func:`conditions_answers`) and keeps them in Django's
cache, so a write of any kind shows at once and no write has to invalidate anything.
α is reported as undefined (None, with the reason) where it is: fewer than two
annotators, no item answered twice, or a single value throughout.

What α is computed over depends on the task (its ``alpha_over`` and ``metrics`` in the
task registry; the built-in tasks are in ``task_kinds/``). In model simulation each item
offers its own answer set, so raw labels pooled across items make the expected
disagreement of α near 1 while chance disagreement within a 4-choice item is 3/4: random
answering then looks like agreement. α is therefore computed over the position of the
answer in the item's stored choice list (``StudyItem.choices``, the canonical order, never
the order one annotator was shown); the raw-label α is reported beside it as
``alpha_raw_labels``. Concept clusters and error categories are shared by every item:
α is computed over them directly.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from studies.models import Condition, Enrolment, Study, StudyItem
from studies.services import ACTIVE_WINDOW_SECONDS, StudyError
from studies.task_registry import task_spec

from .models import Response

logger = logging.getLogger(__name__)

__all__ = ["ALPHA_LEVEL", "ALPHA_RESAMPLES", "alpha_over", "agreement", "krippendorff_nominal",
           "bootstrap_alpha_interval", "mean_std", "condition_metrics", "counted_responses", "bonus_rows",
           "is_prolific_id", "condition_answers", "conditions_answers", "item_agreement", "monitor"]

ALPHA_LEVEL = 0.95
ALPHA_RESAMPLES = 1000
ALPHA_SEED = 0
ALPHA_INTERVAL_METHOD = (f"{ALPHA_LEVEL:.0%} studentized bootstrap over items ({ALPHA_RESAMPLES} resamples, "
                         "jackknife standard errors, expanded for few items)")


def alpha_over(task: str) -> str:
    """What α is computed over in a study of ``task`` (each task says: studies.task_registry)."""
    return task_spec(task).alpha_over


def mean_std(values) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def _value_counts(answers: dict[tuple[str, str], object]) -> tuple[np.ndarray, str]:
    """``{(annotator, item): value}`` → (pairable items × values matrix of how many
    annotators gave each value, why α is undefined or "")."""
    if not answers:
        return np.zeros((0, 0)), "no answers"
    if len({a for a, _ in answers}) < 2:
        return np.zeros((0, 0)), "fewer than two annotators"
    items = {i: k for k, i in enumerate(sorted({i for _, i in answers}))}
    values = {v: k for k, v in enumerate(sorted(set(answers.values())))}
    counts = np.zeros((len(items), len(values)))
    np.add.at(counts, ([items[i] for _, i in answers], [values[v] for v in answers.values()]), 1)
    counts = counts[counts.sum(axis=1) >= 2]  # an item answered once pairs with nothing: it never counts
    if not len(counts):
        return counts, "no item was answered by two annotators"
    if (counts.sum(axis=0) > 0).sum() < 2:
        return counts, "every answer is the same value: α is undefined"
    return counts, ""


def _agreeing_pairs(counts: np.ndarray) -> np.ndarray:
    """Per item, its agreeing coincidences Σ_v c_v(c_v − 1)/(m − 1) (m: answers on the item)."""
    return (counts * (counts - 1)).sum(axis=1) / (counts.sum(axis=1) - 1)


def _alpha_of_weighted_items(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Nominal α of each row of ``weights`` (resamples × items: how often each item is in
    the resample), NaN where undefined. With n pairable values, n_v of value v and A the
    agreeing coincidences summed over items, α = 1 − (n − 1)(n − A)/(n² − Σ_v n_v²):
    Krippendorff's formula, each term a sum over items."""
    n_v = weights @ counts
    agreeing = _agreeing_pairs(counts)
    n, a = n_v.sum(axis=-1), weights @ agreeing
    spread = n * n - (n_v * n_v).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, 1 - (n - 1) * (n - a) / spread, np.nan)


def _jackknife_se(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Jackknife standard error of α for each row of ``weights``: every drawn item left out
    once (an item drawn twice is left out twice); leave-outs where α is undefined are skipped.
    Leaving item u out of a resample with value totals S gives Σ_v (S_v − c_uv)² =
    Σ S² − 2 S·c_u + Σ c_u²: matrix products, resamples × items."""
    m, agreeing = counts.sum(axis=1), _agreeing_pairs(counts)
    totals = weights @ counts
    n = totals.sum(axis=1)[:, None] - m[None, :]
    a = (weights @ agreeing)[:, None] - agreeing[None, :]
    squares = (totals * totals).sum(axis=1)[:, None] - 2 * totals @ counts.T + (counts * counts).sum(axis=1)[None, :]
    spread = n * n - squares
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = np.where(spread > 0, 1 - (n - 1) * (n - a) / spread, 0.0)
        used = np.where(spread > 0, weights, 0.0)
        k = used.sum(axis=1)
        mean = (used * loo).sum(axis=1) / k
        return np.sqrt((k - 1) / k * (used * (loo - mean[:, None]) ** 2).sum(axis=1))


def krippendorff_nominal(answers: dict[tuple[str, str], object]) -> tuple[float | None, str]:
    """Nominal α of ``{(annotator, item): answer}`` by the ``krippendorff`` package, or
    ``(None, why it is undefined)``."""
    import krippendorff

    counts, why = _value_counts(answers)
    if why:
        return None, why
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")), ""


def bootstrap_alpha_interval(answers: dict[tuple[str, str], object], n_boot: int = ALPHA_RESAMPLES,
                             seed: int = ALPHA_SEED, level: float = ALPHA_LEVEL) -> tuple[float, float] | None:
    """Interval of nominal α: a studentized (bootstrap-t) bootstrap over items, expanded
    for few items. None if α or the interval is undefined.

    What is resampled: items, with replacement. Items are α's units and the only part of
    the design drawn at random from a larger set; the annotators of a condition are kept as
    they are (with 3 annotators, resampling them would repeat one annotator as two, who
    then agree with themselves). So the interval says how α would vary over other items
    answered by these annotators; it does not generalise to other annotators.

    How: each resample is a vector of item multiplicities, so α of all resamples at once is
    a matrix product (``_alpha_of_weighted_items``), and so is each resample's jackknife
    (``_jackknife_se``): 1000 resamples of 200 items × 200 annotators take about 0.2 s.
    The percentile interval of those α undercovers at the paper's sizes (20 items, random
    answering: 84–91 % of studies for a nominal 95 %), as
    resampling items with replacement biases the expected disagreement and α is skewed near
    0. Instead each resample's α is studentized by its own jackknife standard error, t* =
    (α* − α)/se*, and the interval is α − t*_(hi)·se, α − t*_(lo)·se, where the quantile
    levels are widened as if from Student's t with items − 1 degrees of freedom scaled by
    √(items/(items − 1)) (Hesterberg's expanded intervals: for 20 items the 1.6 and 98.4 %
    quantiles instead of 2.5 and 97.5 %; for 200 items nearly the plain ones). The bounds
    are clipped to α's range [−1, 1]. Measured under random answering (4 choices, 20
    items, 2000 seeded studies each): the interval covers 0 in 96–97 % of studies with 3
    and with 5 annotators; with 2 or 10 choices 96–98 %; with 40 items 95 %.
    """
    from scipy.special import ndtr
    from scipy.stats import t as student_t

    alpha, why = krippendorff_nominal(answers)
    if why:
        return None
    counts, _ = _value_counts(answers)
    n_items = len(counts)
    if n_items < 2:
        return None
    se = _jackknife_se(counts, np.ones((1, n_items)))[0]
    if not se > 0:  # every item leaves α where it is (e.g. perfect agreement): nothing varies
        return (alpha, alpha) if se == 0 else None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_items, size=(n_boot, n_items)) + n_items * np.arange(n_boot)[:, None]
    weights = np.bincount(draws.ravel(), minlength=n_boot * n_items).reshape(n_boot, n_items).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (_alpha_of_weighted_items(counts, weights) - alpha) / _jackknife_se(counts, weights)
    t = t[np.isfinite(t)]
    if len(t) < n_boot / 2:
        return None
    tail = student_t.ppf((1 + level) / 2, n_items - 1) * np.sqrt(n_items / (n_items - 1))
    t_lo, t_hi = np.quantile(t, [ndtr(-tail), ndtr(tail)])
    return float(np.clip(alpha - t_hi * se, -1, 1)), float(np.clip(alpha - t_lo * se, -1, 1))


def agreement(answers: dict[tuple[str, str], object], *, interval: bool = True) -> dict:
    """α of ``{(annotator, item): value}`` with its interval: the one place every α and
    interval the platform shows or exports comes from."""
    alpha, why = krippendorff_nominal(answers)
    return {"alpha": alpha, "alpha_undefined_because": why or None,
            **({"alpha_interval": bootstrap_alpha_interval(answers) if alpha is not None else None,
                "alpha_interval_method": ALPHA_INTERVAL_METHOD} if interval else {})}


def _counted(responses):
    """The responses among ``responses`` that count: not practice, not an attention check, and
    not of an excluded annotator (by the researcher or the study's attention rule). The one
    place this rule is written."""
    return responses.filter(is_practice=False, item__attention_check=False, enrolment__excluded=False)


def counted_responses(condition: Condition):
    """The answers every metric of ``condition`` is computed from: not practice, and not of an
    annotator the researcher excluded (``studies.services.set_exclusion``). The metrics read
    the same rows as plain values (:func:`conditions_answers`), whose digest keys their cache:
    excluding or including an annotator again changes the rows, so it changes the key."""
    return _counted(Response.objects.filter(enrolment__condition=condition)).select_related("enrolment",
                                                                                            "item__bundle_item")


# -- the counted answers of a condition, and the figures computed from them once per change ---------
class Answer(NamedTuple):
    """One counted response as the metrics read it (a row, not a model instance)."""

    pk: int
    annotator: str  # the enrolment's pseudonym
    enrolment_id: int
    study_item: int
    item: str  # the bundle item's id
    prediction: str
    choice: str
    category: str
    concept_cluster: str
    free_text: str
    confidence: int | None
    seconds_on_item: float | None
    helpful_page: str


_RESPONSE_FIELDS = ("pk", "enrolment_id", "item_id", "choice", "category", "concept_cluster", "free_text",
                   "confidence", "seconds_on_item", "helpful_page")
METRICS_CACHE_SECONDS = 7 * 24 * 3600  # the key names the data, so an entry is never stale: it only ages out


@lru_cache(maxsize=1)
def _code_version() -> str:
    """The code the figures come from: this module's source and the libraries α is computed
    with. Part of every cache key, so a deployment that changes how α is computed never
    serves figures computed the old way (a shared cache outlives the processes)."""
    from importlib.metadata import version

    libraries = ",".join(f"{name}={version(name)}" for name in ("krippendorff", "numpy", "scipy"))
    tasks = b"".join(p.read_bytes() for p in sorted((Path(__file__).parent / "task_kinds").glob("*.py")))
    return hashlib.blake2b(Path(__file__).read_bytes() + tasks + libraries.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class ConditionAnswers:
    """Everything the figures of a condition are computed from, and its ``version``: a digest
    of all of it. Any write that changes a figure — a new or edited response, a cluster, an
    item's choices or prediction, an enrolment completing, a renamed condition — changes the
    digest, so caching on it needs no invalidation that a write path could forget."""

    responses: list[tuple]  # counted responses as read, fields as ``_RESPONSE_FIELDS``
    enrolments: list[tuple]  # (id, pseudonym, completed) of the condition's enrolments
    items: list[tuple]  # (StudyItem id, its stored choices, bundle item id, model prediction) of the study
    version: str

    @property
    def enrolled(self) -> int:
        return len(self.enrolments)

    @property
    def completed(self) -> int:
        return sum(1 for e in self.enrolments if e[2])

    @cached_property
    def choices(self) -> dict[int, list]:
        return {pk: choices for pk, choices, _, _ in self.items}

    @cached_property
    def rows(self) -> list[Answer]:
        pseudonym = {pk: name for pk, name, _ in self.enrolments}
        item = {pk: (item_id, prediction) for pk, _, item_id, prediction in self.items}
        return [Answer(pk, pseudonym[e], e, i, *item[i], *rest) for pk, e, i, *rest in self.responses]


def condition_answers(condition: Condition) -> ConditionAnswers:
    """The counted answers of ``condition``, their annotators and the study's items, digested
    into the version (see :func:`conditions_answers`)."""
    return conditions_answers([condition])[0]


def conditions_answers(conditions: list[Condition]) -> list[ConditionAnswers]:
    """:class:`ConditionAnswers` of each of ``conditions``, read together in three queries of
    plain rows (no model instances). Reading and digesting them is all a request costs when
    the figures are in the cache."""
    ids = [c.pk for c in conditions]
    responses: dict[int, list] = {pk: [] for pk in ids}
    for condition_id, *row in (_counted(Response.objects.filter(enrolment__condition__in=ids))
                               .order_by("pk").values_list("enrolment__condition_id", *_RESPONSE_FIELDS)):
        responses[condition_id].append(tuple(row))
    enrolments: dict[int, list] = {pk: [] for pk in ids}
    for condition_id, pk, name, done in (Enrolment.objects.filter(condition__in=ids).order_by("pk")
                                         .values_list("condition_id", "pk", "pseudonym", "completed_at")):
        enrolments[condition_id].append((pk, name, done is not None))
    items: dict[int, list] = {c.study_id: [] for c in conditions}
    for study_id, *row in (StudyItem.objects.filter(study__in=list(items)).order_by("pk")
                           .values_list("study_id", "pk", "choices", "bundle_item__item_id", "bundle_item__prediction")):
        items[study_id].append(tuple(row))
    out = []
    for c in conditions:
        digest = hashlib.blake2b(pickle.dumps(
            (_code_version(), c.study.task, c.name, c.stages, responses[c.pk], enrolments[c.pk], items[c.study_id]),
            protocol=5), digest_size=16).hexdigest()
        out.append(ConditionAnswers(responses[c.pk], enrolments[c.pk], items[c.study_id], digest))
    return out


def _cached(kind: str, condition: Condition, version: str, compute):
    """``compute()`` kept in Django's cache under (kind, condition, version of its answers). A
    cache that does not answer (e.g. Redis down) only costs the computation, never the page."""
    from django.core.cache import cache

    key = f"metrics:{kind}:{condition.pk}:{version}"
    try:
        hit = cache.get(key)
    except Exception:  # noqa: BLE001 - any backend error: compute instead
        logger.warning("the cache did not answer; computing %s of condition %s", kind, condition.pk, exc_info=True)
        hit = None
    if hit is not None:
        return hit
    value = compute()
    try:
        cache.set(key, value, timeout=METRICS_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("the cache did not answer; %s of condition %s not kept", kind, condition.pk, exc_info=True)
    return value


def condition_metrics(condition: Condition, concept_clusters: dict[int, str] | None = None, *,
                      answers: ConditionAnswers | None = None) -> dict:
    """Every figure of one condition (read-only), the same wherever it is shown.

    concept_clusters: for concept assignment, ``{response id: cluster name}``; by default the
    clusters the researcher saved on the responses. α is computed over clusters (answers not
    yet clustered count as missing). In simulation α is over the answer's position in the
    item's stored choices (an answer that is not among them counts as missing, counted in
    ``answers_outside_choices``), with ``alpha_raw_labels`` beside it.

    The figures (α's bootstrap interval above all) are computed once per version of the
    condition's answers (:func:`condition_answers`; pass ``answers`` if already read) and kept
    in Django's cache.
    """
    data = answers if answers is not None else condition_answers(condition)
    if concept_clusters is not None:  # clusters being tried out: computed, not kept
        return _metrics_of(condition, data, concept_clusters)
    return _cached("condition", condition, data.version, lambda: _metrics_of(condition, data, None))


def _metrics_of(condition: Condition, data: ConditionAnswers, concept_clusters: dict[int, str] | None) -> dict:
    task = condition.study.task
    responses = data.rows
    out = {
        "condition": condition.name,
        "stages": condition.stages,
        "annotators": len({r.enrolment_id for r in responses}),
        "enrolled": data.enrolled,
        "completed": data.completed,
        "responses": len(responses),
        "confidence": mean_std(r.confidence for r in responses),
        "seconds_per_item": mean_std(r.seconds_on_item for r in responses),
    }
    spec = task_spec(task)  # what differs between tasks: studies.task_registry
    if spec.scored:
        per_annotator: dict[int, list[bool]] = {}
        for r in responses:
            per_annotator.setdefault(r.enrolment_id, []).append(bool(spec.score(r, r.prediction)))
        out["accuracy"] = mean_std(float(np.mean(v)) for v in per_annotator.values())
    figures, answers = spec.metrics(responses, data, concept_clusters)
    out.update(figures)
    out["alpha_over"] = spec.alpha_over
    out.update(agreement(answers))
    asked = [r for r in responses if r.helpful_page]
    # the paper's figure: of the answers asked which page helped more, the share naming Features
    out["features_helped_more"] = sum(r.helpful_page == "features" for r in asked) / len(asked) if asked else None
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
    score = task_spec(condition.study.task).score
    per: dict[str, list[bool]] = {}
    for r in condition_answers(condition).rows:
        per.setdefault(r.annotator, []).append(bool(score(r, r.prediction)))
    return {k: float(np.mean(v)) for k, v in per.items()}


def compare_conditions(a: Condition, b: Condition, **kwargs) -> dict:
    """Permutation test between two conditions' per-annotator accuracies."""
    if a.study_id != b.study_id:
        raise ValueError("the conditions belong to different studies")
    result = permutation_test(annotator_accuracies(a).values(), annotator_accuracies(b).values(), **kwargs)
    return {"a": a.name, "b": b.name, **result}


def item_agreement(condition: Condition, *, answers: ConditionAnswers | None = None) -> list[dict]:
    """Per counted item: how many answered, the most common answer and its share, and (in
    simulation) the share that matched the model. Kept in the cache like the metrics."""
    data = answers if answers is not None else condition_answers(condition)
    return _cached("items", condition, data.version, lambda: _item_agreement_of(condition.study.task, data.rows))


def _item_agreement_of(task: str, responses: list[Answer]) -> list[dict]:
    spec = task_spec(task)
    per: dict[str, list] = {}
    rows_of: dict[str, list[Answer]] = {}
    for r in responses:
        per.setdefault(r.item, []).append(spec.value(r))
        rows_of.setdefault(r.item, []).append(r)
    rows = []
    for item, values in sorted(per.items()):
        counts: dict[str, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        top = max(sorted(counts), key=counts.get)
        row = {"item": item, "answers": len(values), "most_common": top, "agreement": counts[top] / len(values)}
        if spec.scored:
            row["matched_model"] = sum(bool(spec.score(r, r.prediction)) for r in rows_of[item]) / len(values)
        rows.append(row)
    return rows


# -- bonuses (Prolific's bulk bonus) ---------------------------------------------------------------
PROLIFIC_ID = re.compile(r"[0-9a-f]{24}")  # Prolific's participant ids: 24 hexadecimal characters
CENT = Decimal("0.01")


def is_prolific_id(pseudonym: str) -> bool:
    """Whether a pseudonym is a Prolific participant id (the invite link's PROLIFIC_PID)."""
    return bool(PROLIFIC_ID.fullmatch(pseudonym))


def bonus_amount(study: Study, correct: int, answered: int) -> Decimal:
    """The study's bonus rule, on counted answers only: ``bonus_per_correct`` × the answers
    that match the model, plus ``bonus_threshold_amount`` when the accuracy (correct /
    answered, in %) is at least ``bonus_threshold``; rounded half up to the cent. The
    threshold is compared exactly (100 · correct ≥ threshold · answered): no float rounding
    decides whether someone is paid."""
    amount = Decimal(study.bonus_per_correct) * correct  # (a study not read back holds its default, an int)
    if study.bonus_threshold is not None and answered and 100 * correct >= study.bonus_threshold * answered:
        amount += Decimal(study.bonus_threshold_amount)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def bonus_rows(study: Study, answers: list[ConditionAnswers] | None = None) -> list[dict]:
    """Per annotator of a model-simulation study: counted answers, how many match the model,
    accuracy, the bonus of the rule (:func:`bonus_amount`) and ``payable`` — false (with
    ``note`` saying why) for an annotator the researcher excluded (who gets none) or one
    without a Prolific id (Prolific cannot pay them). ``answers``: the study's conditions'
    :func:`conditions_answers` when the caller has read them already."""
    if not task_spec(study.task).scored:
        raise StudyError("bonuses are paid on accuracy against the model: model-simulation studies only")
    score = task_spec(study.task).score
    per: dict[int, list[bool]] = {}
    # the plain rows the metrics read (not model instances: each would decode its bundle item's JSON)
    if answers is None:
        answers = conditions_answers(list(study.conditions.all()))
    for of_condition in answers:
        for r in of_condition.rows:
            per.setdefault(r.enrolment_id, []).append(bool(score(r, r.prediction)))
    rows = []
    for pk, pseudonym, condition, excluded, reason in (study.enrolments.order_by("pseudonym").values_list(
            "pk", "pseudonym", "condition__name", "excluded", "exclusion_reason")):
        marks = per.get(pk, [])
        correct, answered = sum(marks), len(marks)
        amount = Decimal("0.00") if excluded else bonus_amount(study, correct, answered)
        note = (f"excluded: {reason}" if excluded
                else "" if is_prolific_id(pseudonym) else "no Prolific id: not in the bulk bonus file")
        rows.append({"annotator": pseudonym, "condition": condition, "correct": correct,
                     "answered": answered, "accuracy": correct / answered if answered else None,
                     "amount": amount, "payable": not note and amount > 0, "note": note})
    return rows


# -- the live monitor of a running study ------------------------------------------------------------
def monitor(study: Study, now=None) -> dict:
    """Live figures of a running study: per condition enrolled / active / completed /
    dropped out (no activity for the active window and not finished) / declined consent / screened out
    by the comprehension gate, and per annotator
    their step, progress on counted items, minutes since last seen, median time per item and,
    if the researcher excluded them from the metrics, why (``excluded``: the reason, else "")."""
    from datetime import timedelta
    from statistics import median

    from django.utils import timezone

    now = now or timezone.now()
    window = timedelta(seconds=ACTIVE_WINDOW_SECONDS)
    practice = set(study.items.filter(is_practice=True).values_list("pk", flat=True))
    # counted answers as plain rows, one query for the study: the page polls this every few seconds
    seconds: dict[int, list] = {}
    for enrolment, s in (Response.objects.filter(enrolment__study=study, is_practice=False).order_by()
                         .values_list("enrolment_id", "seconds_on_item")):
        seconds.setdefault(enrolment, []).append(s)
    conditions, annotators = [], []
    for c in study.conditions.all():
        row = {"condition": c.name, "target": c.target_size, "paused": c.paused,
               "enrolled": 0, "active": 0, "completed": 0, "dropped": 0, "declined": 0,
               "screened_out": 0}
        for e in c.enrolments.all():
            row["enrolled"] += 1
            if e.step in (Enrolment.Step.DECLINED, Enrolment.Step.SCREENED_OUT):
                state = e.step
            elif e.completed_at:
                state = "completed"
            elif now - e.last_seen_at <= window:
                state = "active"
            else:
                state = "dropped"
            row[state] += 1
            counted = [pk for pk in e.item_order if pk not in practice]
            done = len(seconds.get(e.pk, ()))
            times = [s for s in seconds.get(e.pk, ()) if s]
            annotators.append({"annotator": e.pseudonym, "condition": c.name, "state": state, "step": e.step,
                               "done": done, "of": len(counted),
                               "minutes_since_seen": round((now - e.last_seen_at).total_seconds() / 60, 1),
                               "median_seconds_per_item": round(median(times), 1) if times else None,
                               "excluded": e.exclusion_reason if e.excluded else ""})
        conditions.append(row)
    return {"conditions": conditions, "annotators": annotators, "at": now.isoformat()}
