"""Krippendorff's α: over what it is computed (the answer's position in the item's stored
choices in simulation), its interval (a studentized bootstrap over items that covers 0 when
annotators answer at random), and one computation behind every page, API answer and file."""

import json

import krippendorff
import numpy as np
import pytest

from annotations.models import Response
from annotations.plots import interval_plot
from annotations.selectors import (
    _alpha_of_weighted_items,
    _jackknife_se,
    _value_counts,
    agreement,
    condition_metrics,
)
from annotations.services import assign_concept_clusters
from studies.models import StudyItem
from studies.services import enrol
from tests.platform.study_helpers import CLASSES, answer_all, make_study


def answers_of(matrix) -> dict:
    """annotators × items matrix (NaN: not answered) → ``{(annotator, item): value}``."""
    return {(f"a{r}", f"i{i:03d}"): int(v) for (r, i), v in np.ndenumerate(matrix) if not np.isnan(v)}


def random_study(rng, annotators, items, choices=4):
    return rng.integers(0, choices, size=(annotators, items)).astype(float)


# -- the computation -----------------------------------------------------------------------------
def test_resampled_alpha_equals_the_krippendorff_package_on_the_resampled_matrix():
    rng = np.random.default_rng(3)
    m = random_study(rng, 4, 15, choices=3)
    m[rng.random(m.shape) < 0.2] = np.nan  # missing answers
    counts, why = _value_counts(answers_of(m))
    pairable = np.flatnonzero((~np.isnan(m)).sum(axis=0) >= 2)
    assert why == "" and len(counts) == len(pairable)
    for _ in range(5):
        picks = rng.integers(0, len(pairable), size=len(pairable))
        weights = np.bincount(picks, minlength=len(pairable)).astype(float)[None, :]
        expected = krippendorff.alpha(reliability_data=m[:, pairable[picks]], level_of_measurement="nominal")
        assert _alpha_of_weighted_items(counts, weights)[0] == pytest.approx(expected, abs=1e-12)


def test_the_jackknife_standard_error_is_that_of_the_package_leaving_out_each_item():
    rng = np.random.default_rng(4)
    m = random_study(rng, 3, 12)
    counts, _ = _value_counts(answers_of(m))
    loo = np.array([krippendorff.alpha(reliability_data=np.delete(m, i, axis=1), level_of_measurement="nominal")
                    for i in range(m.shape[1])])
    expected = np.sqrt((len(loo) - 1) / len(loo) * ((loo - loo.mean()) ** 2).sum())
    assert _jackknife_se(counts, np.ones((1, len(counts))))[0] == pytest.approx(expected, abs=1e-12)


def test_an_alpha_interval_contains_alpha_and_stays_within_minus_one_and_one():
    rng = np.random.default_rng(5)
    for _ in range(20):
        a = agreement(answers_of(random_study(rng, 3, 8, choices=2)))
        lo, hi = a["alpha_interval"]
        assert -1 <= lo <= a["alpha"] <= hi <= 1


# -- random answering ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("annotators", [3, 5])
def test_random_answering_gives_an_alpha_interval_covering_zero_in_95_percent_of_studies(annotators):
    # 1000 seeded studies of `annotators` × 20 items with 4 choices each, answered uniformly
    # at random: the true α is 0. Measured with other seeds: 95.9–97.4 % (SE 0.4 %).
    rng = np.random.default_rng(2024 + annotators)
    covered = []
    for _ in range(1000):
        lo, hi = agreement(answers_of(random_study(rng, annotators, 20)))["alpha_interval"]
        covered.append(lo <= 0 <= hi)
    assert np.mean(covered) >= 0.95


@pytest.mark.slow
def test_raw_labels_pooled_across_items_look_like_agreement_under_random_answering():
    # each item offers 4 of 40 labels; annotators pick one of the 4 at random. Over raw
    # labels α is far above 0 and its interval mostly excludes 0 (the defect); over the
    # position in the item's choices it is centred on 0.
    rng = np.random.default_rng(7)
    raw_alpha, raw_covered, index_alpha = [], [], []
    for _ in range(200):
        offered = np.stack([rng.choice(40, size=4, replace=False) for _ in range(20)])  # items × 4 labels
        picks = random_study(rng, 3, 20).astype(int)
        raw = agreement({(f"a{r}", f"i{i}"): int(offered[i, picks[r, i]]) for r in range(3) for i in range(20)})
        raw_alpha.append(raw["alpha"])
        raw_covered.append(raw["alpha_interval"][0] <= 0 <= raw["alpha_interval"][1])
        index_alpha.append(agreement(answers_of(picks))["alpha"])
    assert np.mean(raw_alpha) > 0.15 and np.mean(raw_covered) < 0.6
    assert abs(np.mean(index_alpha)) < 0.02


def test_annotators_who_know_the_answer_get_an_interval_above_zero():
    # each annotator gives the item's answer with probability 0.6, else a random choice
    rng = np.random.default_rng(11)
    above = []
    for _ in range(50):
        truth = rng.integers(0, 4, size=20)
        m = np.where(rng.random((3, 20)) < 0.6, truth, random_study(rng, 3, 20))
        above.append(agreement(answers_of(m))["alpha_interval"][0] > 0)
    assert np.mean(above) >= 0.9


# -- in a study ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_simulation_alpha_is_over_the_position_in_the_items_stored_choices_with_raw_labels_beside_it():
    study = make_study(n_items=4, practice=0, conditions=[("U", ["U"], 3)])
    offered = {0: ["red", "blue"], 1: ["green", "yellow"], 2: ["blue", "yellow"], 3: ["red", "green"]}
    for item in study.items.select_related("bundle_item"):
        StudyItem.objects.filter(pk=item.pk).update(choices=offered[item.bundle_item.position])
    picks = {"x": ["red", "green", "yellow", "red"], "y": ["red", "green", "yellow", "green"]}
    for name, labels in picks.items():
        answer_all(enrol(study, pseudonym=name), lambda item, labels=labels: {"choice": labels[item.bundle_item.position]})
    m = condition_metrics(study.conditions.get())
    # positions: x = (0, 0, 1, 0), y = (0, 0, 1, 1): the 8/15 of the hand-computed example
    assert m["alpha"] == pytest.approx(8 / 15) and m["answers_outside_choices"] == 0
    # raw labels: red 3, green 3, yellow 2 of n = 8; one disagreeing pair (red, green):
    # D_o = 2/8, D_e = (64 − 9 − 9 − 4)/56 = 3/4, α = 1 − (1/4)/(3/4) = 2/3
    assert m["alpha_raw_labels"] == pytest.approx(2 / 3)
    assert m["alpha_over"] == "position of the answer in the item's stored choice list"
    # an answer that is not among the stored choices (e.g. from an imported study) is missing
    Response.objects.filter(enrolment__pseudonym="y", item__bundle_item__position=3).update(choice="purple")
    m = condition_metrics(study.conditions.get())
    assert m["answers_outside_choices"] == 1 and m["alpha"] == pytest.approx(1.0)


def _study_with_answers(task):
    rng = np.random.default_rng(1)
    study = make_study(task=task, n_items=12, practice=1, conditions=[("U", ["U"], 3), ("U+C", ["U", "C"], 3)])
    for k, item in enumerate(study.items.all()):  # every item offers its choices in its own order
        StudyItem.objects.filter(pk=item.pk).update(choices=CLASSES[k % 4:] + CLASSES[:k % 4])
    categories = ["unimodal", "cross_modal", "prediction"]
    for p in range(6):
        e = enrol(study, pseudonym=f"p{p}")
        skill = 0.3 if e.condition.name == "U" else 0.8

        def pick(item, skill=skill):
            right = rng.random() < skill
            if task == "simulation":
                return {"choice": item.bundle_item.prediction if right else CLASSES[rng.integers(4)]}
            if task == "error":
                return {"category": categories[item.bundle_item.position % 3 if right else rng.integers(3)],
                        "confidence": 3}
            return {"free_text": f"concept {item.bundle_item.position if right else rng.integers(3)}", "confidence": 3}
        answer_all(e, pick)
    if task == "concept":
        assign_concept_clusters(study, {r.pk: r.free_text for r in Response.objects.filter(enrolment__study=study)})
    return study


@pytest.mark.django_db
@pytest.mark.parametrize("task", ["simulation", "error", "concept"])
def test_the_study_page_the_api_and_every_export_show_the_same_alpha_and_interval(client, task):
    from annotations.views import _dashboard_plots

    study = _study_with_answers(task)
    metrics = [condition_metrics(c) for c in study.conditions.all()]
    assert all(m["alpha"] is not None and m["alpha_interval"] is not None for m in metrics)
    client.force_login(study.owner)
    figures = [(m["condition"], m["alpha"], list(m["alpha_interval"]), m.get("alpha_raw_labels")) for m in metrics]

    def as_figures(rows):
        return [(m["condition"], m["alpha"], list(m["alpha_interval"]), m.get("alpha_raw_labels")) for m in rows]

    assert as_figures(client.get(f"/api/studies/{study.pk}/metrics/").json()) == figures
    assert as_figures(client.get(f"/api/studies/{study.pk}/export/").json()["metrics"]) == figures
    assert as_figures(json.loads(client.get(f"/studies/{study.pk}/export.json").content)["metrics"]) == figures

    cells = [f"{a:.2f} [{lo:.2f}, {hi:.2f}]" for _, a, (lo, hi), _ in figures]
    summary = client.get(f"/api/studies/{study.pk}/summary/").json()
    assert [r["agreement α"] for r in summary] == cells
    if task == "simulation":
        assert [r["raw-label α"] for r in summary] == [f"{raw:.2f}" for *_, raw in figures]
    latex = client.get(f"/studies/{study.pk}/summary.tex").content.decode()
    page = client.get(f"/studies/{study.pk}/").content.decode()
    for cell in cells:
        assert cell in latex and f"<td>{cell}</td>" in page
    plots = _dashboard_plots(study, metrics)
    assert all(svg in page for svg in plots)
    alpha_plot = interval_plot([{"label": c, "value": a, "low": lo, "high": hi} for c, a, (lo, hi), _ in figures],
                               title="Krippendorff's α (bootstrap 95 % interval over items)", lo=-0.5, hi=1,
                               ticks=[-.5, 0, .5, 1])
    assert alpha_plot in page
    if task == "concept":
        workspace = client.get(f"/studies/{study.pk}/concepts/").content.decode()
        assert all(cell in workspace for cell in cells)
