"""The researcher's dashboard: permutation tests, per-item agreement, the live monitor,
plots, and studies shared between researchers."""

import re
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.plots import interval_plot
from annotations.selectors import compare_conditions, item_agreement, permutation_test
from studies.models import Enrolment
from annotations.selectors import monitor
from studies.services import enrol
from tests.platform.study_helpers import answer_all, make_study, start

pytestmark = pytest.mark.django_db


def test_exact_permutation_p_values_match_hand_counts():
    # pooled (1, .5, 0, 0), observed .75 − 0: of the 6 relabellings, 2 reach |diff| ≥ .75
    result = permutation_test([1, 0.5], [0, 0])
    assert result == {"difference": 0.75, "p_value": pytest.approx(1 / 3), "exact": True, "n_permutations": 6}
    # 3 vs 3 fully separated: only the two extreme splits of C(6, 3) = 20 reach it
    assert permutation_test([1, 1, 1], [0, 0, 0])["p_value"] == pytest.approx(2 / 20)
    assert permutation_test([0.5, 0.5], [0.5, 0.5])["p_value"] == 1.0
    assert permutation_test([], [1])["p_value"] is None


def test_large_groups_use_seeded_random_relabellings():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.2, 15), rng.normal(0.0, 0.2, 15)
    first = permutation_test(a, b, n_resamples=2000, seed=3)
    assert not first["exact"] and first["p_value"] == pytest.approx(1 / 2001)  # never reached by chance
    assert permutation_test(a, b, n_resamples=2000, seed=3) == first
    same = permutation_test(a, a.copy(), n_resamples=2000, seed=3)
    assert same["p_value"] > 0.9


def _two_condition_study():
    study = make_study(n_items=4, practice=0, conditions=[("U", ["U"], 5), ("U+C", ["U", "C"], 5)])
    # annotators alternate between the two conditions (least-filled first)
    for k in range(4):
        e = enrol(study, pseudonym=f"p{k}")
        right = e.condition.name == "U+C"
        answer_all(e, lambda item, right=right: {"choice": item.bundle_item.prediction if right else "red"})
    return study


def test_conditions_are_compared_on_their_annotators_accuracies():
    study = _two_condition_study()
    u, uc = study.conditions.get(name="U"), study.conditions.get(name="U+C")
    result = compare_conditions(uc, u)
    # U+C annotators: 1.0 each; U annotators answer "red": right on 1 of 4 items (0.25 each)
    assert result["difference"] == pytest.approx(0.75)
    assert result["exact"] and result["p_value"] == pytest.approx(2 / 6)


def test_item_agreement_counts_the_most_common_answer_and_matches_with_the_model():
    study = _two_condition_study()
    rows = item_agreement(study.conditions.get(name="U"))
    assert [r["answers"] for r in rows] == [2, 2, 2, 2]
    assert all(r["most_common"] == "red" and r["agreement"] == 1.0 for r in rows)
    assert sorted(r["matched_model"] for r in rows) == [0.0, 0.0, 0.0, 1.0]


def test_the_monitor_tells_active_completed_and_dropped_out_annotators_apart():
    study = make_study(n_items=2, practice=1, conditions=[("U", ["U"], 5)])
    done = enrol(study, pseudonym="done")
    answer_all(done, lambda item: {"choice": "red", "seconds_on_item": 4})
    Enrolment.objects.filter(pk=done.pk).update(completed_at=timezone.now(), step="done")
    start(enrol(study, pseudonym="active"))
    gone = enrol(study, pseudonym="gone")
    Enrolment.objects.filter(pk=gone.pk).update(last_seen_at=timezone.now() - timedelta(hours=2))
    m = monitor(study)
    assert m["conditions"][0] == {"condition": "U", "target": 5, "paused": False, "enrolled": 3, "active": 1,
                                "completed": 1, "dropped": 1, "declined": 0, "screened_out": 0}
    by_name = {a["annotator"]: a for a in m["annotators"]}
    assert by_name["done"]["done"] == 2 and by_name["done"]["of"] == 2  # practice not counted
    assert by_name["done"]["median_seconds_per_item"] == 4.0
    assert by_name["gone"]["state"] == "dropped" and by_name["gone"]["minutes_since_seen"] >= 119


def test_plots_draw_every_condition_and_say_when_a_value_is_undefined():
    svg = interval_plot([{"label": "U", "value": 0.5, "low": 0.4, "high": 0.6},
                         {"label": "U<C>", "value": None}], title="α", lo=0, hi=1, ticks=[0, 1])
    assert svg.startswith("<svg") and "U&lt;C&gt;" in svg and "undefined" in svg and svg.count("<circle") == 1


def test_a_shared_study_is_visible_to_its_collaborator_and_no_one_else(client):
    study = _two_condition_study()
    friend, stranger = User.objects.create_user("friend"), User.objects.create_user("stranger")
    study.shared_with.add(friend)
    client.force_login(friend)
    page = client.get(f"/studies/{study.pk}/")
    assert page.status_code == 200 and "Compare accuracies" in page.content.decode() and "<svg" in page.content.decode()
    assert client.get(f"/studies/{study.pk}/export.csv").status_code == 200
    monitor_json = client.get(f"/studies/{study.pk}/monitor.json").json()
    assert sum(c["enrolled"] for c in monitor_json["conditions"]) == 4
    u, uc = study.conditions.get(name="U"), study.conditions.get(name="U+C")
    compared = client.get(f"/studies/{study.pk}/compare.json", {"a": uc.pk, "b": u.pk}).json()
    assert compared["p_value"] == pytest.approx(1 / 3)
    assert client.get(f"/studies/{study.pk}/compare.json", {"a": "x"}).status_code == 400
    api = APIClient()
    api.force_authenticate(friend)
    assert [s["id"] for s in api.get("/api/studies/").json()] == [study.pk]
    client.force_login(stranger)
    for path in ("", "monitor.json", "compare.json", "export.csv"):
        assert client.get(f"/studies/{study.pk}/{path}").status_code == 404


@pytest.mark.slow
def test_the_model_debugging_report_names_error_features_and_compares_selections(client, settings, tmp_path,
                                                                                  bundle_copy, eager_tasks,
                                                                                  django_capture_on_commit_callbacks):
    from studies.services import import_bundle

    settings.DATA_DIR = tmp_path
    settings.EAGER_TASKS_IN_THREAD = False  # the task runs inside the request: its report is there after
    ada = User.objects.create_user("ada")
    bundle = import_bundle(bundle_copy, owner=ada)
    client.force_login(ada)
    url = f"/bundles/{bundle.pk}/debugging/"
    assert "No report yet" in client.get(url).content.decode()
    small = {"pool_size": 200, "held_out_size": 300, "budget": 20, "runs": 3}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, small).status_code == 302
    page = client.get(url).content.decode()
    assert page.count('class="feature"') == 5 and "model errors caught" in page
    for strategy in ("targeted", "random", "uncertainty"):
        assert f"<td>{strategy}</td>" in page
    image = re.search(r'src="(/bundles/\d+/debugging/f\d+-0\.png)"', page).group(1)
    assert client.get(image).status_code == 200
    assert client.get(f"/bundles/{bundle.pk}/debugging/report.json").status_code == 404
    client.logout()
    assert client.get(url).status_code == 302
