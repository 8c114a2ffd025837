"""The tests between conditions (annotations.analysis): each estimator against a hand-computed
value, the α difference against the one α function, the planner, and the page, the API and
the JSON export showing the same numbers."""

import math

import numpy as np
import pytest
from rest_framework.test import APIClient
from scipy import stats

from annotations.analysis import (
    accuracy_model,
    alpha_differences,
    confidence_model,
    holm,
    plan_annotators,
    simulate_accuracy_answers,
    simulate_choice_answers,
    study_analysis,
)
from annotations.exports import study_json
from annotations.selectors import agreement
from studies.services import enrol
from tests.platform.study_helpers import answer_all, make_study


def _long(counts: dict[str, list[int]], items: int = 20):
    """``{condition: [correct answers of each annotator]}`` → one entry per answer."""
    correct, condition, annotator = [], [], []
    for name, per in counts.items():
        for k, right in enumerate(per):
            correct += [1] * right + [0] * (items - right)
            condition += [name] * items
            annotator += [f"{name}-{k}"] * items
    return correct, condition, annotator


def test_accuracy_odds_ratio_and_its_t_test_match_the_hand_computed_quasi_binomial_values():
    # A: 12, 14, 10 of 20 right (pooled 0.6); B: 16, 18, 14 of 20 (0.8). The one-way binomial
    # GLM is saturated in condition, so its odds ratio is the pooled 2 × 2 table's cross ratio
    # (0.8/0.2)/(0.6/0.4) = 8/3. Pearson χ² = 0 + 4/4.8 + 4/4.8 + 0 + 4/3.2 + 4/3.2 = 25/6
    # over 6 − 2 = 4 df: φ = 25/24; se(log OR) = √(φ (1/(60·0.24) + 1/(60·0.16))).
    result = accuracy_model(*_long({"A": [12, 14, 10], "B": [16, 18, 14]}), conditions=["A", "B"])
    phi = 25 / 24
    se = math.sqrt(phi * (1 / (60 * 0.24) + 1 / (60 * 0.16)))
    t = math.log(8 / 3) / se
    (c,) = result["contrasts"]
    assert result["dispersion"] == pytest.approx(phi)
    assert (c["condition"], c["versus"]) == ("B", "A")
    assert c["odds_ratio"] == pytest.approx(8 / 3)
    assert c["se"] == pytest.approx(se)
    assert c["p_value"] == pytest.approx(2 * stats.t.sf(t, 4), rel=1e-5)  # IRLS stops at its tolerance
    q = stats.t.ppf(0.975, 4)
    assert c["interval"] == pytest.approx([8 / 3 * math.exp(-q * se), 8 / 3 * math.exp(q * se)])
    assert c["difference"] == pytest.approx(0.2)  # the effect beside the p-value, in accuracy
    # with two conditions the omnibus F is the contrast's t squared, on (1, 4) df
    assert result["omnibus"]["F"] == pytest.approx(t * t, rel=1e-5)
    assert result["omnibus"]["p_value"] == pytest.approx(c["p_value"])


def test_accuracy_model_says_why_it_cannot_test():
    assert "undefined_because" in accuracy_model(*_long({"A": [10], "B": [12]}))  # 2 annotators, 2 conditions
    assert "infinite" in accuracy_model(*_long({"A": [20, 20], "B": [10, 12]}))["undefined_because"]


def test_two_level_ordinal_model_is_the_quasi_binomial_model_of_the_same_answers():
    # confidence 1 or 2 only: the proportional-odds model is a logistic regression, its odds
    # ratio the cross ratio of the table. A: 30 high of 60; B: 45 high of 60 → (45·30)/(15·30) = 3;
    # and its annotator dispersion is the Pearson φ of the counts, so every figure equals the
    # accuracy model's on the same 0/1 answers
    highs = {"A": [10, 8, 12], "B": [15, 13, 17]}
    conf, cond, ann = [], [], []
    for name, per in highs.items():
        for k, high in enumerate(per):
            conf += [2] * high + [1] * (20 - high)
            cond += [name] * 20
            ann += [f"{name}-{k}"] * 20
    ordinal = confidence_model(conf, cond, ann, conditions=["A", "B"])
    binary = accuracy_model(*_long(highs), conditions=["A", "B"])
    (c,), (b,) = ordinal["contrasts"], binary["contrasts"]
    assert c["odds_ratio"] == pytest.approx(3.0, rel=1e-4) == b["odds_ratio"]
    assert ordinal["dispersion"] == pytest.approx(binary["dispersion"], rel=1e-3)
    assert c["se"] == pytest.approx(b["se"], rel=1e-3) and c["p_value"] == pytest.approx(b["p_value"], rel=1e-3)
    assert c["difference"] == pytest.approx(0.25)
    assert ordinal["omnibus"]["df2"] == 4


def test_ordinal_odds_ratio_follows_a_planted_shift_on_the_latent_scale():
    # a logistic latent variable shifted by log 2.5 in B: the proportional-odds OR estimates 2.5
    rng = np.random.default_rng(1)
    n = 4000
    cond = np.repeat(["A", "B"], n)
    eta = rng.logistic(size=2 * n) + np.where(cond == "B", math.log(2.5), 0.0)
    conf = 1 + np.searchsorted([-1.5, -0.3, 0.8, 2.0], eta)
    ann = [f"{c}{k % 20}" for k, c in enumerate(cond)]
    (c,) = confidence_model(conf, cond, ann, conditions=["A", "B"])["contrasts"]
    assert c["odds_ratio"] == pytest.approx(2.5, rel=0.1)
    assert c["interval"][0] < 2.5 < c["interval"][1]


def test_holm_adjusts_by_rank_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None], nan_ok=True)
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def _random_answers(rng, conditions=3, annotators=3, items=20, choices=4):
    return {f"c{j}": {(f"c{j}a{a}", f"i{i}"): int(rng.integers(0, choices)) for a in range(annotators)
                      for i in range(items)} for j in range(conditions)}


def _without(answers, annotator=None, item=None):
    return {(a, i): v for (a, i), v in answers.items() if a != annotator and i != item}


def test_every_left_out_alpha_of_the_difference_is_agreement_of_the_answers_left():
    from annotations.analysis import _alpha_leave_outs

    rng = np.random.default_rng(3)
    scattered = _random_answers(rng, conditions=1, annotators=4, items=8, choices=3)["c0"]
    for key in [k for k in scattered if rng.random() < 0.25]:  # missing answers
        del scattered[key]
    # x and y always answer 0: without z, every answer is the same and α is undefined
    one_dissenter = {(a, f"i{i}"): int(a == "z" and i % 3 == 0) for a in "xyz" for i in range(6)}
    undefined = 0
    for answers in (scattered, one_dissenter):
        items = sorted({i for _, i in answers}) + ["nobody answered this"]
        annotators, table, pairable = _alpha_leave_outs(answers, items)
        assert annotators == sorted({a for a, _ in answers}) and table.shape == (len(annotators) + 1, len(items) + 1)
        for j, annotator in enumerate([None, *annotators]):
            for i, item in enumerate([None, *items]):
                expected = agreement(_without(answers, annotator, item), interval=False)["alpha"]
                if expected is None:
                    undefined += 1
                    assert np.isnan(table[j, i])
                else:
                    assert table[j, i] == pytest.approx(expected, abs=1e-12)
        assert pairable.tolist() == [sum(1 for _, i in answers if i == item) >= 2 for item in items]
        assert not pairable[-1]
    assert undefined > 0


# three conditions of three annotators × five items (c1's f did not answer i5): the hand-computed
# two-way jackknife below, and its figures for c1 − c0 pinned
HAND_EXAMPLE = {
    "c0": {"a": [0, 1, 2, 0, 1], "b": [0, 1, 2, 1, 1], "c": [0, 2, 2, 0, 3]},
    "c1": {"d": [1, 1, 0, 2, 3], "e": [1, 0, 0, 2, 2], "f": [3, 1, 0, 2, None]},
    "c2": {"g": [0, 0, 1, 1, 2], "h": [2, 0, 1, 3, 2], "k": [0, 1, 1, 1, 0]},
}


def test_alpha_difference_is_the_two_way_jackknife_computed_by_hand():
    answers = {c: {(a, f"i{i + 1}"): v for a, row in rows.items() for i, v in enumerate(row) if v is not None}
               for c, rows in HAND_EXAMPLE.items()}
    items = [f"i{i}" for i in range(1, 6)]

    def alpha(ans):
        return agreement(ans, interval=False)["alpha"]

    def annotator_part(ans):  # m (V_ann − V_int), every item pairable here
        annotators = sorted({a for a, _ in ans})
        m, n = len(annotators), len(items)
        loo = np.array([alpha(_without(ans, a)) for a in annotators])
        spread = (m - 1) / m * ((loo - loo.mean()) ** 2).sum()
        interaction = sum((alpha(ans) - alpha(_without(ans, a)) - alpha(_without(ans, None, i))
                           + alpha(_without(ans, a, i))) ** 2 for a in annotators for i in items)
        return m * (spread - (m - 1) * (n - 1) / (m * n) * interaction)

    pooled = np.mean([annotator_part(a) for a in answers.values()])  # equal groups: equal weights
    rows = alpha_differences(answers)
    assert [(r["condition"], r["versus"]) for r in rows] == [("c1", "c0"), ("c2", "c0"), ("c2", "c1")]
    for row in rows:
        a, b = answers[row["condition"]], answers[row["versus"]]
        d = alpha(a) - alpha(b)
        left_out = np.array([alpha(_without(a, None, i)) - alpha(_without(b, None, i)) for i in items])
        variance = 4 / 5 * ((left_out - left_out.mean()) ** 2).sum() + max(0.0, pooled * (1 / 3 + 1 / 3))
        t = d / math.sqrt(variance)
        q = stats.t.ppf(0.975, 6)
        assert row["difference"] == pytest.approx(d, abs=1e-12) and row["df"] == 6
        assert row["se"] == pytest.approx(math.sqrt(variance), abs=1e-12) and row["t"] == pytest.approx(t)
        assert row["interval"] == pytest.approx([d - q * math.sqrt(variance), d + q * math.sqrt(variance)])
        assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 6))
    # by hand: c0 has 15 pairable values (0: 5, 1: 5, 2: 4, 3: 1) and 9 agreeing coincidences (3 + 1 + 3 + 1
    # + 1), α = 1 − 14 · 6 / (225 − 67) = 37/79; c1 has 14 (4, 4, 4, 2) and 8 (1 + 1 + 3 + 3 + 0), α = 1 − 13 · 6
    # / (196 − 52) = 11/24
    first = rows[0]
    assert (first["alpha"], first["alpha_versus"]) == pytest.approx((11 / 24, 37 / 79), abs=1e-12)
    assert (first["se"], first["t"], first["p_value"]) == pytest.approx((0.30957926446, -0.03237005251, 0.97522688731),
                                                                        abs=1e-10)
    assert [r["p_holm"] for r in rows] == holm([r["p_value"] for r in rows])


def test_alpha_difference_of_a_condition_with_itself_is_zero_with_p_one():
    rng = np.random.default_rng(0)
    same = _random_answers(rng, conditions=1)["c0"]
    (row,) = alpha_differences({"a": same, "b": {(f"b{a}", i): v for (a, i), v in same.items()}})
    assert row["difference"] == 0.0 and row["interval"][0] < 0 < row["interval"][1] and row["p_value"] == 1.0
    assert row["alpha"] == agreement(same, interval=False)["alpha"]


def test_alpha_difference_finds_agreement_against_random_answers():
    rng = np.random.default_rng(2)
    answers = _random_answers(rng, conditions=1)
    agreeing = {(f"x{a}", f"i{i}"): i % 4 for a in range(3) for i in range(20)}
    agreeing[("x0", "i0")] = 3  # not perfect, so α is below 1
    (row,) = alpha_differences({"random": answers["c0"], "agreeing": agreeing})
    assert row["condition"] == "agreeing" and row["difference"] > 0.6 and row["df"] == 4
    assert row["interval"][0] > 0 and row["p_value"] < 0.01


def test_alpha_difference_says_why_it_cannot_test():
    rng = np.random.default_rng(4)
    two = {key: v for key, v in _random_answers(rng, conditions=1)["c0"].items() if key[0] != "c0a2"}
    agreeing = {(f"x{a}", f"i{i}"): (i + (a == 0 and i < 5)) % 4 for a in range(2) for i in range(20)}
    (row,) = alpha_differences({"two": two, "agreeing": agreeing})
    assert row["difference"] is not None and row["interval"] is None and row["p_value"] is None
    assert "at least 3 annotators" in row["undefined_because"]
    # a third condition of three annotators gives the spread between annotators (2 degrees of freedom)
    rows = alpha_differences({"two": two, "agreeing": agreeing, "three": _random_answers(rng, conditions=1)["c0"]})
    assert rows[0]["df"] == 2 and rows[0]["interval"] is not None
    silent = {(f"s{a}", f"i{i}"): 0 for a in range(3) for i in range(20)}
    (row,) = alpha_differences({"silent": silent, "agreeing": agreeing})
    assert row["alpha_versus"] is None and row["difference"] is None
    assert row["undefined_because"] == "α of a condition is undefined"


def test_simulated_choice_answers_agree_as_planted():
    rng = np.random.default_rng(6)
    answers = simulate_choice_answers([0.3, 0.9], 10, 200, annotator_sd=0.0, item_sd=0.0, rng=rng)
    assert [len(a) for a in answers.values()] == [2000, 2000]
    assert {v for a in answers.values() for v in a.values()} == {0, 1, 2, 3}
    alphas = [agreement(a, interval=False)["alpha"] for a in answers.values()]
    assert alphas == pytest.approx([0.3 ** 2, 0.9 ** 2], abs=0.05)  # both know the item: they agree


def test_planner_needs_few_annotators_for_a_large_difference_and_more_for_a_smaller_one():
    large = plan_annotators([0.3, 0.9], annotator_sd_points=0.05, items=20, sims=60, time_budget=20)
    # 2 per condition leave the test 2 degrees of freedom: even 60 points need 3
    assert large["annotators_per_condition"] == 3 and large["exact"]
    assert [t["annotators"] for t in large["tried"]] == [2, 3, 4]  # doubled to 4, then bisected
    smaller = plan_annotators([0.6, 0.75], annotator_sd_points=0.10, items=20, sims=60, time_budget=20)
    assert smaller["annotators_per_condition"] is None or smaller["annotators_per_condition"] > 3
    with pytest.raises(ValueError):
        plan_annotators([0.6])


def test_simulated_answers_have_the_design_asked_for():
    correct, cond, ann = simulate_accuracy_answers([0.5, 0.9], 3, 10, annotator_sd=0.0, item_sd=0.0,
                                                   rng=np.random.default_rng(0))
    assert correct.shape == (60,) and set(cond) == {0, 1} and len(set(ann)) == 6


# -- the page, the API and the export agree ------------------------------------------------------------
def _study():
    """Two conditions × 3 annotators × 8 items; U's annotators answer 3, 4, 5 items as the model
    did, U+C's 5, 6, 7 (the first ones in the bundle's order)."""
    study = make_study(n_items=8, practice=0, conditions=[("U", ["U"], 3), ("U+C", ["U", "C"], 3)])
    seen = {"U": 0, "U+C": 0}
    for k in range(6):
        e = enrol(study, pseudonym=f"p{k}")
        right_on = (5 if e.condition.name == "U+C" else 3) + seen[e.condition.name]
        seen[e.condition.name] += 1

        def pick(item, right_on=right_on):
            prediction = item.bundle_item.prediction
            right = int(item.bundle_item.item_id[1:]) < right_on
            return {"choice": prediction if right else ("red" if prediction != "red" else "blue")}
        answer_all(e, pick)
    return study


@pytest.mark.django_db
def test_page_api_and_export_show_the_same_analysis(client):
    study = _study()
    analysis = study_analysis(study)
    (c,) = analysis["accuracy"]["contrasts"]
    assert (c["condition"], c["versus"]) == ("U+C", "U")
    api = APIClient()
    api.force_authenticate(study.owner)
    assert api.get(f"/api/studies/{study.pk}/analysis/").json() == analysis
    assert study_json(study)["analysis"] == analysis
    client.force_login(study.owner)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    from annotations.figures import figure

    assert f"<td>{figure(c['odds_ratio'], 2)}</td>" in page
    assert f"[{figure(c['interval'][0], 2)}, {figure(c['interval'][1], 2)}]" in page
    assert 'id="annotator-quality"' in page and page.count("<svg") >= 3
    pair = analysis["alpha_difference"]["pairs"][0]
    assert f"<td>{figure(pair['difference'], 2)}</td>" in page
    # the α being compared are the metrics' α, over the same values
    from annotations.selectors import condition_metrics

    metrics = {c.name: condition_metrics(c) for c in study.conditions.all()}
    assert (pair["alpha"], pair["alpha_versus"]) == (metrics["U+C"]["alpha"], metrics["U"]["alpha"])


@pytest.mark.django_db
def test_analysis_follows_an_exclusion():
    from studies.services import set_exclusion

    study = _study()
    before = study_analysis(study)
    e = study.enrolments.get(pseudonym="p0")
    set_exclusion(study, {"enrolment": str(e.pk), "excluded": "true", "reason": "rushed"}, study.owner)
    after = study_analysis(study)
    assert sum(c["annotators"] for c in after["accuracy"]["conditions"]) == 5
    assert after != before


@pytest.mark.django_db
def test_annotator_quality_lists_time_accuracy_and_exclusions(client):
    from annotations.analysis import annotator_quality

    study = _study()
    rows = annotator_quality(study)
    assert len(rows) == 6 and all(r["answers"] == 8 for r in rows)
    assert all(0 <= r["accuracy"] <= 1 for r in rows)


@pytest.mark.django_db
def test_planner_page_answers_and_refuses_bad_input(client):
    study = _study()
    client.force_login(study.owner)
    ok = client.get("/studies/plan/", {"accuracies": "30, 90", "spread": "5", "items": "20"})
    assert ok.status_code == 200 and 'id="planner-answer"' in ok.content.decode()
    assert "annotators per condition" in ok.content.decode()
    bad = client.get("/studies/plan/", {"accuracies": "60"})
    assert bad.status_code == 400 and "one per condition" in bad.content.decode()
    prefilled = client.get("/studies/plan/", {"study": study.pk})
    assert prefilled.status_code == 200 and "U, U+C" in prefilled.content.decode()


@pytest.mark.django_db
def test_analysis_csv_carries_the_same_unrounded_numbers(client):
    import csv
    import io

    from tests.platform.study_helpers import body_text

    study = _study()
    analysis = study_analysis(study)
    client.force_login(study.owner)
    rows = list(csv.DictReader(io.StringIO(body_text(client.get(f"/studies/{study.pk}/analysis.csv")))))
    (contrast,) = [r for r in rows if r["test"] == "accuracy"]
    (expected,) = analysis["accuracy"]["contrasts"]
    assert float(contrast["estimate"]) == expected["odds_ratio"] and float(contrast["p_value"]) == expected["p_value"]
    assert [r for r in rows if r["test"] == "alpha difference"][0]["condition"] == "U+C"
