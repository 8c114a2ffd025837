"""A server error leaves a trace: a JSON line on stderr with its traceback and the request's
id, the same id the response carries in X-Request-ID; every record of that request has it."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from studies.services import enrol

from .study_helpers import make_study, start

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def failing_view(request):
    logging.getLogger("studies.example").warning("about to fail")
    raise RuntimeError("the view broke on purpose")


def quiet_view(request):
    return HttpResponse("ok")


def unavailable_view(request):
    return HttpResponse("try later", status=503)


urlpatterns = [path("fails/", failing_view), path("quiet/", quiet_view), path("unavailable/", unavailable_view)]


def json_lines(err: str) -> list[dict]:
    """Every stderr line must be one JSON object."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_a_server_error_is_logged_as_json_with_its_traceback_and_the_responses_request_id(capsys):
    capsys.readouterr()
    response = Client(raise_request_exception=False).get("/fails/")
    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    records = json_lines(capsys.readouterr().err)
    error = next(r for r in records if r["levelname"] == "ERROR")
    assert error["request_id"] == request_id and error["name"] == "django.request"
    assert "Traceback (most recent call last)" in error["exc_info"]
    assert "RuntimeError: the view broke on purpose" in error["exc_info"]
    assert error["status_code"] == 500 and "timestamp" in error
    # the view's own record of the same request carries the same id
    assert [r["request_id"] for r in records if r["message"] == "about to fail"] == [request_id]


def test_an_error_response_logged_after_the_middleware_carries_the_request_id(capsys):
    """Django logs a returned (not raised) error response once every middleware is done."""
    capsys.readouterr()
    response = Client().get("/unavailable/")
    records = [r for r in json_lines(capsys.readouterr().err) if r.get("status_code") == 503]
    assert [r["request_id"] for r in records] == [response["X-Request-ID"]]


@pytest.mark.urls("config.urls")
def test_the_error_page_and_the_apis_error_give_the_request_id_of_the_logged_traceback(monkeypatch, capsys):
    e = start(enrol(make_study(practice=0), pseudonym="p"))

    def broken(*args, **kwargs):
        raise RuntimeError("the annotator's view broke")

    monkeypatch.setattr("annotations.annotate.annotator_view", broken)
    monkeypatch.setattr("annotations.api.annotator_view", broken)
    capsys.readouterr()
    client = Client(raise_request_exception=False)
    page = client.get(f"/a/{e.token}/")
    assert page.status_code == 500
    assert f'<code id="request-id">{page["X-Request-ID"]}</code>' in page.content.decode()
    api = client.get(f"/api/annotate/{e.token}/")
    assert api.status_code == 500 and api.json()["request_id"] == api["X-Request-ID"]
    logged = {r["request_id"]: r["exc_info"] for r in json_lines(capsys.readouterr().err) if r["levelname"] == "ERROR"}
    assert all("RuntimeError: the annotator's view broke" in logged[r["X-Request-ID"]] for r in (page, api))


def test_every_request_gets_a_new_id_unless_a_proxy_sent_a_safe_one():
    client = Client()
    first, second = client.get("/quiet/")["X-Request-ID"], client.get("/quiet/")["X-Request-ID"]
    assert first != second and len(first) == 32
    assert client.get("/quiet/", HTTP_X_REQUEST_ID="proxy-id-1234")["X-Request-ID"] == "proxy-id-1234"
    for unsafe in ("a\nforged log line", "x" * 65, "short", "id with spaces", "<script>"):
        given = client.get("/quiet/", HTTP_X_REQUEST_ID=unsafe)["X-Request-ID"]
        assert given != unsafe and len(given) == 32


def test_records_outside_a_request_have_no_request_id(capsys):
    capsys.readouterr()
    logging.getLogger("studies.example").warning("between requests")
    Client().get("/quiet/")
    logging.getLogger("studies.example").warning("after a request")
    records = json_lines(capsys.readouterr().err)
    assert [r["request_id"] for r in records if r["message"] in ("between requests", "after a request")] == [None, None]


SENTRY_PROBE = """
import django, sentry_sdk
django.setup()
client = sentry_sdk.get_client()
print(client.is_active(), client.options.get("dsn") if client.is_active() else None)
"""


def run_settings(extra_env):
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **extra_env)
    return subprocess.run([sys.executable, "-c", SENTRY_PROBE], env=env, cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, check=True).stdout.split()


def test_the_error_tracker_starts_only_when_sentry_dsn_is_set():
    assert run_settings({}) == ["False", "None"]
    dsn = "http://public@127.0.0.1:9/1"  # never contacted: no event is sent
    assert run_settings({"SENTRY_DSN": dsn}) == ["True", dsn]
