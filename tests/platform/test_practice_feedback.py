"""Practice feedback shows the item again — the same partials as the item page, for the
annotator's condition (``annotator_view``) — with the model's answer and the annotator's own,
worded so that the model's answer reads as before ("predicted X —")."""

import re

import pytest

from tests.platform.annotator_pages import MULTIVIZ, asset_items, enrol_in, four_condition_study, item_pk, start_items

pytestmark = pytest.mark.django_db

# the model's answer as the practice feedback words it, read as the structural observers read it
PREDICTED = re.compile(r"predicted\s+(.+?)\s+—")


@pytest.fixture
def study(bundle_copy):
    return four_condition_study(bundle_copy)

FEATURE = re.compile(r"<h3>Feature [A-Z]</h3>")


def test_practice_feedback_shows_the_item_again_with_the_models_answer_and_the_annotators(client, study):
    e = enrol_in(client, study, MULTIVIZ)
    html = start_items(client, e)
    practice = study.items.get(is_practice=True)
    model = practice.bundle_item.prediction
    wrong = next(c for c in practice.choices if c != model)
    after = client.post(f"/a/{e.token}/", {"item": item_pk(html), "choice": wrong})
    feedback = client.get(after["Location"]).content.decode()
    assert f'id="your-answer">{wrong}<' in feedback and f'id="model-answer">{model}<' in feedback
    text = re.sub(r"<[^>]+>", " ", feedback)
    assert PREDICTED.search(re.sub(r"\s+", " ", text)).group(1) == model  # worded as before
    for page in ('id="overview"', 'id="features"', 'id="prediction"', "U · what matters on its own"):
        assert page in feedback, page
    assert FEATURE.search(feedback)  # a feature's block (its letter is drawn per item)
    assert asset_items(feedback, e.token) == {practice.pk}
    for url in re.findall(rf'src="(/a/{e.token}/items/\d+/assets/[^"]+)"', feedback):
        assert client.get(url.replace("&amp;", "&")).status_code == 200
    assert 'name="choice"' not in feedback and "live-sog" not in feedback  # shown, not answered again


def test_practice_feedback_shows_only_what_the_condition_shows(client, study):
    e = enrol_in(client, study, "U")
    html = start_items(client, e)
    practice = study.items.get(is_practice=True)
    after = client.post(f"/a/{e.token}/", {"item": item_pk(html), "choice": practice.bundle_item.prediction})
    feedback = client.get(after["Location"]).content.decode()
    assert "U · what matters on its own" in feedback and "well done" in feedback
    for hidden in ('id="features"', 'id="prediction"', "C · where the parts act together"):
        assert hidden not in feedback, hidden
    assert not FEATURE.search(feedback)


