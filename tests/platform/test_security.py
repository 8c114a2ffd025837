"""Who may see and do what: forms need their CSRF token, joining is rate limited per
address, and an annotator's token opens their own enrolment's items and assets only."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotations.models import Response
from studies.models import Enrolment, Study
from studies.selectors import allowed_assets
from studies.services import create_study, enrol, import_bundle

from .study_helpers import make_study, start

pytestmark = pytest.mark.django_db


def csrf_client():
    return Client(enforce_csrf_checks=True)


def fetch_token(client, url):
    """GET ``url`` (its form sets the CSRF cookie) and return the token a form would send."""
    assert client.get(url).status_code == 200
    return client.cookies["csrftoken"].value


# -- CSRF ----------------------------------------------------------------------------------------
def test_an_answer_without_its_csrf_token_is_refused_with_advice_and_not_saved():
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    client = csrf_client()
    url = f"/a/{e.token}/"
    token = fetch_token(client, url)
    refused = client.post(url, {"item": e.item_order[0], "choice": "red"})
    assert refused.status_code == 403 and "This page has expired" in refused.content.decode()
    assert Response.objects.count() == 0
    accepted = client.post(url, {"item": e.item_order[0], "choice": "red", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302 and Response.objects.count() == 1


def test_consent_without_its_csrf_token_does_not_move_the_annotator_on():
    study = make_study()
    e = enrol(study, pseudonym="p")
    assert csrf_client().post(f"/a/{e.token}/", {"form": "consent", "agree": "yes"}).status_code == 403
    assert Enrolment.objects.get(pk=e.pk).step == Enrolment.Step.CONSENT


def test_the_study_builder_and_the_api_refuse_session_posts_without_a_csrf_token():
    study = make_study()
    client = csrf_client()
    client.force_login(study.owner)
    response = client.post(f"/studies/{study.pk}/edit/", {"action": "texts", "title": "renamed"})
    assert response.status_code == 403
    assert client.patch(f"/api/studies/{study.pk}/", {"title": "renamed"}, content_type="application/json"
                        ).status_code == 403
    study.refresh_from_db()
    assert study.title == "t"


# -- the join rate limit ---------------------------------------------------------------------------
def join_from(study, address, client=None, **headers):
    client = client or Client()
    return client.get(f"/join/{study.invite_token}/", REMOTE_ADDR=address, **headers)


def test_joining_too_often_from_one_address_is_refused_with_when_to_come_back(settings):
    settings.MULTIVIZ_JOIN_RATE = "3/h"
    study = make_study(conditions=(("U", ["U"], 0),))
    assert [join_from(study, "203.0.113.5").status_code for _ in range(3)] == [302] * 3
    refused = join_from(study, "203.0.113.5")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3600
    assert "Open the link again in" in refused.content.decode()
    assert Enrolment.objects.count() == 3
    assert join_from(study, "203.0.113.6").status_code == 302  # someone else is not held up


def test_a_returning_annotator_is_never_rate_limited(settings):
    settings.MULTIVIZ_JOIN_RATE = "1/h"
    study = make_study(conditions=(("U", ["U"], 0),))
    mine = Client()
    first = join_from(study, "203.0.113.5", client=mine)
    assert join_from(study, "203.0.113.5").status_code == 429
    again = join_from(study, "203.0.113.5", client=mine)  # their cookie brings them back
    assert again.status_code == 302 and again["Location"] == first["Location"]


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(settings):
    settings.MULTIVIZ_JOIN_RATE = "2/h"
    study = make_study(conditions=(("U", ["U"], 0),))
    # no proxy configured: a client writing its own X-Forwarded-For does not escape the limit
    codes = [join_from(study, "203.0.113.5", HTTP_X_FORWARDED_FOR=f"198.51.100.{k}").status_code for k in range(3)]
    assert codes == [302, 302, 429]
    # behind one proxy: the address the proxy saw is the participant's
    settings.MULTIVIZ_TRUSTED_PROXIES = 1
    codes = [join_from(study, "10.0.0.1", HTTP_X_FORWARDED_FOR=f"forged, 198.51.100.{k}").status_code
             for k in range(3)]
    assert codes == [302, 302, 302]


def test_joins_go_through_when_the_rate_limit_cache_is_down(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}  # nothing listens on port 9
    study = make_study(conditions=(("U", ["U"], 0),))
    assert join_from(study, "203.0.113.5").status_code == 302
    assert "join rate limit skipped" in caplog.text


# -- what an annotator's token opens -----------------------------------------------------------------
@pytest.fixture
def two_studies(bundle_copy):
    r1, r2 = User.objects.create_user("r1"), User.objects.create_user("r2")
    bundle = import_bundle(bundle_copy, owner=r1)
    bundle.shared_with.add(r2)
    first = create_study(r1, bundle, title="A", practice=0, open_now=True,
                         presets=["U", "MultiViz (U+C+Rℓ+Rg+P)"])
    second = create_study(r2, bundle, title="B", practice=0, open_now=True,
                          presets=["U"])
    return first, second


def test_an_annotators_token_opens_only_assets_their_condition_shows(client, two_studies):
    study, _ = two_studies
    # ties in the assignment are drawn at random: tell the two apart by their condition
    u_only, full = sorted((enrol(study, pseudonym="u"), enrol(study, pseudonym="full")),
                          key=lambda e: e.condition.name != "U")
    assert (u_only.condition.name, full.condition.name) == ("U", "MultiViz (U+C+Rℓ+Rg+P)")
    item = study.items.first()
    hidden = sorted(allowed_assets(full, item) - allowed_assets(u_only, item))
    assert hidden, "the full condition shows assets the U condition does not"
    assert client.get(f"/a/{full.token}/items/{item.pk}/assets/{hidden[0]}").status_code == 200
    assert client.get(f"/a/{u_only.token}/items/{item.pk}/assets/{hidden[0]}").status_code == 404


def test_an_item_pages_images_load_by_their_key_without_the_database(client, two_studies,
                                                                      django_assert_num_queries):
    import re

    study, _ = two_studies
    full = next(e for e in (enrol(study, pseudonym="a"), enrol(study, pseudonym="b"))
                if e.condition.name == "MultiViz (U+C+Rℓ+Rg+P)")
    start(full)
    html = client.get(f"/a/{full.token}/").content.decode()
    urls = list(dict.fromkeys(re.findall(r'src="(/a/[^"]+\?key=[^"]+)"', html)))
    assert len(urls) > 3, "the page links its images with their keys"
    assert client.get(urls[0]).status_code == 200  # the first asks which bundle the item is in
    with django_assert_num_queries(0):  # a page of a dozen images costs the database nothing more
        for url in urls[1:]:
            assert client.get(url).status_code == 200


def test_an_asset_key_opens_only_the_asset_and_annotator_it_was_made_for(client, two_studies):
    from annotations.annotate import asset_signature

    study, _ = two_studies
    # ties in the assignment are drawn at random: tell the two apart by their condition
    u_only, full = sorted((enrol(study, pseudonym="u"), enrol(study, pseudonym="full")),
                          key=lambda e: e.condition.name != "U")
    item = study.items.first()
    shown = sorted(allowed_assets(u_only, item))
    hidden = sorted(allowed_assets(full, item) - allowed_assets(u_only, item))
    base = f"/a/{u_only.token}/items/{item.pk}/assets/"
    assert client.get(f"{base}{shown[0]}?key={asset_signature(u_only.token, item.pk, shown[0])}").status_code == 200
    for key in (asset_signature(u_only.token, item.pk, shown[0]),  # another asset's key
                asset_signature(full.token, item.pk, hidden[0]),  # another annotator's key
                "0" * 32, "not-a-key", ""):
        assert client.get(f"{base}{hidden[0]}?key={key}").status_code == 404, key
    # a key names its token: with another token it opens nothing the token's condition hides
    assert client.get(f"{base}{hidden[0]}").status_code == 404


def test_an_annotators_token_opens_nothing_of_another_study(client, two_studies):
    study, other = two_studies
    mine = start(enrol(study, pseudonym="p"))
    theirs = other.items.first()
    path = sorted(allowed_assets(enrol(other, pseudonym="q"), theirs))[0]
    assert client.get(f"/a/{mine.token}/items/{theirs.pk}/assets/{path}").status_code == 404
    assert client.get(f"/a/{mine.token}/practice/{theirs.pk}/").status_code == 404
    state = client.get(f"/api/annotate/{mine.token}/").json()
    assert state["item"]["item"] == mine.item_order[0] and study.items.filter(pk=state["item"]["item"]).exists()
    # researcher pages stay closed to an annotator (no login)
    assert client.get(f"/studies/{other.pk}/").status_code == 302
    assert client.get(f"/api/studies/{other.pk}/").status_code in (401, 403)
    assert Study.objects.get(pk=other.pk).title == "B"


def test_links_with_a_nul_character_are_not_valid_links(client):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="a"))
    item = e.item_order[0]
    for url in (f"/join/{study.invite_token}%00/", f"/a/{e.token}%00/", f"/a/{e.token}%00/practice/{item}/",
                f"/a/{e.token}%00/items/{item}/assets/x.png", f"/a/{e.token}%00/items/{item}/live-sog"):
        assert client.get(url).status_code == 404, url  # PostgreSQL cannot compare text with NUL
    assert client.post(f"/a/{e.token}%00/", {"form": "consent", "agree": "yes"}).status_code == 404
    # a remembered-enrolment cookie with a NUL: a new enrolment, not a server error
    joined = client.get(f"/join/{study.invite_token}/", HTTP_COOKIE=f"mvz_enrolment_{study.pk}={e.token}\x00")
    assert joined.status_code == 302 and e.token not in joined["Location"]
    prolific = client.get(f"/join/{study.invite_token}/", {"PROLIFIC_PID": "p\x00id", "STUDY_ID": "s\x00",
                                                             "SESSION_ID": "\x00x"})
    assert prolific.status_code == 302
    assert Enrolment.objects.filter(pseudonym="pid", prolific_study_id="s", prolific_session_id="x").count() == 1


@pytest.mark.parametrize("address, debug, limited", [
    ("127.0.0.1", True, False), ("::1", True, False),  # the demo tried in many private windows
    ("127.0.0.1", False, True),  # a production server behind a local proxy still counts
    ("203.0.113.5", True, True),  # others, even in the demo
])
def test_the_join_limit_is_off_for_loopback_only_while_the_demo_runs(settings, address, debug, limited):
    settings.MULTIVIZ_JOIN_RATE = "2/h"
    settings.DEBUG = debug
    study = make_study(conditions=(("U", ["U"], 0),))
    codes = [join_from(study, address).status_code for _ in range(3)]
    assert codes == ([302, 302, 429] if limited else [302, 302, 302])


@pytest.mark.parametrize("debug", [True, False])
def test_a_bad_annotator_link_is_our_404_page_even_in_the_demo(settings, debug):
    settings.DEBUG = debug
    study = make_study(practice=1)
    e = start(enrol(study, pseudonym="p"))
    other = make_study(practice=1)
    for url in ("/a/not-a-token/", f"/a/{e.token}/practice/{other.items.first().pk}/"):
        page = Client().get(url)
        html = page.content.decode()
        assert page.status_code == 404 and "Link not valid" in html, url
        assert "DEBUG = True" not in html and "URLconf" not in html
    assert "Use the invite link you were given." in Client().get("/a/not-a-token/").content.decode()
