"""Training built in (issue 19): the instructions teach each visualization the condition
shows — a card with what it shows, how to read its colours and a worked example drawn on the
first practice item, by the item page's own partials —; the researcher may rewrite the cards,
under one rule for the builder, the API, the admin and the study import; a condition with no
stages gets no cards; nothing of a counted item is drawn."""

import json
import re
from collections import Counter

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotations.transfer import export_study, import_study
from studies.models import Study
from studies.services import StudyError, create_study, import_bundle, update_details
from studies.stage_views import StageView, register_stage_view, training_card, unregister_stage_view
from tests.platform.annotator_pages import MULTIVIZ, asset_items, enrol_in, four_condition_study, item_pk, start_items
from tests.platform.study_helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(bundle_copy):
    return four_condition_study(bundle_copy)


def card_ids(html: str) -> list[str]:
    return re.findall(r'<article class="card training-card" id="card-(\w+)"', html)


# -- the cards ---------------------------------------------------------------------------------------
def test_the_instructions_hold_a_card_per_stage_the_condition_shows_in_the_registry_order(client, study):
    e = enrol_in(client, study, MULTIVIZ)
    html = client.get(f"/a/{e.token}/").content.decode()
    assert card_ids(html) == ["U", "C", "Rl", "Rg", "P"]  # no T: the condition does not show it
    for stage in ("U", "C", "Rl", "Rg", "P"):
        card = training_card(stage)
        for text in (card.title, card.shows, card.colours, card.example):
            assert text.replace("'", "&#x27;") in html, (stage, text[:40])
    assert html.count("Worked example") == 5
    assert "orange" in html and "blue" in html  # the colours, on the cards and in the drawings' legends
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert [i for i, n in Counter(ids).items() if n > 1] == []  # examples drawn twice keep ids unique
    assert 'href="#feature-' not in html  # no link to a feature page the instructions do not have
    assert html.index('id="card-P"') < html.index('name="form" value="instructions"')  # Start after the cards
    u_only = enrol_in(client, study, "U")
    assert card_ids(client.get(f"/a/{u_only.token}/").content.decode()) == ["U"]


def test_the_worked_examples_are_drawn_on_the_first_practice_item_and_load(client, study):
    e = enrol_in(client, study, MULTIVIZ)
    html = client.get(f"/a/{e.token}/").content.decode()
    practice = study.items.get(is_practice=True)
    assert asset_items(html, e.token) == {practice.pk}  # nothing of the counted item
    for url in re.findall(rf'src="(/a/{e.token}/items/\d+/assets/[^"]+)"', html):
        assert client.get(url.replace("&amp;", "&")).status_code == 200
    # drawn by the item page's own partials: the practice item shows the same drawings
    item = start_items(client, e)
    assert item_pk(item) == practice.pk
    feature = re.search(r"<h3>Feature [A-Z]</h3>", html)  # the example's feature (letters are drawn per item)
    for heading in ("U · what matters on its own", "C · where the parts act together", feature and feature.group(0)):
        assert heading and heading in html and heading in item


def test_the_instructions_of_a_simulation_never_name_the_models_answer(client, study):
    e = enrol_in(client, study, MULTIVIZ)
    html = client.get(f"/a/{e.token}/").content.decode()
    for forbidden in ("The model predicted", "probabilit", "model answered", 'name="choice"'):
        assert forbidden not in html, forbidden


def test_a_condition_with_no_stages_gets_no_cards(client, study):
    e = enrol_in(client, study, "No-Viz")
    html = client.get(f"/a/{e.token}/").content.decode()
    assert card_ids(html) == [] and "Worked example" not in html and "/assets/" not in html
    assert 'name="form" value="instructions"' in html  # Start is there


def test_without_practice_items_the_cards_have_no_example_and_nothing_of_a_counted_item(client, bundle_copy):
    owner = User.objects.create_user("r2")
    bundle = import_bundle(bundle_copy, owner=owner)
    study = create_study(owner, bundle, title="No practice", presets=["U+C"], practice=0, open_now=True)
    e = enrol_in(client, study, "U+C")
    html = client.get(f"/a/{e.token}/").content.decode()
    assert card_ids(html) == ["U", "C"]
    assert "Worked example" not in html and "/assets/" not in html


def test_a_stage_registered_without_a_card_gets_one_from_its_engine_description():
    from viz_engine.bundles.registry import StageSpec, register_stage, unregister_stage

    register_stage(StageSpec("Toy", "Toy", description="a toy stage for tests"))
    register_stage_view(StageView("Toy", "overview", "annotate/stages/U.html"))
    try:
        card = training_card("Toy")
        assert (card.title, card.shows) == ("Toy", "A toy stage for tests.") and "legend" in card.colours
    finally:
        unregister_stage_view("Toy")
        unregister_stage("Toy")


# -- the researcher's cards -----------------------------------------------------------------------
def test_a_researchers_edited_card_text_shows_to_the_annotator(client, study):
    client.force_login(study.owner)
    edit = f"/studies/{study.pk}/edit/"
    page = client.get(edit).content.decode()
    assert 'name="card-U-shows"' in page and 'name="card-P-colours"' in page and 'name="card-T-shows"' not in page
    mine = "Orange patches are where the model looked.\r\nBlue ones pulled it away."
    saved = client.post(edit, {"action": "cards", "card-U-shows": mine, "card-U-title": training_card("U").title})
    assert saved.status_code == 302
    study.refresh_from_db()
    assert study.training_cards == {"U": {"shows": mine.replace("\r\n", "\n")}}  # the default title is not stored
    assert "(rewritten for this study)" in client.get(edit).content.decode()
    preview = client.get(f"/studies/{study.pk}/preview/{study.conditions.get(name='U').pk}/instructions/")
    assert preview.status_code == 200 and "Orange patches are where the model looked." in preview.content.decode()

    html = client.get(f"/a/{enrol_in(client, study, 'U').token}/").content.decode()
    assert "Orange patches are where the model looked." in html and "Blue ones pulled it away." in html
    assert training_card("U").shows not in html

    client.force_login(study.owner)
    client.post(edit, {"action": "cards", "card-U-shows": "  "})  # emptied: the default again
    study.refresh_from_db()
    assert study.training_cards == {}


def test_a_refused_card_keeps_what_the_researcher_wrote(client, study):
    client.force_login(study.owner)
    long = "x" * 2001
    page = client.post(f"/studies/{study.pk}/edit/", {"action": "cards", "card-C-example": long})
    assert page.status_code == 400
    assert "The C card&#x27;s worked example is longer than 2000 characters" in page.content.decode()
    assert long in page.content.decode()
    study.refresh_from_db()
    assert study.training_cards == {}


def test_the_api_writes_the_cards_through_the_builders_rule(study):
    api = APIClient()
    api.force_authenticate(study.owner)
    url = f"/api/studies/{study.pk}/"
    assert api.get(url).json()["training_cards"] == {}
    saved = api.patch(url, {"training_cards": {"Rl": {"title": "A feature, here", "colours": ""}}}, format="json")
    assert saved.status_code == 200 and saved.json()["training_cards"] == {"Rl": {"title": "A feature, here"}}
    for cards, message in [({"X": {"title": "t"}}, "training cards: 'X' is not a stage (U, C, Rl, Rg, P, T)"),
                           ({"U": {"colour": "t"}}, "training cards: 'colour' is not a text of the U card"),
                           ({"U": "t"}, "the U card must be an object of its texts"),
                           ({"U": {"title": 3}}, "the U card's title must be text"),
                           ([], "the training cards must be an object")]:
        refused = api.patch(url, {"training_cards": cards}, format="json")
        assert refused.status_code == 400 and message in refused.json()["detail"], refused.content
    study.refresh_from_db()
    assert study.training_cards == {"Rl": {"title": "A feature, here"}}


def test_the_admin_shows_the_cards_but_cannot_change_them(client):
    study = make_study()
    update_details(study, {"training_cards": {"U": {"title": "Ours"}}})
    admin = User.objects.create_superuser("admin", password="admin-passphrase")
    client.force_login(admin)
    change = f"/admin/studies/study/{study.pk}/change/"
    assert "Ours" in client.get(change).content.decode()
    client.post(change, {"owner": study.owner.pk, "training_cards": "{}", "conditions-TOTAL_FORMS": "1",
                         "conditions-INITIAL_FORMS": "1", "conditions-MIN_NUM_FORMS": "0",
                         "conditions-MAX_NUM_FORMS": "1000"})
    study.refresh_from_db()
    assert study.training_cards == {"U": {"title": "Ours"}}


def test_a_moved_study_keeps_its_cards_and_a_bad_card_in_a_document_is_refused_naming_it():
    study = make_study()
    update_details(study, {"training_cards": {"U": {"example": "Look at the circle."}}})
    document = json.loads(json.dumps(export_study(study)))
    assert document["study"]["training_cards"] == {"U": {"example": "Look at the circle."}}
    owner = study.owner
    study.delete()
    moved = import_study(document, owner)
    assert moved.training_cards == {"U": {"example": "Look at the circle."}}
    moved.delete()
    older = {**document, "study": {k: v for k, v in document["study"].items() if k != "training_cards"}}
    assert import_study(older, owner).training_cards == {}  # written before cards travelled
    Study.objects.all().delete()
    bad = {**document, "study": {**document["study"], "training_cards": {"U": {"title": "x" * 121}}}}
    with pytest.raises(StudyError, match=r"study\.training_cards: the U card's title is longer than 120"):
        import_study(bad, owner)
    assert not Study.objects.exists()


@pytest.mark.slow
def test_a_condition_with_transformer_views_gets_their_card_with_its_worked_example(client, tmp_path):
    from viz_engine.bundles.precompute import build_bundle

    out = tmp_path / "with-t"
    build_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", n_items=2, seed=2, stages=["U", "T"])
    owner = User.objects.create_user("r3")
    study = create_study(owner, import_bundle(out, owner=owner), title="T", presets=["U"],
                         custom=[("U+T", ["U", "T"], {})], practice=1, open_now=True)
    html = client.get(f"/a/{enrol_in(client, study, 'U+T').token}/").content.decode()
    assert card_ids(html) == ["U", "T"]
    card = html[html.index('id="card-T"'):]
    assert training_card("T").shows.replace("'", "&#x27;") in card
    assert "Worked example" in card and "cross-modal attention" in card and "<svg" in card
