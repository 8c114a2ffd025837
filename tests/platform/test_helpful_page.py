"""“Which page helped you more?” offers exactly the pages the annotator had on that item
(Overview and the pages of the stages shown), and the one write path accepts exactly those:
anything else is refused with a clear message and nothing saved is lost. The export's
column is unchanged."""

import re

import pytest
from rest_framework.test import APIClient

from annotations.exports import response_rows
from annotations.models import Response
from studies.models import Enrolment
from tests.platform.annotator_pages import MULTIVIZ, enrol_in, four_condition_study, item_pk, start_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(bundle_copy):
    return four_condition_study(bundle_copy)


def helpful_values(html: str) -> list[str]:
    return re.findall(r'name="helpful_page" value="(\w+)"', html)


def to_counted_item(client, study, condition: str):
    e = enrol_in(client, study, condition)
    study.conditions.update(ask_helpful_page=True)
    html = start_items(client, e)
    first = study.items.get(pk=item_pk(html))
    client.post(f"/a/{e.token}/", {"item": first.pk, "choice": first.choices[0]})  # the practice item
    return e, client.get(f"/a/{e.token}/").content.decode()


@pytest.mark.parametrize("condition, pages", [
    (MULTIVIZ, ["overview", "features", "prediction"]),
    ("U+C+Rℓ", ["overview", "features"]),
    ("U", []),  # one page: nothing to choose between, not asked
])
def test_the_helpful_page_question_offers_exactly_the_pages_of_the_item(client, study, condition, pages):
    _, html = to_counted_item(client, study, condition)
    assert helpful_values(html) == pages
    titles = re.findall(r'name="helpful_page" value="\w+" required > (\w+)</label>', html)
    assert titles == [p.capitalize() for p in pages]


def test_an_unknown_helpful_page_is_refused_with_a_clear_message_and_nothing_saved_is_lost(client, study):
    e, html = to_counted_item(client, study, "U+C+Rℓ")
    item = study.items.get(pk=item_pk(html))
    before = list(Response.objects.filter(enrolment=e).values_list("pk", "item_id", "choice"))
    posted = {"item": item.pk, "choice": item.choices[1], "helpful_page": "prediction"}  # not a page it had
    page = client.post(f"/a/{e.token}/", posted)
    shown = page.content.decode()
    assert page.status_code == 400
    assert ("“prediction” is not a page of this item; say which of its pages helped more: Overview, Features."
            in shown)
    assert re.search(rf'value="{item.choices[1]}" required checked', shown)  # what they chose is kept
    assert list(Response.objects.filter(enrolment=e).values_list("pk", "item_id", "choice")) == before
    assert Enrolment.objects.get(pk=e.pk).position == 1
    api = APIClient().post(f"/api/annotate/{e.token}/responses/", posted, format="json")
    assert api.status_code == 400 and "“prediction” is not a page of this item" in api.json()["detail"]

    assert client.post(f"/a/{e.token}/", {**posted, "helpful_page": "features"}).status_code == 302
    (row,) = [r for r in response_rows(study) if not r["practice"]]
    assert row["helpful_page"] == "features"  # the export's column, as before


def test_a_prediction_page_can_be_the_one_that_helped_and_counts_not_as_features(client, study):
    from annotations.selectors import condition_metrics

    e, html = to_counted_item(client, study, MULTIVIZ)
    item = study.items.get(pk=item_pk(html))
    client.post(f"/a/{e.token}/", {"item": item.pk, "choice": item.choices[0], "helpful_page": "prediction"})
    assert Response.objects.get(enrolment=e, item=item).helpful_page == "prediction"
    assert condition_metrics(e.condition)["features_helped_more"] == 0.0
