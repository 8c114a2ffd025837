"""Fair answer choices and randomization: choices of the prediction's answer type, shown in
each annotator's own order (and exported so), conditions drawn at random among the
least-filled, features named per item so no id ties a choice to them."""

import json
import random
import re

import pytest
from django.contrib.auth.models import User

from annotations.exports import response_rows, study_json
from studies.models import BundleItem, Condition
from studies.selectors import annotator_view, choices_shown
from studies.services import create_study, draw_condition, enrol, import_bundle, simulation_choices
from tests.platform.study_helpers import answer_all, make_study

pytestmark = pytest.mark.django_db

TYPES = {"colour": ["red", "green", "blue", "yellow", "purple"], "shape": ["square", "circle", "triangle"],
         "size": ["small", "large"]}


def _typed_bundle_item(prediction, label, probabilities, types=TYPES):
    study = make_study(n_items=1, practice=0)
    bundle = study.bundle
    bundle.class_names = [c for names in TYPES.values() for c in names]
    bundle.manifest = {"answer_types": types} if types else {}
    bundle.save()
    return BundleItem(bundle=bundle, item_id="x1", position=0, label=label, prediction=prediction, correct=False,
                      record={"probabilities": probabilities}, sections={})


def test_choices_are_all_of_the_predictions_answer_type():
    bi = _typed_bundle_item("green", "circle", [["green", 0.6], ["circle", 0.2], ["square", 0.1], ["blue", 0.05]])
    choices = simulation_choices(bi)
    assert len(choices) == 4 and set(choices) <= set(TYPES["colour"]) and "green" in choices and "blue" in choices
    assert choices == sorted(choices)  # the stored, canonical order
    assert simulation_choices(_typed_bundle_item("large", "large", [["large", 0.9]])) == ["large", "small"]


def test_a_bundle_without_answer_types_has_one_type_of_all_classes():
    bi = _typed_bundle_item("green", "circle", [["green", 0.6], ["circle", 0.2], ["square", 0.1]], types=None)
    choices = simulation_choices(bi)
    assert len(choices) == 4 and {"green", "circle", "square"} <= set(choices)


def test_two_annotators_see_the_choices_in_different_orders_and_the_export_says_which():
    study = make_study(n_items=12, practice=0)
    a, b = enrol(study, pseudonym="a"), enrol(study, pseudonym="b")
    orders = {}
    for e in (a, b):
        for item in study.items.all():
            shown = annotator_view(e, item)["choices"]
            assert sorted(shown) == sorted(item.choices) and shown == choices_shown(e, item)
            assert annotator_view(e, item)["choices"] == shown  # the same on every reload
            orders[e.pseudonym, item.pk] = shown
    assert any(orders["a", i.pk] != orders["b", i.pk] for i in study.items.all())
    firsts = [orders["a", i.pk][0] for i in study.items.all()]
    assert len(set(firsts)) > 1, "no place holds the same class for every item"
    answer_all(a, lambda item: {"choice": item.choices[0]})
    rows = [r for r in response_rows(study) if r["annotator"] == "a"]
    by_item = {i.bundle_item.item_id: i.pk for i in study.items.all()}
    assert all(r["choices_shown"].split(" | ") == orders["a", by_item[r["item"]]] for r in rows)
    assert json.loads(json.dumps(study_json(study)))["responses"][0]["choices_shown"]


def test_the_order_shown_on_the_page_is_the_annotators_own(client):
    study = make_study(n_items=6, practice=0)
    url_of = {}
    for name in ("p1", "p2"):
        client.cookies.clear()
        url_of[name] = client.get(f"/join/{study.invite_token}/", {"PROLIFIC_PID": name})["Location"]
        client.post(url_of[name], {"form": "consent", "agree": "yes"})
        client.post(url_of[name], {"form": "instructions"})
    pages = {n: client.get(u).content.decode() for n, u in url_of.items()}
    shown = {n: re.findall(r'name="choice" value="([^"]+)"', html) for n, html in pages.items()}
    from studies.models import Enrolment, StudyItem

    for name, order in shown.items():
        e = Enrolment.objects.get(pseudonym=name)
        assert order == choices_shown(e, StudyItem.objects.get(pk=e.item_order[0]))


def test_ties_in_the_least_filled_assignment_are_drawn_at_random_and_recorded():
    study = make_study(n_items=1, practice=0, conditions=(("A", ["U"], 0), ("B", ["U"], 0), ("C", ["U"], 0)))
    conditions = list(study.conditions.order_by("pk"))
    for c in conditions:
        c.fill = 0
    drawn = {draw_condition(conditions, seed)[0].name for seed in range(40)}
    assert drawn == {"A", "B", "C"}, "every tied condition can be drawn, not only the lowest id"
    pick, record = draw_condition(conditions, 7)
    assert record == {"seed": 7, "fill": 0, "tied": ["A", "B", "C"], "drawn": pick.name}
    assert random.Random(7).choice(conditions) == pick  # the record reproduces the draw
    conditions[1].fill = 1  # the least-filled still come first
    assert {draw_condition(conditions, seed)[0].name for seed in range(40)} == {"A", "C"}
    e = enrol(study, pseudonym="first")
    assert e.assignment["drawn"] == e.condition.name and e.assignment["tied"] == ["A", "B", "C"]
    tied = list(Condition.objects.filter(study=study, name__in=e.assignment["tied"]).order_by("pk"))
    assert random.Random(e.assignment["seed"]).choice(tied) == e.condition


def test_the_first_joiners_of_many_studies_do_not_all_land_in_the_lowest_id():
    firsts = set()
    for _ in range(12):
        study = make_study(n_items=1, practice=0, conditions=(("A", ["U"], 3), ("B", ["U"], 3)))
        firsts.add(enrol(study).condition.name)
    assert firsts == {"A", "B"}


# -- features by per-item names ----------------------------------------------------------------
@pytest.fixture
def full_study(bundle_copy):
    owner = User.objects.create_user("researcher")
    bundle = import_bundle(bundle_copy, owner=owner)
    return create_study(owner, bundle, title="Letters", presets=["MultiViz (U+C+Rℓ+Rg+P)"], practice=0,
                        open_now=True)


def _walk_to_item(client, study):
    url = client.get(f"/join/{study.invite_token}/")["Location"]
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "instructions"})
    return url


def test_features_reach_the_annotator_by_per_item_letters_only(client, full_study):
    from studies.models import Enrolment

    url = _walk_to_item(client, full_study)
    html = client.get(url).content.decode()
    e = Enrolment.objects.get()
    state = json.dumps(client.get(f"/api/annotate/{e.token}/").json())
    item = full_study.items.get(pk=e.item_order[0])
    ids = {f["feature"] for s in ("P", "Rl", "Rg") for f in item.bundle_item.sections[s]["features"]}
    for received in (html, state):
        assert not re.search(r"[Ff]eature z\d|#feature-\d|Rl-f\d|shared/Rg|/f\d+-|\"feature\": \d", received)
        assert re.search(r'[Ff]eature [A-E]\b|"feature": "[A-E]"', received)
    view = annotator_view(e, item)
    p_names = [f["feature"] for f in view["sections"]["P"]["features"]]
    assert len(p_names) == 5 and sorted(p_names) == ["A", "B", "C", "D", "E"]
    assert {f["feature"] for f in view["sections"]["Rl"]["features"]} <= set(p_names)
    rows = [d for f in view["sections"]["Rg"]["features"] for side in ("max", "min") for d in f[side]]
    # an Rg datapoint as the page draws it: its question, pictures, highlights, and the same as
    # modalities and views; never its dataset index or activation value
    assert rows and all(set(d) <= {"question", "image", "image_highlights", "text_highlights", "modalities", "views"}
                        for d in rows)
    assert not re.search(r'"(index|value|activation)"', json.dumps(rows))
    assert ids and all(isinstance(f["feature"], str) for f in view["sections"]["Rl"]["features"])
    for src in re.findall(r'src="(/a/[^"]+)"', html):  # every asset by an opaque name that loads
        assert re.search(r"/assets/[0-9a-f]{24}\.png\?key=", src) and client.get(src).status_code == 200


def test_a_researcher_may_show_global_ids_with_a_warning_in_the_builder(client, full_study):
    from studies.models import Enrolment

    owner = full_study.owner
    owner.set_password("a-long-passphrase")
    owner.save()
    client.force_login(owner)
    c = full_study.conditions.get()
    edit = f"/studies/{full_study.pk}/edit/"
    assert "Warning" not in client.get(edit).content.decode()
    client.post(edit, {"action": "conditions", f"size-{c.pk}": "3", f"global_feature_ids-{c.pk}": "on"})
    c.refresh_from_db()
    assert c.global_feature_ids
    page = client.get(edit).content.decode()
    assert "Warning" in page and "shows global feature ids" in page
    client.logout()
    html = client.get(_walk_to_item(client, full_study)).content.decode()
    e = Enrolment.objects.get()
    p = e.study.items.get(pk=e.item_order[0]).bundle_item.sections["P"]["features"]
    assert f"feature z{p[0]['feature']}" in html
