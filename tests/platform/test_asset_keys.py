"""The keys of an annotator's image URLs (served without the database) expire, and stop
opening anything once the enrolment is deleted or its condition shows less."""

import re
import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from studies.asset_keys import asset_key_opens
from studies.selectors import allowed_assets
from studies.services import create_study, enrol, import_bundle

from .study_helpers import start

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(bundle_copy):
    owner = User.objects.create_user("r")
    return create_study(owner, import_bundle(bundle_copy, owner=owner), title="A", practice=0, open_now=True,
                        presets=["U", "MultiViz (U+C+Rℓ+Rg+P)"], group_size=0)


def full_enrolment(study):
    e = start(enrol(study, pseudonym="full"))
    if e.condition.name != "MultiViz (U+C+Rℓ+Rg+P)":
        e = start(enrol(study, pseudonym="full-2"))
    assert e.condition.name == "MultiViz (U+C+Rℓ+Rg+P)"
    return e


def page_asset_urls(client, e):
    html = client.get(f"/a/{e.token}/").content.decode()
    return list(dict.fromkeys(re.findall(r'src="(/a/[^"]+\?key=[^"]+)"', html)))


def test_deleting_an_enrolment_revokes_the_keys_of_its_images(client, study):
    e = full_enrolment(study)
    urls = page_asset_urls(client, e)
    assert client.get(urls[0]).status_code == 200
    e.delete()
    assert [client.get(url).status_code for url in urls] == [404] * len(urls)


def test_a_condition_that_shows_less_revokes_the_keys_of_what_it_now_hides(client, study,
                                                                           django_assert_num_queries):
    e = full_enrolment(study)
    item = study.items.get(pk=e.item_order[0])
    urls = page_asset_urls(client, e)
    assert client.get(urls[0]).status_code == 200
    e.condition.stages = ["U"]
    e.condition.save()
    e.refresh_from_db()
    still = allowed_assets(e, item)
    hidden = [u for u in urls if u.split("/assets/", 1)[1].split("?")[0] not in still]
    assert hidden and all(client.get(u).status_code == 404 for u in hidden)
    fresh = page_asset_urls(client, e)  # the page's new keys are trusted again, without the database
    assert client.get(fresh[0]).status_code == 200
    with django_assert_num_queries(0):
        assert all(client.get(u).status_code == 200 for u in fresh[1:])


def test_an_asset_key_expires_after_its_lifetime(client, settings, study, monkeypatch):
    settings.MULTIVIZ_ASSET_KEY_SECONDS = 3600
    e = full_enrolment(study)
    url = page_asset_urls(client, e)[0]
    path, key = url.split("/assets/", 1)[1].split("?key=")
    assert client.get(url).status_code == 200
    e.delete()
    cache.clear()  # the revocation is lost (a cache restarted): only the expiry is left
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3601)
    assert client.get(url).status_code == 404
    assert not asset_key_opens(key, e.token, e.item_order[0], path)
    monkeypatch.setattr(time, "time", lambda: now)
    assert asset_key_opens(key, e.token, e.item_order[0], path)  # the same key before its time was up


def test_with_the_cache_down_images_are_still_served_by_the_full_check(client, settings, study, caplog):
    e = full_enrolment(study)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}  # nothing listens on port 9
    urls = page_asset_urls(client, e)
    assert urls and all(client.get(u).status_code == 200 for u in urls)
    assert "asset keys not trusted, the cache is unavailable" in caplog.text
    e.delete()  # the revocation cannot be written: no error, and the full check refuses
    assert client.get(urls[0]).status_code == 404


def test_an_image_is_served_under_its_opaque_name_in_the_headers_too(client, study):
    """The URL hides the bundle's file name (Rl-f17.png would name a feature); so must the
    Content-Disposition header that file responses carry."""
    e = full_enrolment(study)
    for url in page_asset_urls(client, e):
        name = url.split("/assets/", 1)[1].split("?")[0]
        disposition = client.get(url)["Content-Disposition"]
        assert disposition == f'inline; filename="{name}"', disposition
