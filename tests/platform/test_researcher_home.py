"""The researcher's home: the platform's own login page (locked out by django-axes like the
admin's), a navigation bar on every researcher page with a logout, the API's documentation
rendered from its schema, and one way of writing a figure on every page and export."""

import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.template import Context, Template
from django.test import Client

from annotations.exports import summary_rows
from annotations.figures import figure
from annotations.models import Response
from studies.services import enrol

from .study_helpers import make_study, start

pytestmark = pytest.mark.django_db

RIGHT = "a-long-passphrase"
LIMIT = django_settings.AXES_FAILURE_LIMIT


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert MD5PasswordHasher


def researcher(name="ada", **extra):
    return User.objects.create_user(name, password=RIGHT, **extra)


def login(client, username, password, address="10.0.0.1", next_url=""):
    return client.post("/login/", {"username": username, "password": password, "next": next_url},
                       REMOTE_ADDR=address)


def test_a_researcher_without_staff_status_logs_in_on_the_platforms_page_and_lands_on_their_studies():
    researcher("ada")  # not staff: the admin's page refused such an account
    client = Client()
    page = client.get("/studies/")
    assert page.status_code == 302 and page["Location"] == "/login/?next=/studies/"
    form = client.get(page["Location"]).content.decode()
    assert "Researcher login" in form and "staff" not in form
    assert 'name="next" value="/studies/"' in form
    wrong = login(client, "ada", "wrong")
    assert wrong.status_code == 200 and 'id="login-error"' in wrong.content.decode()
    assert login(client, "ada", RIGHT)["Location"] == "/studies/"
    assert client.get("/studies/").status_code == 200
    # without a next page, to the studies too
    assert login(Client(), "ada", RIGHT)["Location"] == "/studies/"


def test_the_login_page_is_locked_out_after_the_failure_limit_and_shares_the_count_with_the_api():
    researcher("ada")
    for n in range(LIMIT - 1):
        assert login(Client(), "ada", f"guess-{n}", f"10.0.0.{n}").status_code == 200
    locked = login(Client(), "ada", "last-guess", "10.0.0.50")
    assert locked.status_code == 429 and "Login locked for" in locked.content.decode()
    assert locked["Retry-After"] == str(int(django_settings.AXES_COOLOFF_TIME.total_seconds()))
    # the right password, from a fresh address, on the page and in the API: refused alike
    assert login(Client(), "ada", RIGHT, "10.0.0.99").status_code == 429
    assert Client().get("/api/studies/", REMOTE_ADDR="10.0.0.99",
                        HTTP_AUTHORIZATION="Basic YWRhOmEtbG9uZy1wYXNzcGhyYXNl").status_code == 429  # ada:RIGHT


RESEARCHER_PAGES = ["/studies/", "/studies/new/", "/bundles/", "/studies/table/", "/api/docs/"]


def test_every_researcher_page_has_the_navigation_a_logout_form_and_a_brand_to_the_studies():
    study = make_study()
    client = Client()
    client.force_login(study.owner)
    for url in RESEARCHER_PAGES + [f"/studies/{study.pk}/", f"/studies/{study.pk}/concepts/"]:
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        for target in ('href="/studies/" id="nav-studies"', 'href="/bundles/" id="nav-bundles"',
                       'href="/api/docs/" id="nav-api"', 'href="/studies/" class="brand"'):
            assert target in html, (url, target)
        assert re.search(r'<form method="post" action="/logout/" class="logout">\s*<input type="hidden" '
                         r'name="csrfmiddlewaretoken"', html), url


def test_logging_out_is_a_post_that_ends_the_session_and_returns_to_the_login_page():
    researcher("ada")
    client = Client()
    client.force_login(User.objects.get(username="ada"))
    assert client.get("/logout/").status_code == 405  # a link cannot log anyone out
    assert client.get("/studies/").status_code == 200
    out = client.post("/logout/")
    assert out.status_code == 302 and out["Location"] == "/login/"
    assert client.get("/studies/").status_code == 302


def test_annotators_pages_show_no_researcher_navigation():
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    for client in (Client(), Client()):
        html = client.get(f"/a/{e.token}/").content.decode()
        assert 'id="nav-studies"' not in html and 'id="nav-login"' not in html


def test_the_api_documentation_lists_every_operation_of_the_schema_with_its_answers():
    schema = Client().get("/api/schema/?format=json").json()
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    operations = [(m.upper(), path) for path, item in schema["paths"].items() for m in item]
    assert len(operations) > 20
    for method, path in operations:
        assert f'<span class="api-method">{method}</span> <code>{path}</code>' in html, (method, path)
    patch = html[html.index('id="items_partial_update"'):]
    patch = patch[:patch.index("</article>")]
    assert [c for c in ("200", "400", "401", "403", "404", "413", "429") if f"<td>{c}</td>" in patch] == \
        ["200", "400", "401", "403", "404", "413", "429"]
    assert 'href="#shape-PatchedStudyItem"' in patch and 'id="shape-PatchedStudyItem"' in html
    assert "<script" not in html  # no JavaScript at all, let alone from elsewhere


@pytest.mark.parametrize("value, digits, written", [
    (3.625, 2, "3.63"), (2.675, 2, "2.68"), (0.125, 2, "0.13"), (-0.001, 2, "0.00"), (1.05, 1, "1.1"),
    (66.66666, 1, "66.7"), (None, 2, ""), (0.5, 0, "1"),
])
def test_a_figure_is_rounded_as_written_half_up_and_as_floatformat_does(value, digits, written):
    assert figure(value, digits) == written
    template = Template("{% load figures %}{{ v|figure:d }}|{{ v|floatformat:d }}")
    ours, django = template.render(Context({"v": value, "d": digits})).split("|")
    assert ours == written
    if value is not None:
        assert django == written


def test_a_mean_confidence_reads_the_same_on_the_concepts_page_and_in_the_summary():
    study = make_study(task="concept", n_items=2, practice=0, conditions=(("Rl", ["Rl"], 0),))
    confidences = [4, 3, 4, 4, 3, 4, 4, 3]  # mean 3.625: Python's format wrote 3.62, floatformat 3.63
    for n, confidence in enumerate(confidences):
        e = enrol(study, pseudonym=f"p{n}")
        item = study.items.order_by("order")[n % 2]
        Response.objects.create(enrolment=e, item=item, free_text="colour", confidence=confidence)
    summary = summary_rows(study)
    assert summary[0]["confidence"].startswith("3.63 ± ")
    client = Client()
    client.force_login(study.owner)
    concepts = client.get(f"/studies/{study.pk}/concepts/").content.decode()
    assert "<td>3.63</td>" in concepts and "3.62" not in concepts
