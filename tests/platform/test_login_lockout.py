"""Login throttling (django-axes): after the configured number of wrong passwords an account,
or an address, is refused even the right password until the cool-off has passed, on the
admin's login page and in the API's basic auth alike; and no annotator request ever runs a
password hash (hashing is what let wrong logins slow the annotators down)."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client

from studies.services import enrol

from .study_helpers import make_study, start

pytestmark = pytest.mark.django_db

LIMIT = django_settings.AXES_FAILURE_LIMIT
COOL_OFF = int(django_settings.AXES_COOLOFF_TIME.total_seconds())
RIGHT = "a-long-passphrase"


class CountingHasher(MD5PasswordHasher):
    """Counts every password hashed (a login checked, an unknown user's dummy hash, a new
    password); fast, so the tests do not wait on PBKDF2."""

    algorithm = "counting-md5"
    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)


@pytest.fixture(autouse=True)
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


def researcher(name="ada"):
    return User.objects.create_user(name, password=RIGHT, is_staff=True)


def admin_login(username, password, address):
    return Client().post("/admin/login/", {"username": username, "password": password, "next": "/admin/"},
                         REMOTE_ADDR=address)


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def api_get(username, password, address, path="/api/studies/"):
    return Client().get(path, HTTP_AUTHORIZATION=basic(username, password), REMOTE_ADDR=address)


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - django_settings.AXES_COOLOFF_TIME)


def assert_locked_page(response):
    assert response.status_code == 429
    assert f"Login locked for {COOL_OFF // 60} minutes" in response.content.decode()
    assert response["Retry-After"] == str(COOL_OFF)


def test_an_account_is_locked_after_the_failure_limit_from_any_addresses_until_the_cool_off():
    researcher("ada")
    researcher("bea")
    for n in range(LIMIT - 1):
        assert admin_login("ada", f"guess-{n}", f"10.0.0.{n}").status_code == 200  # the form, with its error
    assert_locked_page(admin_login("ada", "last-guess", "10.0.0.50"))
    # the right password, from an address that never failed, is refused too
    assert_locked_page(admin_login("ada", RIGHT, "10.0.0.99"))
    assert admin_login("bea", RIGHT, "10.0.0.99").status_code == 302  # another account is not locked
    cool_off_passes()
    assert admin_login("ada", RIGHT, "10.0.0.99").status_code == 302


def test_an_address_is_locked_after_the_failure_limit_for_any_accounts():
    researcher("ada")
    for n in range(LIMIT):
        admin_login(f"nobody-{n}", "guess", "10.0.0.7")
    assert_locked_page(admin_login("ada", RIGHT, "10.0.0.7"))
    assert admin_login("ada", RIGHT, "10.0.0.8").status_code == 302  # the account itself is not locked


def test_the_apis_basic_auth_is_locked_with_a_json_message_and_shares_the_count_with_the_login_page():
    researcher("ada")
    for n in range(LIMIT - 1):
        assert api_get("ada", f"guess-{n}", "10.0.0.1").status_code == 401
    admin_login("ada", "one-more-guess", "10.0.0.2")  # the limit-th failure, on the login page
    refused = api_get("ada", RIGHT, "10.0.0.3")
    assert refused.status_code == 429 and refused["Content-Type"] == "application/json"
    assert f"logins are refused for {COOL_OFF // 60} minutes" in json.loads(refused.content)["detail"]
    assert refused["Retry-After"] == str(COOL_OFF)
    cool_off_passes()
    assert api_get("ada", RIGHT, "10.0.0.3").status_code == 200


def test_a_locked_out_login_is_refused_without_hashing_the_password(counting_hasher):
    researcher("ada")
    for n in range(LIMIT):
        api_get("ada", f"guess-{n}", "10.0.0.1")
    counting_hasher.calls = 0
    for _ in range(10):
        assert api_get("ada", RIGHT, "10.0.0.1").status_code == 429
        assert admin_login("ada", RIGHT, "10.0.0.1").status_code == 429
    assert counting_hasher.calls == 0


def test_no_annotator_request_hashes_a_password_even_with_credentials_or_a_researchers_session(counting_hasher):
    owner = researcher("ada")
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    item = e.item_order[0]
    anonymous, logged_in = Client(), Client()
    logged_in.force_login(owner)
    counting_hasher.calls = 0
    for client in (anonymous, logged_in):
        for auth in (basic("ada", RIGHT), basic("ada", "wrong")):
            headers = {"HTTP_AUTHORIZATION": auth, "REMOTE_ADDR": "10.0.0.1"}
            assert client.get(f"/join/{study.invite_token}/", **headers).status_code in (200, 302)
            assert client.get(f"/a/{e.token}/", **headers).status_code == 200
            assert client.get(f"/api/annotate/{e.token}/", **headers).status_code == 200
            assert client.post(f"/api/annotate/{e.token}/responses/", {"item": item, "choice": "red"},
                               content_type="application/json", **headers).status_code in (200, 201, 409)
    assert counting_hasher.calls == 0
    # the counter does count: the researcher's API checks the same credentials with a hash
    api_get("ada", RIGHT, "10.0.0.1")
    assert counting_hasher.calls > 0


def test_the_failure_limit_and_cool_off_come_from_the_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIVIZ_LOGIN_")}
    env.update(MULTIVIZ_LOGIN_FAILURE_LIMIT="3", MULTIVIZ_LOGIN_COOLOFF_MINUTES="2.5",
               DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; "
                          "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())"],
                         env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "150.0"]


def test_a_basic_auth_name_longer_than_any_account_is_refused_before_it_is_counted(counting_hasher):
    """axes could not store it (PostgreSQL refuses text over the column's 255 characters)."""
    response = api_get("x" * 300, "guess", "10.0.0.1")
    assert response.status_code == 401
    assert AccessAttempt.objects.count() == 0 and counting_hasher.calls == 0
    api_get("x" * 150, "guess", "10.0.0.1")  # as long as a name can be: counted
    assert AccessAttempt.objects.count() == 1
