"""Live second-order gradients are bounded: new word sets per enrolment (and per researcher)
are rate limited with a clear 429, and only the most recently shown word sets of an item
are kept."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from studies.models import LiveSOGResult
from studies.services import create_study, enrol, import_bundle, live_second_order_gradient

from .study_helpers import start

pytestmark = pytest.mark.django_db


@pytest.fixture
def error_study(bundle_copy):
    owner = User.objects.create_user("r")
    bundle = import_bundle(bundle_copy, owner=owner)
    return create_study(owner, bundle, title="Errors", task="error", presets=["MultiViz"], practice=0,
                        group_size=0, open_now=True)


def live_url(e):
    return f"/a/{e.token}/items/{e.item_order[0]}/live-sog"


def test_new_word_sets_beyond_the_rate_are_refused_with_when_to_ask_again(client, settings, error_study, eager_tasks):
    settings.MULTIVIZ_LIVE_SOG_RATE = "1/m"
    first, second = (start(enrol(error_study, pseudonym=p)) for p in ("a", "b"))
    assert client.get(live_url(first), {"positions": "0"}).status_code == 200
    refused = client.get(live_url(first), {"positions": "1"})
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert "Wait" in refused.json()["error"] and "press Show again" in refused.json()["error"]
    assert LiveSOGResult.objects.count() == 1  # nothing computed for it
    assert client.get(live_url(first), {"positions": "0"}).status_code == 200  # a word set seen already
    assert client.get(live_url(second), {"positions": "1"}).status_code == 200  # another annotator's own budget


def test_a_researcher_asking_for_new_word_sets_is_rate_limited_too(client, settings, error_study, eager_tasks):
    settings.MULTIVIZ_LIVE_SOG_RATE = "1/m"
    client.force_login(error_study.owner)
    item = error_study.bundle.items.first()
    url = f"/bundles/{error_study.bundle.pk}/items/{item.item_id}/live-sog"
    assert client.get(url, {"positions": "0"}).status_code == 200
    assert client.get(url, {"positions": "1"}).status_code == 429


def test_only_the_most_recently_shown_word_sets_of_an_item_are_kept(settings, error_study, eager_tasks):
    settings.MULTIVIZ_LIVE_SOG_KEEP = 2
    item = error_study.bundle.items.first()
    long_ago = timezone.now() - timedelta(hours=1)
    for key in ("0", "1"):  # two word sets shown an hour ago
        LiveSOGResult.objects.create(item=item, positions=key, result={}, heatmap_png=b"", last_used_at=long_ago)
    live_second_order_gradient(item, [0])  # shown again now: the most recent
    live_second_order_gradient(item, [0, 1])  # a new one: the least recently shown ("1") goes
    assert sorted(LiveSOGResult.objects.values_list("positions", flat=True)) == ["0", "0,1"]
