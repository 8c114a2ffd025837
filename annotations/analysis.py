"""Tests between conditions, with effect sizes beside every p-value (issue 16).

Plain functions over plain arrays (one entry per counted answer), so the study page, the API,
the exports, the simulations that validate them and the builder's sample-size planner all
run the same code:

- :func:`accuracy_model` — model simulation: is an answer right (it matches the model's
  prediction) ~ condition. Odds ratios of every pair of conditions with intervals and
  p-values, the omnibus test of "all conditions equal", fitted accuracies.
- :func:`confidence_model` — confidence (1–5) ~ condition as an ordinal (proportional-odds)
  model: odds ratios of answering with higher confidence.
- :func:`alpha_differences` — α of one condition minus α of another, with a two-way
  (items and annotators) jackknife interval and its t test. α is always
  :func:`annotations.selectors.agreement`'s (no second α here).
- :func:`study_analysis` — all of it for one study, computed once per version of its answers
  (the digest :func:`annotations.selectors.conditions_answers` gives) and kept in Django's
  cache: the page, ``/api/studies/<id>/analysis/`` and the JSON export read this one result.

**The accuracy model and why this estimator.** Annotators are the unit that varies between
conditions: each annotator sees one condition, so with the paper's 3 annotators per group
any test of condition has annotators − conditions (15 − 5 = 10) degrees of freedom for the
between-annotator spread, however many items there are. The model is a binomial GLM (logit)
of each annotator's correct answers out of the items they answered, with condition as a
factor, and the between-annotator spread as overdispersion: the dispersion φ is estimated
from the annotators' Pearson χ² over annotators − conditions degrees of freedom (a
quasi-binomial GLM; statsmodels ``GLM(...).fit(scale=φ)``), and every test uses Student's
t and Fisher's F with those degrees of freedom, not the normal. Items are crossed with
conditions (every annotator answers the same items): item difficulty is common to every
condition, so it is in every annotator's count alike and does not bias a contrast; the
variance it adds within an annotator is in φ. The odds ratios are population-averaged (over
annotators and items). Alternatives measured at the paper's size (5 × 3 × 20, annotator SD
0.5 and item SD 1.0 on the logit scale, seeded null studies, on this 2-core machine):

- ``BinomialBayesMixedGLM`` (crossed annotator and item random effects) by variational Bayes
  (``fit_vb``): 55 % false positives (its mean-field posterior SDs are too narrow);
- the same by Laplace (``fit_map``): 0.3–1.7 s per fit and ~300 BFGS iterations, and
  estimates that moved with the optimiser (BFGS and L-BFGS-B disagreed) — too slow and too
  fragile for 400 simulated studies in a test, or a planner that answers in seconds;
- ``GEE`` clustered by annotator with the bias-reduced (Mancl–DeRouen) sandwich and the F
  reference: 12 % false positives — a sandwich estimates each condition's variance from
  its own 3 annotators, where the model here pools them over all conditions;
- a linear mixed model (``MixedLM``, crossed variance components): 0.6 s per fit.

The quasi-binomial GLM fits in milliseconds and its false-positive rate is measured by
``tests/platform/test_analysis_calibration.py`` (400 seeded null studies) and
``python -m benchmarks.analysis_power``.

**Confidence.** ``OrderedModel`` (statsmodels, logit link: proportional odds) of confidence
~ condition over all counted answers. The answers of one annotator are not independent;
a cluster-robust sandwich by annotator estimates each condition's variance from its own 3
annotators and rejected 29 % of null studies at the paper's size (200 seeded studies). The
between-annotator spread is instead a dispersion of the model's covariance, pooled over
conditions as in the accuracy model: φ = Σ_a s_a² / i_a / (annotators − conditions), with
s_a and i_a the score and information of annotator a's answers in a shift of their linear
predictor (for two levels this is exactly the quasi-binomial φ; a test checks it); t and F
with annotators − conditions degrees of freedom.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np

__all__ = ["LEVEL", "ANALYSIS_COLUMNS", "analysis_rows", "ACCURACY_ESTIMATOR",
           "CONFIDENCE_ESTIMATOR",
           "ALPHA_DIFFERENCE_METHOD", "accuracy_model", "confidence_model", "alpha_differences",
           "simulate_accuracy_answers", "simulate_choice_answers", "accuracy_power", "plan_annotators", "annotator_quality",
           "study_analysis", "holm"]

LEVEL = 0.95
ACCURACY_ESTIMATOR = ("binomial GLM (logit) of each annotator's correct answers ~ condition, between-annotator "
                      "spread as overdispersion (quasi-binomial, φ from Pearson χ²); t and F tests with "
                      "annotators − conditions degrees of freedom")
CONFIDENCE_ESTIMATOR = ("proportional-odds model (statsmodels OrderedModel, logit) of confidence ~ condition; "
                        "between-annotator spread as a dispersion of its covariance (each annotator's score and "
                        "information in a shift of their answers, pooled over conditions); t and F tests with "
                        "annotators − conditions degrees of freedom")
ALPHA_DIFFERENCE_METHOD = (f"{LEVEL:.0%} jackknife interval with Student's t (annotators − conditions degrees of "
                           "freedom): the items left out of both conditions at once, plus each condition's spread "
                           "between annotators (leaving each out, less the annotator × item interaction), pooled "
                           "over the conditions")


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of ``p_values`` (None stays None): the family-wise error
    of all pairwise contrasts of a study stays at the level."""
    known = [(p, k) for k, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, k) in enumerate(sorted(known)):
        running = max(running, min(1.0, (len(known) - rank) * p))
        out[k] = running
    return out


def _codes(values: Sequence, order: Sequence | None = None) -> tuple[np.ndarray, list]:
    levels = list(order) if order is not None else sorted(set(values), key=str)
    index = {v: k for k, v in enumerate(levels)}
    return np.array([index[v] for v in values], dtype=int), levels


def _wald(estimates: np.ndarray, cov: np.ndarray, names: list[str], df: float, level: float,
          scale_name: str) -> tuple[dict, list[dict]]:
    """Omnibus F and every pairwise contrast of ``estimates`` (condition effects on a log-odds
    scale, the first condition 0) with covariance ``cov``; t and F with ``df``."""
    from scipy import stats

    k = len(names)
    contrasts = []
    q = stats.t.ppf((1 + level) / 2, df)
    for i, j in combinations(range(k), 2):
        d = np.zeros(k)
        d[j], d[i] = 1.0, -1.0
        est, se = float(d @ estimates), float(math.sqrt(max(d @ cov @ d, 0.0)))
        t = est / se if se > 0 else math.inf
        contrasts.append({"condition": names[j], "versus": names[i], f"log_{scale_name}": est, "se": se,
                          scale_name: math.exp(est), "interval": [math.exp(est - q * se), math.exp(est + q * se)],
                          "t": t, "df": df, "p_value": float(2 * stats.t.sf(abs(t), df))})
    for c, p in zip(contrasts, holm([c["p_value"] for c in contrasts])):
        c["p_holm"] = p
    b, v = estimates[1:], cov[1:, 1:]
    try:
        w = float(b @ np.linalg.solve(v, b))
    except np.linalg.LinAlgError:
        w = math.nan
    f = w / (k - 1)
    omnibus = {"F": f, "df1": k - 1, "df2": df,
               "p_value": float(stats.f.sf(f, k - 1, df)) if math.isfinite(f) else None}
    return omnibus, contrasts


def accuracy_model(correct: Sequence, condition: Sequence, annotator: Sequence, *,
                   conditions: Sequence[str] | None = None, level: float = LEVEL) -> dict:
    """Correct ~ condition, one entry per counted answer (see the module's docstring).

    correct: 0/1 (the answer matched the model's prediction); condition, annotator: labels
    of the same length; conditions: their order (the first is the reference of the fitted
    effects; default sorted). Returns ``{"estimator", "conditions": [{"condition",
    "annotators", "answers", "accuracy" (fitted = pooled share right)}], "omnibus": {F, df1,
    df2, p_value, "accuracy_range" (points, largest − smallest)}, "contrasts": [{condition,
    versus, odds_ratio, interval, p_value, p_holm, "difference" (accuracy points)}],
    "dispersion"}`` or ``{"undefined_because": ...}``.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    y = np.asarray(correct, dtype=float)
    cond, names = _codes(condition, conditions)
    ann, _ = _codes(annotator)
    n_ann, k = int(ann.max()) + 1 if len(ann) else 0, len(names)
    successes = np.bincount(ann, weights=y, minlength=n_ann)
    trials = np.bincount(ann, minlength=n_ann).astype(float)
    ann_cond = np.zeros(n_ann, dtype=int)
    ann_cond[ann] = cond
    per = [{"condition": names[c], "annotators": int((ann_cond == c).sum()),
            "answers": int(trials[ann_cond == c].sum()),
            "accuracy": float(successes[ann_cond == c].sum() / trials[ann_cond == c].sum())
            if trials[ann_cond == c].sum() else None} for c in range(k)]
    out = {"estimator": ACCURACY_ESTIMATOR, "level": level, "conditions": per}
    df = n_ann - k
    if k < 2:
        return {**out, "undefined_because": "fewer than two conditions"}
    if any(p["annotators"] == 0 for p in per):
        return {**out, "undefined_because": "a condition has no counted answers"}
    if df < 1:
        return {**out, "undefined_because": "needs more annotators than conditions (the test's degrees of freedom)"}
    if any(p["accuracy"] in (0.0, 1.0) for p in per):
        return {**out, "undefined_because": "every answer of a condition is right (or every one wrong): its odds "
                                            "ratio is infinite"}
    x = np.zeros((n_ann, k))
    x[:, 0] = 1.0
    x[np.arange(n_ann), ann_cond] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        fit = sm.GLM(np.column_stack([successes, trials - successes]), x, family=sm.families.Binomial()).fit()
    dispersion = float(fit.pearson_chi2 / df)
    if not dispersion > 1e-9:
        return {**out, "undefined_because": "every annotator is exactly at their condition's accuracy: the "
                                            "spread between annotators, which the test needs, is zero"}
    cov = fit.normalized_cov_params * dispersion
    effects = np.r_[0.0, fit.params[1:]]
    full_cov = np.zeros((k, k))
    full_cov[1:, 1:] = cov[1:, 1:]
    omnibus, contrasts = _wald(effects, full_cov, names, df, level, "odds_ratio")
    accuracy = {p["condition"]: p["accuracy"] for p in per}
    for c in contrasts:
        c["difference"] = accuracy[c["condition"]] - accuracy[c["versus"]]
    values = [p["accuracy"] for p in per]
    omnibus["accuracy_range"] = max(values) - min(values)
    return {**out, "omnibus": omnibus, "contrasts": contrasts, "dispersion": dispersion}


def confidence_model(confidence: Sequence, condition: Sequence, annotator: Sequence, *,
                     conditions: Sequence[str] | None = None, level: float = LEVEL) -> dict:
    """Confidence (ordered levels, e.g. 1–5) ~ condition, proportional odds, one entry per
    counted answer with a confidence. Returns ``{"estimator", "conditions": [{condition,
    annotators, answers, mean}], "omnibus", "contrasts": [{condition, versus, odds_ratio
    (odds of a higher confidence), interval, p_value, p_holm, "difference" (of mean
    confidence)}]}`` or ``{"undefined_because": ...}``."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    y = np.asarray(confidence, dtype=float)
    cond, names = _codes(condition, conditions)
    ann, _ = _codes(annotator)
    k, n_ann = len(names), len(set(ann.tolist()))
    per = [{"condition": n, "annotators": len(set(ann[cond == c].tolist())), "answers": int((cond == c).sum()),
            "mean": float(y[cond == c].mean()) if (cond == c).any() else None} for c, n in enumerate(names)]
    out = {"estimator": CONFIDENCE_ESTIMATOR, "level": level, "conditions": per}
    df = n_ann - k
    if k < 2 or any(p["answers"] == 0 for p in per):
        return {**out, "undefined_because": "fewer than two conditions with confidences"}
    if df < 1:
        return {**out, "undefined_because": "needs more annotators than conditions (the test's degrees of freedom)"}
    levels = np.unique(y)
    if len(levels) < 2:
        return {**out, "undefined_because": "every confidence is the same"}
    x = np.zeros((len(y), k - 1))
    rows = np.flatnonzero(cond > 0)
    x[rows, cond[rows] - 1] = 1.0
    codes = np.searchsorted(levels, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = OrderedModel(codes, x, distr="logit")
            fit = model.fit(method="bfgs", disp=False, maxiter=200)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return {**out, "undefined_because": f"the model could not be fitted ({exc})"}
    params = np.asarray(fit.params)
    dispersion = _annotator_dispersion(model, params, x, codes, ann, df)
    cov_b = np.asarray(fit.cov_params())[: k - 1, : k - 1] * dispersion
    if not np.all(np.isfinite(cov_b)) or not dispersion > 1e-9:
        return {**out, "undefined_because": "the model could not be fitted (its covariance is not finite)"}
    effects = np.r_[0.0, np.asarray(fit.params)[: k - 1]]
    full_cov = np.zeros((k, k))
    full_cov[1:, 1:] = cov_b
    omnibus, contrasts = _wald(effects, full_cov, names, df, level, "odds_ratio")
    means = {p["condition"]: p["mean"] for p in per}
    for c in contrasts:
        c["difference"] = means[c["condition"]] - means[c["versus"]]
    values = [p["mean"] for p in per]
    omnibus["mean_range"] = max(values) - min(values)
    return {**out, "omnibus": omnibus, "contrasts": contrasts, "dispersion": dispersion}


def _annotator_dispersion(model, params: np.ndarray, x: np.ndarray, codes: np.ndarray, ann: np.ndarray,
                          df: int) -> float:
    """The between-annotator dispersion of an ordinal fit: Σ_a s_a² / i_a over annotators − conditions
    degrees of freedom, where s_a and i_a are the first and (minus the) second derivative of
    annotator a's log-likelihood in a shift of all their linear predictors. For a binomial
    model this is exactly the Pearson χ² of the annotators' counts over its degrees of freedom
    (the quasi-binomial φ of :func:`accuracy_model`); here it scales the model's covariance
    the same way, pooled over conditions."""
    from scipy.special import expit

    thresholds = np.r_[-np.inf, model.transform_threshold_params(params)[1:-1], np.inf]
    eta = x @ params[: x.shape[1]]

    def loglik(shift: float) -> np.ndarray:
        upper, lower = thresholds[codes + 1] - eta - shift, thresholds[codes] - eta - shift
        return np.log(np.clip(expit(upper) - expit(lower), 1e-300, None))

    h = 1e-4
    plus, zero, minus = loglik(h), loglik(0.0), loglik(-h)
    n_ann = int(ann.max()) + 1
    score = np.bincount(ann, weights=(plus - minus) / (2 * h), minlength=n_ann)
    information = np.bincount(ann, weights=-(plus - 2 * zero + minus) / (h * h), minlength=n_ann)
    used = information > 0
    return float((score[used] ** 2 / information[used]).sum() / df)


def alpha_differences(answers: dict[str, dict[tuple[str, str], object]], *, level: float = LEVEL) -> list[dict]:
    """α of each pair of conditions and their difference, with a jackknife t interval.

    answers: ``{condition: {(annotator, item): value}}``, the values α is computed over
    (:func:`annotations.selectors.condition_metrics` says which), every condition of the
    study (the between-annotator part is pooled over all of them). Returns one row per pair
    of conditions: ``{condition, versus, alpha, alpha_versus, difference (α − α versus),
    se, t, df, interval, p_value, p_holm, undefined_because}``; difference and interval are
    None where α is undefined, interval and p None (with the reason) where the test is.

    α is :func:`annotations.selectors.agreement`'s on the data; every α with an annotator
    and/or an item left out is the same formula in its vectorised form
    (``selectors._alpha_of_weighted_items``; a test checks each against
    :func:`~annotations.selectors.agreement` of the answers left).

    The variance of a difference d = α_a − α_b has two parts. Items are shared (every
    condition answers the same items), so the item part is the jackknife of d itself over
    the items (both conditions leave the same item out): V_items = (n − 1)/n Σ_i (d_(i) − d̄)².
    Annotators differ between conditions; the part each condition's annotators add is
    estimated by the two-way jackknife of its α: the spread over left-out annotators, V_ann =
    (m − 1)/m Σ_j (α_(j) − ᾱ)², minus the annotator × item interaction both jackknives
    count, V_int = (m − 1)(n − 1)/(m n) Σ_j Σ_i (α − α_(j) − α_(i) + α_(ji))² (for a mean
    of an annotators × items table, V_ann + V_items − V_int is exactly the unbiased
    two-way variance). Per annotator, s_c = m_c (V_ann − V_int) is pooled over the study's
    conditions, weighted by m_c − 1 (as the accuracy model pools its dispersion), and
    var(d) = V_items + max(0, s (1/m_a + 1/m_b)); the interval is d ± t·se with Student's t
    at Σ_c (m_c − 1) degrees of freedom (annotators − conditions), p its two-sided p-value.
    Why this and not a bootstrap: the bootstrap that drew annotators (a repeated one counted
    once) excluded 0 in 0.3–1.1 % of null studies at the paper's size, this interval in
    4–6 %, with more power (22 % against 12.5 % for a planted difference of α of 0.2); the
    measurements and the other candidates are in ``docs/analysis.md``. Conditions whose
    annotator part is undefined (fewer than 3 annotators, or an α left undefined by a
    leave-out) do not enter the pool."""
    from scipy import stats

    names = list(answers)
    items = sorted({i for a in answers.values() for _, i in a}, key=str)
    observed = {n: _alpha(answers[n]) for n in names}
    jackknives = {n: _alpha_leave_outs(answers[n], items) for n in names if observed[n] is not None}
    parts = {n: _annotator_part(*j) for n, j in jackknives.items()}
    weights = {n: len(jackknives[n][0]) - 1 for n, p in parts.items() if p is not None}
    df = sum(weights.values())
    pooled = sum(w * parts[n] for n, w in weights.items()) / df if df else None
    rows = []
    for i, j in combinations(range(len(names)), 2):
        a, b = names[j], names[i]
        row = {"condition": a, "versus": b, "alpha": observed[a], "alpha_versus": observed[b], "difference": None,
               "se": None, "t": None, "df": df or None, "interval": None, "p_value": None, "undefined_because": None}
        rows.append(row)
        if observed[a] is None or observed[b] is None:
            row["undefined_because"] = "α of a condition is undefined"
            continue
        row["difference"] = d = observed[a] - observed[b]
        (annotators_a, table_a, pairable_a), (annotators_b, table_b, pairable_b) = jackknives[a], jackknives[b]
        columns = 1 + np.flatnonzero(pairable_a | pairable_b)
        left_out = table_a[0, columns] - table_b[0, columns]
        if pooled is None:
            row["undefined_because"] = ("needs a condition with at least 3 annotators (the spread between annotators is "
                                        "estimated by leaving each out)")
            continue
        if len(columns) < 2 or not np.all(np.isfinite(left_out)):
            row["undefined_because"] = "α is undefined when an item is left out"
            continue
        n = len(columns)
        variance = ((n - 1) / n * ((left_out - left_out.mean()) ** 2).sum()
                    + max(0.0, pooled * (1 / len(annotators_a) + 1 / len(annotators_b))))
        if not variance > 0:
            row["undefined_because"] = "no α changes when an item or an annotator is left out: nothing to test against"
            continue
        se = math.sqrt(variance)
        q = stats.t.ppf((1 + level) / 2, df)
        row.update(se=se, t=d / se, interval=[float(d - q * se), float(d + q * se)],
                   p_value=float(2 * stats.t.sf(abs(d) / se, df)))
    for row, p in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = p
    return rows


def _alpha(answers: dict) -> float | None:
    from .selectors import agreement

    return agreement(answers, interval=False)["alpha"]


def _alpha_leave_outs(answers: dict, items: list) -> tuple[list, np.ndarray, np.ndarray]:
    """α of ``answers`` with an annotator and/or an item left out: (the annotators in
    order, table, pairable). table is (annotators + 1) × (items + 1): [0, 0] α of all the
    answers, [0, 1 + i] without ``items[i]``, [1 + j, 0] without annotator j, [1 + j, 1 + i]
    without both; NaN where α is undefined. pairable: which ``items`` two annotators
    answered. The formula is ``selectors._alpha_of_weighted_items``, the one every
    resampled α of the platform uses."""
    from .selectors import _alpha_of_weighted_items

    annotators = sorted({a for a, _ in answers}, key=str)
    values = sorted(set(answers.values()), key=str)
    item_index, value_index = {v: k for k, v in enumerate(items)}, {v: k for k, v in enumerate(values)}
    ann_index = {a: k for k, a in enumerate(annotators)}
    one_hot = np.zeros((len(annotators), len(items), len(values)))
    for (a, i), v in answers.items():
        one_hot[ann_index[a], item_index[i], value_index[v]] = 1.0
    total = one_hot.sum(axis=0)
    leave_items = np.vstack([np.ones(len(items)), 1.0 - np.eye(len(items))])
    table = np.empty((len(annotators) + 1, len(items) + 1))
    for row, counts in enumerate([total, *(total - one_hot[j] for j in range(len(annotators)))]):
        counts[counts.sum(axis=1) < 2] = 0.0  # an item answered once pairs with nothing
        with np.errstate(invalid="ignore", divide="ignore"):
            table[row] = _alpha_of_weighted_items(counts, leave_items)
    return annotators, table, total.sum(axis=1) >= 2


def _annotator_part(annotators: list, table: np.ndarray, pairable: np.ndarray) -> float | None:
    """m (V_ann − V_int) of one condition's leave-out table (:func:`alpha_differences`): the
    between-annotator variance of its α, per annotator; None where it cannot be estimated."""
    m, columns = len(annotators), np.r_[0, 1 + np.flatnonzero(pairable)]
    n = len(columns) - 1
    if m < 3 or n < 2:
        return None
    t = table[:, columns]
    if not np.all(np.isfinite(t)):
        return None
    spread = (m - 1) / m * ((t[1:, 0] - t[1:, 0].mean()) ** 2).sum()
    interaction = (m - 1) * (n - 1) / (m * n) * ((t[0, 0] - t[1:, :1] - t[:1, 1:] + t[1:, 1:]) ** 2).sum()
    return float(m * (spread - interaction))


# -- simulation: the same model on studies drawn at random (validation, power, planning) -----------
def simulate_accuracy_answers(accuracies: Sequence[float], annotators: int, items: int, *, annotator_sd: float,
                              item_sd: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One simulated model-simulation study: ``annotators`` per condition, each answering the
    same ``items``; P(right) = expit(logit(accuracy of the condition) + annotator effect +
    item effect), the effects normal with SDs ``annotator_sd`` and ``item_sd`` (logit scale).
    Returns (correct, condition index, annotator index), one entry per answer."""
    from scipy.special import expit, logit

    k = len(accuracies)
    base = logit(np.clip(np.asarray(accuracies, dtype=float), 1e-6, 1 - 1e-6))
    n_ann = k * annotators
    cond_of = np.repeat(np.arange(k), annotators)
    eta = (base[cond_of] + rng.normal(0.0, annotator_sd, n_ann))[:, None] + rng.normal(0.0, item_sd, items)[None, :]
    correct = rng.random((n_ann, items)) < expit(eta)
    return correct.ravel().astype(float), np.repeat(cond_of, items), np.repeat(np.arange(n_ann), items)


def simulate_choice_answers(knowing: Sequence[float], annotators: int, items: int, *, choices: int = 4,
                            annotator_sd: float, item_sd: float,
                            rng: np.random.Generator) -> dict[str, dict[tuple[str, str], int]]:
    """One simulated study for α: each item has one answer among ``choices`` (drawn at
    random); an annotator of condition c knows it with probability expit(logit(knowing[c]) +
    annotator effect + item effect) (:func:`simulate_accuracy_answers`, the same effects and
    SDs) and otherwise picks any of the choices at random. Returns ``{"c0": {(annotator,
    item): index of the choice}, ...}``, the form :func:`alpha_differences` takes. Conditions
    with equal ``knowing`` answer alike (the null of a difference of α). A condition's α is
    about the mean, over items and pairs of its annotators, of the chance both know."""
    known, cond, ann = simulate_accuracy_answers(knowing, annotators, items, annotator_sd=annotator_sd,
                                                 item_sd=item_sd, rng=rng)
    truth = rng.integers(0, choices, items)
    guess = rng.integers(0, choices, len(known))
    item = np.tile(np.arange(items), len(knowing) * annotators)
    picked = np.where(known > 0.5, truth[item], guess)
    out: dict[str, dict[tuple[str, str], int]] = {f"c{c}": {} for c in range(len(knowing))}
    for c, a, i, v in zip(cond.tolist(), ann.tolist(), item.tolist(), picked.tolist()):
        out[f"c{c}"][(f"a{a}", f"i{i:03d}")] = v
    return out


def accuracy_power(accuracies: Sequence[float], annotators: int, items: int, *, annotator_sd: float = 0.5,
                   item_sd: float = 1.0, sims: int = 400, seed: int = 0, test_level: float = 0.05,
                   contrast: tuple[int, int] | None = None, time_budget: float | None = None) -> dict:
    """Share of ``sims`` seeded simulated studies in which :func:`accuracy_model` rejects at
    ``test_level``: the omnibus test, or the contrast of conditions ``contrast`` = (i, j).
    A study the model leaves undefined counts as not rejected. ``time_budget`` (seconds)
    stops early; ``sims`` says how many were run. With all accuracies equal this is the
    false-positive rate."""
    rng = np.random.default_rng(seed)
    names = [f"c{k}" for k in range(len(accuracies))]
    rejected = run = 0
    start = time.perf_counter()
    for _ in range(sims):
        correct, cond, ann = simulate_accuracy_answers(accuracies, annotators, items, annotator_sd=annotator_sd,
                                                       item_sd=item_sd, rng=rng)
        result = accuracy_model(correct, [names[c] for c in cond], ann, conditions=names)
        run += 1
        if "undefined_because" not in result:
            if contrast is None:
                p = result["omnibus"]["p_value"]
            else:
                p = next(c["p_value"] for c in result["contrasts"]
                         if {c["condition"], c["versus"]} == {names[contrast[0]], names[contrast[1]]})
            rejected += p is not None and p < test_level
        if time_budget is not None and time.perf_counter() - start > time_budget:
            break
    share = rejected / run if run else None
    return {"power": share, "sims": run, "monte_carlo_se": math.sqrt(share * (1 - share) / run) if run else None}


def accuracy_sd_to_logit(sd_points: float, accuracies: Sequence[float]) -> float:
    """A between-annotator SD of accuracy (as a share, e.g. 0.10) on the logit scale, by the
    delta method at the mean accuracy: sd / (p̄ (1 − p̄))."""
    p = float(np.clip(np.mean(accuracies), 0.05, 0.95))
    return sd_points / (p * (1 - p))


def plan_annotators(accuracies: Sequence[float], *, annotator_sd_points: float = 0.10, items: int = 20,
                    item_sd: float = 1.0, target_power: float = 0.8, test_level: float = 0.05,
                    max_annotators: int = 30, sims: int = 200, seed: int = 0, time_budget: float = 6.0) -> dict:
    """Annotators per condition for ``target_power`` in the omnibus test of
    :func:`accuracy_model`, by simulating studies with that model's assumptions
    (:func:`simulate_accuracy_answers`).

    accuracies: expected accuracy per condition (shares); annotator_sd_points: the expected
    SD of annotators' accuracies within a condition (a share: 0.10 = 10 points), turned into
    the logit scale by :func:`accuracy_sd_to_logit`. The search doubles the group size from 2
    until the power is reached, then bisects; every size uses the same seeds. Each size gets
    ``sims`` studies, fewer when ``time_budget`` (seconds, all sizes together) runs short:
    the answer names the simulations run and the Monte-Carlo SE of each power."""
    if len(accuracies) < 2:
        raise ValueError("give the expected accuracy of at least two conditions")
    if any(not 0 < a < 1 for a in accuracies):
        raise ValueError("accuracies are shares strictly between 0 and 1 (e.g. 0.6)")
    sd_logit = accuracy_sd_to_logit(annotator_sd_points, accuracies)
    deadline = time.perf_counter() + time_budget
    tried: dict[int, dict] = {}

    def power(n: int) -> dict:
        if n not in tried:
            # an equal share of the time for each size (a search tries about 7), so the last sizes
            # tried, where the answer is decided, are not the ones simulated least
            share = min(time_budget / 7, max(deadline - time.perf_counter(), 0.05))
            tried[n] = accuracy_power(accuracies, n, items, annotator_sd=sd_logit, item_sd=item_sd, sims=sims,
                                      seed=seed, test_level=test_level, time_budget=share)
        return tried[n]

    low, high = 1, 2
    while power(high)["power"] < target_power:
        if high >= max_annotators or time.perf_counter() > deadline:
            high = None
            break
        low, high = high, min(2 * high, max_annotators)
    if high is not None:
        while high - low > 1 and time.perf_counter() < deadline:
            mid = (low + high) // 2
            if power(mid)["power"] >= target_power:
                high = mid
            else:
                low = mid
    return {"annotators_per_condition": high, "target_power": target_power, "test_level": test_level,
            "annotator_sd_logit": sd_logit, "items": items, "item_sd_logit": item_sd,
            "tried": [{"annotators": n, **tried[n]} for n in sorted(tried)],
            "exact": high is not None and (high - low <= 1),
            "note": None if high is not None else f"80 % power is not reached with up to {max(tried)} annotators "
                                                  "per condition in the time given"}


# -- per-annotator quality ---------------------------------------------------------------------------
def annotator_quality(study) -> list[dict]:
    """Per enrolment of ``study`` (excluded ones too, so the researcher can decide): counted
    answers, median and fastest seconds per item, accuracy against the model (simulation),
    mean confidence, attention checks right of answered, rounds of practice taken, whether
    they finished and whether they are excluded."""
    from types import SimpleNamespace

    from studies.models import Study
    from studies.quality import answer_value, same_answer

    from .models import Response

    rows: dict[int, list] = {}
    checks: dict[int, list[bool]] = {}
    # the study's items once, its answers as plain columns (no join per answer)
    items = {pk: rest for pk, *rest in study.items.values_list("pk", "bundle_item__prediction", "attention_check",
                                                                "expected_answer")}
    for enrolment_id, item_id, seconds, choice, category, free_text, confidence in (
            Response.objects.filter(enrolment__study=study, is_practice=False).order_by()
            .values_list("enrolment_id", "item_id", "seconds_on_item", "choice", "category", "free_text", "confidence")):
        prediction, is_check, expected = items[item_id]
        if is_check:  # scored against its expected answer, never counted
            given = answer_value(SimpleNamespace(choice=choice, category=category, free_text=free_text), study.task)
            checks.setdefault(enrolment_id, []).append(same_answer(given, expected, study.task))
        else:
            rows.setdefault(enrolment_id, []).append((seconds, choice, prediction, confidence))
    out = []
    for pk, pseudonym, condition, practice_rounds, completed_at, excluded in (
            study.enrolments.order_by("condition_id", "pseudonym").values_list(
                "pk", "pseudonym", "condition__name", "practice_rounds", "completed_at", "excluded")):
        answers = rows.get(pk, [])
        seconds = [s for s, *_ in answers if s is not None]
        confidence = [c for *_, c in answers if c is not None]
        out.append({
            "annotator": pseudonym, "condition": condition, "answers": len(answers),
            "median_seconds": float(np.median(seconds)) if seconds else None,
            "fastest_seconds": float(min(seconds)) if seconds else None,
            "accuracy": (sum(c == p for _, c, p, _ in answers) / len(answers)
                         if answers and study.task == Study.Task.SIMULATION else None),
            "mean_confidence": float(np.mean(confidence)) if confidence else None,
            "attention_right": sum(checks.get(pk, [])), "attention_checks": len(checks.get(pk, [])),
            "practice_rounds": len(practice_rounds or []),
            "completed": completed_at is not None, "excluded": excluded,
        })
    return out


# -- one study ---------------------------------------------------------------------------------------
def _study_answers(conditions, datas, task) -> dict:
    """The arrays the models take, from the counted answers (``ConditionAnswers.rows``)."""
    from studies.models import Study

    correct, confidence, alpha_answers = [], [], {}
    for c, data in zip(conditions, datas):
        metrics_answers = {}
        for r in data.rows:
            if task == Study.Task.SIMULATION:
                correct.append((float(r.choice == r.prediction), c.name, r.enrolment_id))
            if r.confidence is not None:
                confidence.append((r.confidence, c.name, r.enrolment_id))
        if task == Study.Task.SIMULATION:
            positions = {pk: {v: k for k, v in reversed(list(enumerate(choices)))}
                         for pk, choices in data.choices.items()}
            metrics_answers = {(r.annotator, r.item): positions[r.study_item][r.choice]
                               for r in data.rows if r.choice in positions.get(r.study_item, ())}
        elif task == Study.Task.ERROR:
            metrics_answers = {(r.annotator, r.item): r.category for r in data.rows if r.category}
        else:
            metrics_answers = {(r.annotator, r.item): r.concept_cluster for r in data.rows if r.concept_cluster}
        alpha_answers[c.name] = metrics_answers
    return {"correct": correct, "confidence": confidence, "alpha": alpha_answers}


def study_analysis(study, conditions=None, answers=None) -> dict:
    """Every test between the conditions of ``study``, computed once per version of its
    counted answers and kept in the cache: what the page, the API and the exports show.

    α is over the same values as :func:`annotations.selectors.condition_metrics` (the answer's
    position in the item's choices; the error category; the saved concept cluster).
    ``conditions`` (the study's, in its order) and their ``answers``
    (:func:`annotations.selectors.conditions_answers`): when the caller has read them."""
    from django.core.cache import cache

    from .selectors import _code_version, conditions_answers

    if conditions is None or answers is None:  # (the page passes what it has read already)
        conditions = list(study.conditions.select_related("study"))
        answers = conditions_answers(conditions)
    datas = answers
    source = hashlib.blake2b(open(__file__, "rb").read(), digest_size=8).hexdigest()
    version = hashlib.blake2b("|".join([source, _code_version(), study.task, *(d.version for d in datas)]).encode(),
                              digest_size=16).hexdigest()
    key = f"analysis:{study.pk}:{version}"
    try:
        hit = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache that does not answer only costs the computation
        hit = None
    if hit is not None:
        return hit
    result = _json_safe(_analysis_of(study, conditions, datas))
    try:
        cache.set(key, result, timeout=7 * 24 * 3600)
    except Exception:  # noqa: BLE001
        pass
    return result


ANALYSIS_COLUMNS = ["test", "condition", "versus", "effect", "estimate", "low", "high", "statistic", "df",
                    "p_value", "p_holm", "difference", "method"]


def analysis_rows(analysis: dict) -> list[dict]:
    """:func:`study_analysis` as one row per test (omnibus) and per contrast, for the CSV
    export: the same numbers, unrounded."""
    rows = []
    for test, effect, difference in (("accuracy", "odds ratio of a right answer", "accuracy difference"),
                                     ("confidence", "odds ratio of a higher confidence", "mean difference")):
        model = analysis.get(test)
        if not model:
            continue
        if "undefined_because" in model:
            rows.append({"test": f"{test}: not tested", "method": model["undefined_because"]})
            continue
        o = model["omnibus"]
        spread = "accuracies" if test == "accuracy" else "means"
        rows.append({"test": f"{test}: all conditions equal", "statistic": o["F"], "df": f"{o['df1']}, {o['df2']}",
                     "p_value": o["p_value"], "effect": f"range of the conditions' {spread}",
                     "difference": o.get("accuracy_range", o.get("mean_range")), "method": model["estimator"]})
        for c in model["contrasts"]:
            rows.append({"test": test, "condition": c["condition"], "versus": c["versus"], "effect": effect,
                         "estimate": c["odds_ratio"], "low": c["interval"][0], "high": c["interval"][1],
                         "statistic": c["t"], "df": c["df"], "p_value": c["p_value"], "p_holm": c["p_holm"],
                         "difference": c["difference"], "method": difference})
    for p in analysis["alpha_difference"]["pairs"]:
        rows.append({"test": "alpha difference", "condition": p["condition"], "versus": p["versus"],
                     "effect": "α − α versus", "estimate": p["difference"],
                     "low": p["interval"][0] if p["interval"] else None,
                     "high": p["interval"][1] if p["interval"] else None, "statistic": p["t"], "df": p["df"],
                     "p_value": p["p_value"], "p_holm": p["p_holm"],
                     "method": p["undefined_because"] or analysis["alpha_difference"]["method"]})
    return [{k: ("" if r.get(k) is None else r.get(k)) for k in ANALYSIS_COLUMNS} for r in rows]


def _json_safe(value):
    """``value`` with every number a plain int or float and every non-finite one None, so the
    API's strict JSON, the export and the page carry the same figures."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _analysis_of(study, conditions, datas) -> dict:
    from studies.models import Study

    names = [c.name for c in conditions]
    data = _study_answers(conditions, datas, study.task)
    out: dict = {"level": LEVEL, "conditions": names}
    if study.task == Study.Task.SIMULATION:
        rows = data["correct"]
        out["accuracy"] = accuracy_model([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                         conditions=names)
    rows = data["confidence"]
    out["confidence"] = confidence_model([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                         conditions=names) if rows else {"undefined_because": "no confidences"}
    out["alpha_difference"] = {"method": ALPHA_DIFFERENCE_METHOD, "pairs": alpha_differences(data["alpha"])}
    return out
