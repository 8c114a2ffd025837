"""When the database is away for a moment the annotator is told to retry and keeps their
answer; the real PostgreSQL restart is the slow test below."""

import re

import pytest
from django.db import OperationalError

from annotations.models import Response
from studies.services import enrol

from .study_helpers import make_study, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    """Every answer fails as it would with the database restarting."""
    def unreachable(*_args, **_kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr("annotations.annotate.submit_response", unreachable)
    monkeypatch.setattr("annotations.api.submit_response", unreachable)


def test_an_answer_sent_while_the_database_is_away_comes_back_in_a_send_again_form(client, database_down):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    answer = {"item": str(e.item_order[0]), "choice": "green", "seconds_on_item": "12.5"}
    response = client.post(f"/a/{e.token}/", answer)
    html = response.content.decode()
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "it is kept on this page, not lost" in html and 'id="send-again"' in html
    kept = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', html))
    assert {k: kept[k] for k in answer} == answer and kept["csrfmiddlewaretoken"]
    assert re.search(rf'action="/a/{e.token}/"', html)
    assert Response.objects.count() == 0


def test_the_send_again_form_saves_the_answer_once_the_database_is_back(client, monkeypatch):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    answer = {"item": str(e.item_order[0]), "choice": "green"}
    with monkeypatch.context() as m:
        m.setattr("annotations.annotate.submit_response",
                  lambda *a, **k: (_ for _ in ()).throw(OperationalError("server closed the connection")))
        html = client.post(f"/a/{e.token}/", answer).content.decode()
    resent = {k: v for k, v in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', html)}
    assert client.post(f"/a/{e.token}/", resent).status_code == 302
    assert Response.objects.get().choice == "green"


def test_a_page_asked_for_while_the_database_is_away_says_to_try_again(client, monkeypatch):
    study = make_study()
    e = enrol(study, pseudonym="p")
    monkeypatch.setattr("annotations.annotate._enrolment",
                        lambda *a: (_ for _ in ()).throw(OperationalError("the database system is starting up")))
    response = client.get(f"/a/{e.token}/")
    assert response.status_code == 503 and 'id="try-again"' in response.content.decode()
    assert "Everything you answered is saved" in response.content.decode()


def test_the_api_says_to_retry_when_the_database_is_away(client, database_down):
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    response = client.post(f"/api/annotate/{e.token}/responses/", {"item": e.item_order[0], "choice": "red"},
                           content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "nothing already saved is lost" in response.json()["detail"]


# -- a real PostgreSQL restart under the production-style server ------------------------------------
def _postgres_cluster():
    """(version, name) of the local cluster when this test may stop and start it, else None."""
    import os
    import shutil

    from django.db import connection

    if connection.vendor != "postgresql" or not shutil.which("pg_ctlcluster") or os.geteuid() != 0:
        return None
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    return (versions[-1], "main") if versions else None


def _pg(action, cluster):
    import subprocess

    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action, *(["-m", "fast"] if action == "stop" else [])],
                   check=True, capture_output=True, timeout=120)


class ProxiedBrowser:
    """A browser behind the production HTTPS proxy, as the load script's (synchronous)."""

    def __init__(self, base_url):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.origin, self.cookies = "https://" + base_url.split("//", 1)[1], {}

    def __call__(self, method, url, data=None):
        from benchmarks.loadtest import keep_cookies, proxied_headers

        response = self.http.request(method, url, data=data,
                                     headers=proxied_headers(self.origin, "198.18.0.7", url, self.cookies))
        keep_cookies(self.cookies, response.headers.get_list("set-cookie"))
        return response


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_postgresql_restart_mid_study_shows_send_again_and_loses_no_answer(bundle_copy, tmp_path):
    import os
    import subprocess

    from django.contrib.auth.models import User
    from django.db import connection

    from benchmarks.loadtest import HIDDEN, production_env, start_server
    from studies.models import Enrolment
    from studies.services import create_study, import_bundle

    cluster = _postgres_cluster()
    if cluster is None:
        pytest.skip("needs the local PostgreSQL cluster, pg_ctlcluster and root (CI has them)")
    owner = User.objects.create_user("r")
    study = create_study(owner, import_bundle(bundle_copy, owner=owner), title="Restart", practice=0,
                         presets=["U"], open_now=True)
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    server = start_server(production_env(url, os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"),
                                         MULTIVIZ_DATA_DIR=str(tmp_path)), workers=1, threads=2)
    stopped = False
    try:
        browser = ProxiedBrowser(server.base_url)
        page = browser("GET", f"/join/{study.invite_token}/").headers["location"]
        for step in ("consent", "instructions"):
            html = browser("GET", page).text
            assert browser("POST", page, {**dict(HIDDEN.findall(html)), "agree": "yes"}).status_code == 302, step
        answers = []
        for k in range(2):
            html = browser("GET", page).text
            answer = {**dict(HIDDEN.findall(html)), "choice": re.search(r'name="choice" value="([^"]+)"', html).group(1)}
            answers.append(answer)
            if k == 0:
                assert browser("POST", page, answer).status_code == 302
        _pg("stop", cluster)
        stopped = True
        during = browser("POST", page, answers[1])
        assert during.status_code == 503 and "it is kept on this page, not lost" in during.text
        assert browser("GET", page).status_code == 503
        _pg("start", cluster)
        stopped = False
        subprocess.run(["pg_isready", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-t", "60"],
                       check=True, capture_output=True)
        resent = dict(HIDDEN.findall(during.text))  # the page's Send again form
        assert resent["item"] == answers[1]["item"] and resent["choice"] == answers[1]["choice"]
        assert browser("POST", page, resent).status_code == 302
        assert 'name="clarity"' in browser("GET", page).text  # on to the closing questions
    finally:
        if stopped:
            _pg("start", cluster)
        server.stop()
        connection.close()  # the test's own connection died with the restart
    e = Enrolment.objects.get(study=study)
    assert sorted(e.responses.values_list("item_id", flat=True)) == sorted(int(a["item"]) for a in answers)
    assert e.step == Enrolment.Step.CLOSING
