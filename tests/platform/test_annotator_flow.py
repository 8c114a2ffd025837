"""The annotator's flow in the browser's terms (HTTP), and what each condition may see."""

import re

import pytest
from django.contrib.auth.models import User

from annotations.models import Response
from studies.models import Enrolment, Study
from studies.services import answer_type, create_study, import_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(bundle_copy):
    owner = User.objects.create_user("researcher")
    bundle = import_bundle(bundle_copy, owner=owner)
    return create_study(owner, bundle, title="Shapes", presets=["U", "MultiViz (U+C+Rℓ+Rg+P)"], practice=1,
                        open_now=True)


def join(client, study, **params):
    response = client.get(f"/join/{study.invite_token}/", params)
    assert response.status_code == 302, response.content
    return response["Location"]


def to_first_item(client, url):
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "instructions"})
    return client.get(url)


def item_id(html):
    return int(re.search(r'name="item" value="(\d+)"', html).group(1))


def test_an_annotator_goes_from_consent_to_the_completion_code(client, study):
    study.completion_code = "C0DE42"
    study.save()
    url = join(client, study, PROLIFIC_PID="pid-1", STUDY_ID="s", SESSION_ID="x")
    assert "Before you start" in client.get(url).content.decode()
    client.post(url, {"form": "consent", "agree": "yes"})
    assert "Instructions" in client.get(url).content.decode()
    client.post(url, {"form": "instructions"})
    e = Enrolment.objects.get(pseudonym="pid-1")
    assert e.prolific_study_id == "s" and e.prolific_session_id == "x"
    # practice first, with feedback, then the counted item
    page = client.get(url).content.decode()
    assert "Practice item" in page
    choice = re.search(r'name="choice" value="([^"]+)"', page).group(1)
    after = client.post(url, {"item": item_id(page), "choice": choice, "seconds_on_item": "3.5",
                              "helpful_page": "features"})
    assert "/practice/" in after["Location"]
    assert "The model predicted" in client.get(after["Location"]).content.decode()
    page = client.get(url).content.decode()
    assert "Item 1 of 1" in page
    fields = {"item": item_id(page), "choice": re.search(r'name="choice" value="([^"]+)"', page).group(1)}
    if 'name="helpful_page"' in page:
        fields["helpful_page"] = "overview"
    client.post(url, fields)
    client.post(url, {"form": "closing", "clarity": "4", "comments": "fine"})
    done = client.get(url).content.decode()
    assert "C0DE42" in done
    e.refresh_from_db()
    assert e.step == "done" and e.completed_at and e.closing_answers["clarity"] == "4"
    assert Response.objects.filter(enrolment=e, is_practice=False).count() == 1


def test_coming_back_resumes_where_the_annotator_was(client, study):
    url = join(client, study)
    first = to_first_item(client, url).content.decode()
    assert join(client, study) == url  # the cookie brings them back to the same enrolment
    assert item_id(client.get(url).content.decode()) == item_id(first)
    assert Enrolment.objects.count() == 1


def test_what_a_u_only_annotator_receives_holds_no_other_stage_and_no_prediction(client, study):
    u_only = study.conditions.get(name="U")
    study.conditions.exclude(pk=u_only.pk).update(paused=True)
    url = join(client, study)
    html = to_first_item(client, url).content.decode()
    e = Enrolment.objects.get()
    assert e.condition == u_only
    item = study.items.get(pk=item_id(html)).bundle_item
    from studies.selectors import item_asset_paths

    names = {path.rsplit("/", 1)[-1]: name for name, path in item_asset_paths(study.items.get(pk=item_id(html))).items()}
    for forbidden in (names["C-phrase.png"], *(n for p, n in names.items() if p.startswith(("Rl-", "f"))),
                      "interacts with the image", "Features", "Prediction",
                      "live-sog", "probabilit", "The model predicted", "model answered"):
        assert forbidden not in html, forbidden
    # the prediction is one of the four choices, so it may appear only as a choice
    assert html.count(f'value="{item.prediction}"') == 1
    from studies.selectors import annotator_view

    view = annotator_view(e, study.items.get(pk=item_id(html)))
    assert set(view["sections"]) == {"U"} and "prediction" not in view and "label" not in view
    assert names["U-image.png"] in html  # U is there
    # a hidden stage's asset cannot be fetched, by its name or its bundle path
    base = f"/a/{e.token}/items/{item_id(html)}/assets"
    assert client.get(f"{base}/{names['U-image.png']}").status_code == 200
    assert client.get(f"{base}/{names['C-phrase.png']}").status_code == 404
    assert client.get(f"{base}/items/{item.item_id}/assets/U-image.png").status_code == 404
    assert client.get(f"/a/{e.token}/items/{item_id(html)}/live-sog", {"positions": "0"}).status_code == 403


def test_the_full_condition_shows_every_page(client, study):
    study.conditions.filter(name="U").update(paused=True)
    html = to_first_item(client, join(client, study)).content.decode()
    for shown in ("C · where the parts act together", "what drives the feature", "most", "Prediction", 'name="choice"'):
        assert shown in html, shown
    assert re.search(r"Feature [A-E]</h3>", html)


def test_a_forged_token_and_a_foreign_item_get_clear_errors(client, study):
    assert client.get("/a/not-a-real-token/").status_code == 404
    study.conditions.exclude(name="U").update(paused=True)
    url = join(client, study)
    to_first_item(client, url)
    e = Enrolment.objects.get()
    foreign = study.items.exclude(pk__in=e.item_order[:1]).first()
    response = client.post(url, {"item": foreign.pk, "choice": foreign.choices[0]})
    assert response.status_code == 400 and "not the item you are on" in response.content.decode()
    assert Response.objects.count() == 0


def test_a_bad_answer_shows_the_page_again_with_the_reason(client, study):
    url = join(client, study)
    html = to_first_item(client, url).content.decode()
    response = client.post(url, {"item": item_id(html), "choice": "not-a-class"})
    assert response.status_code == 400 and "is not one of this item&#x27;s choices" in response.content.decode()


@pytest.mark.parametrize("clock", ["inf", "nan", "1e308", "-3", "soon", ""])
def test_a_time_the_page_cannot_vouch_for_is_dropped_and_the_answer_kept(client, study, clock):
    url = join(client, study)
    html = to_first_item(client, url).content.decode()
    choice = re.search(r'name="choice" value="([^"]+)"', html).group(1)
    assert client.post(url, {"item": item_id(html), "choice": choice, "seconds_on_item": clock}).status_code == 302
    assert Response.objects.get().seconds_on_item is None
    assert Enrolment.objects.get().position == 1  # the annotator moved on


def test_joining_a_closed_study_says_so(client, study):
    study.status = Study.Status.CLOSED
    study.save()
    response = client.get(f"/join/{study.invite_token}/")
    assert response.status_code == 409 and "not open" in response.content.decode()
    assert client.get("/join/nope/").status_code == 404


def test_simulation_choices_hold_the_prediction_and_the_label_without_revealing_which(study):
    for item in study.items.all():
        bi = item.bundle_item
        assert bi.prediction in item.choices
        assert bi.label in item.choices or bi.label not in answer_type(bi.bundle, bi.prediction)
        assert item.choices == sorted(item.choices) and len(item.choices) == min(4, len(answer_type(bi.bundle,
                                                                                                 bi.prediction)))
        assert all(c in answer_type(bi.bundle, bi.prediction) for c in item.choices)


def test_an_error_study_annotator_in_the_multiviz_group_asks_for_live_sog(client, bundle_copy, eager_tasks):
    owner = User.objects.create_user("r2")
    bundle = import_bundle(bundle_copy, owner=owner)
    study = create_study(owner, bundle, title="Errors", task="error", presets=["MultiViz"], practice=0,
                         open_now=True)
    url = join(client, study)
    html = to_first_item(client, url).content.decode()
    assert "Pick words to see where they interact" in html and "Correct answer" in html
    e = Enrolment.objects.get()
    live = f"/a/{e.token}/items/{item_id(html)}/live-sog"
    body = client.get(live, {"positions": "0,1"}).json()
    assert body["heatmap"].startswith("data:image/png;base64,") and len(body["top_boxes"]) == 2
    assert client.get(live, {"positions": "77"}).status_code == 400
    no_viz = create_study(owner, bundle, title="Errors 2", task="error", presets=["No-Viz"], practice=0,
                          open_now=True)
    client.cookies.clear()
    page = to_first_item(client, join(client, no_viz)).content.decode()
    assert "Pick words" not in page and "U-image" not in page and "Correct answer" in page


@pytest.mark.slow
def test_a_condition_with_transformer_views_shows_them_and_others_do_not(client, tmp_path):
    from viz_engine.bundles.precompute import build_bundle

    out = tmp_path / "with-t"
    build_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", n_items=2, seed=2, stages=["U", "T"])
    owner = User.objects.create_user("r3")
    bundle = import_bundle(out, owner=owner)
    study = create_study(owner, bundle, title="T", presets=["U"], custom=[("U+T", ["U", "T"], {})], practice=0,
                         open_now=True)
    study.conditions.filter(name="U").update(paused=True)
    html = to_first_item(client, join(client, study)).content.decode()
    assert 'id="transformer"' in html and "cross-modal attention" in html and "words → image" in html
    assert html.count("<svg") >= 4 and "per head" in html and "head 4" in html
    study.conditions.filter(name="U").update(paused=False)
    study.conditions.filter(name="U+T").update(paused=True)
    client.cookies.clear()
    other = to_first_item(client, join(client, study)).content.decode()
    assert 'id="transformer"' not in other and "cross-modal attention" not in other


def test_a_model_without_attention_cannot_have_transformer_views(tmp_path):
    from viz_engine.bundles.format import BundleError
    from viz_engine.bundles.precompute import plan_bundle

    with pytest.raises(BundleError, match="has no transformer views"):
        plan_bundle(tmp_path / "x", dataset="shapes_vqa", model="shapes_vqa_late", n_items=2, stages=["T"])
    assert not (tmp_path / "x" / "plan.json").exists()


def test_a_double_click_never_skips_the_next_step(client, study):
    """The second POST of a double click arrives after the step moved on: it must not agree
    to the instructions for the annotator, nor send empty closing answers and finish."""
    url = join(client, study)
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "consent", "agree": "yes"})
    assert Enrolment.objects.get().step == Enrolment.Step.INSTRUCTIONS
    client.post(url, {"form": "instructions"})
    for _ in study.items.all():
        page = client.get(url).content.decode()
        fields = {"item": item_id(page), "choice": re.search(r'name="choice" value="([^"]+)"', page).group(1)}
        if 'name="helpful_page"' in page:
            fields["helpful_page"] = "overview"
        client.post(url, fields)
        client.post(url, fields)
    e = Enrolment.objects.get()
    assert e.step == Enrolment.Step.CLOSING and e.completed_at is None
    assert "Anything you want to tell us?" in client.get(url).content.decode()


@pytest.mark.parametrize("stages, asked", [(["U"], True), ([], False)])
def test_the_clarity_question_has_labelled_ends_and_is_not_asked_where_nothing_was_explained(client, stages, asked):
    from studies.services import enrol

    from .study_helpers import answer_all, make_study

    study = make_study(n_items=1, practice=0, conditions=(("shown", stages, 0),))
    e = answer_all(enrol(study, pseudonym="p"), lambda item: {"choice": item.choices[0]})
    page = client.get(f"/a/{e.token}/").content.decode()
    assert ('name="clarity"' in page) is asked
    assert ("1 · not clear at all" in page and "5 · very clear" in page) is asked
    client.post(f"/a/{e.token}/", {"form": "closing", "clarity": "4", "comments": "ok"})
    e.refresh_from_db()
    assert e.step == "done" and e.closing_answers == ({"clarity": "4", "comments": "ok"} if asked else {"comments": "ok"})


def test_a_clarity_outside_the_scale_is_refused_keeping_what_was_written(client):
    from studies.services import enrol

    from .study_helpers import answer_all, make_study

    study = make_study(n_items=1, practice=0)
    e = answer_all(enrol(study, pseudonym="p"), lambda item: {"choice": item.choices[0]})
    page = client.post(f"/a/{e.token}/", {"form": "closing", "clarity": "7", "comments": "the maps helped"})
    assert page.status_code == 400
    text = page.content.decode()
    assert "from 1 (not clear at all) to 5 (very clear)" in text and "the maps helped" in text
    e.refresh_from_db()
    assert e.step == "closing" and e.closing_answers == {}
