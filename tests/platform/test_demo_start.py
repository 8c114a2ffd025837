"""The demo keeps its word: the server answers at once while the demo's studies are prepared
in the background (one preparation at a time, resumed after an interruption), the home
page says how far it is and links each study as it becomes ready, and an annotator or a
researcher who meets a missing page or a server error gets the platform's pages, also with
DEBUG on (the demo runs with it)."""

import io
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import include, path

from studies.demo import Step, load_preparation, prepare, preparation_lock, preparation_path
from studies.management.commands import demo_study, prepare_demo
from studies.models import Study

from .study_helpers import make_study
from .test_browser import browser  # noqa: F401  (the chromium fixture)

ROOT = Path(__file__).resolve().parents[2]


def _reaped_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.django_db
def test_the_home_page_answers_while_the_demo_is_prepared_and_links_each_study_once_ready(client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.DEBUG = True  # the demo: this machine's browser gets the invite links too
    seen = []

    def first(report):
        return [make_study(practice=0)]

    def second(report):
        report("3 of 22 items computed")
        seen.append(client.get("/"))
        seen.append(client.get("/demo/progress.json").json())
        return [make_study(practice=0)]

    made = prepare([Step("one", "First study", first), Step("two", "Second study", second)], log=lambda _m: None)
    page, progress = seen
    html = page.content.decode()
    assert page.status_code == 200  # no engine demo yet, yet an answer, not the 503 "not computed"
    assert "Preparing the demo: 1 of 2 ready" in html and "3 of 22 items computed" in html
    assert f"/join/{made[0].invite_token}/" in html and f"/studies/{made[0].pk}/" in html
    assert made[1].invite_token not in html  # not ready then
    assert progress["preparation"]["state"] == "preparing" and not progress["engine_demo"]
    assert [s["status"] for s in progress["preparation"]["steps"]] == ["ready", "running"]
    done = client.get("/").content.decode()
    assert "The demo&#x27;s studies" in done or "The demo's studies" in done
    assert all(f"/join/{s.invite_token}/" in done for s in made)


@pytest.mark.django_db
def test_the_invite_links_on_the_home_page_are_for_the_demos_own_browser_only(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.DEBUG = True
    (study,) = prepare([Step("one", "A study", lambda report: [make_study(practice=0)])], log=lambda _m: None)
    mine = Client(REMOTE_ADDR="127.0.0.1").get("/").content.decode()
    other = Client(REMOTE_ADDR="203.0.113.5").get("/").content.decode()
    assert study.invite_token in mine and study.invite_token not in other
    assert f"/studies/{study.pk}/" in other  # the results page, which asks for the login


@pytest.mark.django_db
def test_a_second_preparation_while_one_runs_leaves_it_alone(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    out = io.StringIO()
    with preparation_lock() as mine:  # another process preparing (flock conflicts across open files)
        assert mine
        call_command("prepare_demo", stdout=out)
    assert "already being prepared" in out.getvalue()
    assert not preparation_path().exists() and not Study.objects.exists()


@pytest.mark.django_db
def test_an_interrupted_preparation_says_so_and_the_next_run_goes_on_reusing_what_is_built(
        client, settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(demo_study, "DEMO", [])  # MultiViz's own samples only (imported in seconds)
    calls = []

    def engine_demo(report):
        calls.append(report)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C, or the machine stopped, in the middle
        return []

    monkeypatch.setattr(prepare_demo.Command, "_engine_demo", staticmethod(engine_demo))
    with pytest.raises(KeyboardInterrupt):
        call_command("prepare_demo", stdout=io.StringIO())
    first = list(Study.objects.values_list("pk", flat=True))
    assert first  # vqa554 is vendored: its study was made before the interruption
    state = load_preparation()
    assert state["state"] == "preparing" and state["steps"][-1]["status"] == "running"
    # the process is gone: the page says so and how to go on
    raw = preparation_path().read_text().replace(f'"pid": {os.getpid()}', f'"pid": {_reaped_pid()}')
    preparation_path().write_text(raw)
    page = client.get("/").content.decode()
    assert "interrupted" in page and "scripts/demo.sh" in page
    out = io.StringIO()
    call_command("prepare_demo", stdout=out)
    assert list(Study.objects.values_list("pk", flat=True)) == first  # reused, not made again
    state = load_preparation()
    assert state["state"] == "ready" and {s["status"] for s in state["steps"]} == {"ready"}
    assert "The demo is ready." in out.getvalue() and all(
        Study.objects.get(pk=pk).invite_token in out.getvalue() for pk in first)


def boom(request):
    raise RuntimeError("the view broke on purpose")


urlpatterns = [path("boom/", boom), path("", include("config.urls"))]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_with_debug_on_a_missing_page_and_a_server_error_are_the_platforms_pages(settings, capsys, django_user_model):
    settings.DEBUG = True
    researcher = django_user_model.objects.create_user("r", password="pw-long-enough")
    signed_in = Client()
    signed_in.force_login(researcher)
    for client, url in ((Client(), "/no-such-page/"), (signed_in, "/studies/999999/"), (Client(), "/a/x/y/z/")):
        page = client.get(url)
        html = page.content.decode()
        assert page.status_code == 404, url
        assert "This page does not exist" in html or "Link not valid" in html, url
        assert "URLconf" not in html and "DEBUG = True" not in html and "Traceback" not in html, url
    api = Client().get("/api/no-such-thing/")
    assert api.status_code == 404 and "detail" in api.json()  # the API answers in JSON
    capsys.readouterr()
    page = Client(raise_request_exception=False).get("/boom/")
    html = page.content.decode()
    assert page.status_code == 500 and "Something went wrong on our side" in html
    assert "RuntimeError" not in html and page["X-Request-ID"] in html
    log = capsys.readouterr().err
    assert "Traceback (most recent call last)" in log and "the view broke on purpose" in log  # kept for the console


@pytest.mark.urls(__name__)
def test_with_debug_off_a_missing_page_is_the_platforms_page_too(settings):
    settings.DEBUG = False
    page = Client().get("/no-such-page/")
    assert page.status_code == 404 and "This page does not exist" in page.content.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_the_demos_first_start_on_a_fresh_data_folder_answers_within_a_minute(tmp_path):
    """scripts/demo.sh as a new user runs it: seconds until the home page answers 200 and until
    the first study's invite link opens an annotator's page; 21 joins from this machine are
    all let in (the join limit is off on loopback in the demo)."""
    stamp = ROOT / ".venv" / ".requirements-runtime.sha256"
    want = subprocess.run(f"cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1", shell=True, cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    if not stamp.exists() or stamp.read_text().strip() != want:
        pytest.skip("the runtime requirements are not installed: the test times the start, not an install")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL",
                                                             "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(MULTIVIZ_DATA_DIR=str(tmp_path / "var"), PORT=str(port), DJANGO_DEBUG="1")
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "demo.log", "w")
    t0 = time.monotonic()
    demo = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        answered = first_link = None
        while time.monotonic() - t0 < 600 and first_link is None:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            status, html = _get(base + "/")
            if status == 200 and answered is None:
                answered = time.monotonic() - t0
            links = re.findall(r'href="(/join/[^"]+)"', html) if status == 200 else []
            if links and _get(base + links[0])[0] == 200:  # follows the redirect to the annotator's page
                first_link = time.monotonic() - t0
                # 20 more: the 21st join from one address is the one the limit (20/h) would refuse
                joins = [_get(base + links[0])[0] for _ in range(20)]
            time.sleep(0.5)
        print(f"\ndemo first start: home page 200 after {answered:.1f} s, first study link working after "
              f"{first_link:.1f} s (load average {os.getloadavg()[0]:.1f})")
        # the README's minute, on a machine doing nothing else; on a busy one (8 helpers share
        # this one's 2 cores) the figures stretch with the load, and the test allows for it
        busy = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
        assert answered is not None and answered < 60 * busy, answered
        assert first_link is not None and first_link < 90 * busy, first_link
        assert joins == [200] * 20
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # the user's Ctrl-C stops the server and the preparation
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        log.close()
    deadline = time.monotonic() + 60  # nothing of the demo is left running (a zombie is not running)
    while _running_in_group(demo.pid) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _running_in_group(demo.pid)


def _running_in_group(pgid: int) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pgid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines()
            if line.split()[0] == str(pgid) and not line.split()[1].startswith("Z")]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_home_page_follows_the_preparation_and_shows_each_studys_links_as_it_is_ready(
        browser, live_server, settings, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    from studies.demo import Preparation

    settings.DATA_DIR = tmp_path
    settings.DEBUG = True  # the demo; the live server's browser is on this machine
    steps = [Step("one", "The first study", lambda r: []), Step("two", "The second study", lambda r: [])]
    prep = Preparation(steps)
    prep.update(0, status="running", detail="planning: the model's features")
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.url}/")
    card = page.locator("#demo-preparation")
    expect(card.get_by_role("heading")).to_have_text("Preparing the demo: 0 of 2 ready")
    expect(card).to_contain_text("planning: the model's features")
    study = make_study(practice=0)
    prep.update(0, status="ready", detail="", studies=[study.pk])  # no reload: the page follows by itself
    expect(card.get_by_role("heading")).to_have_text("Preparing the demo: 1 of 2 ready", timeout=15000)
    link = card.get_by_role("link", name="annotate (new annotator)")
    expect(link).to_have_attribute("href", f"/join/{study.invite_token}/")
    if os.environ.get("MULTIVIZ_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["MULTIVIZ_SCREENSHOTS"], "demo-preparing.png"))
    prep.update(1, status="ready")
    prep.finish()
    expect(card.get_by_role("heading")).to_have_text("The demo's studies", timeout=15000)
    link.click()
    expect(page).to_have_url(re.compile(r"/a/[^/]+/"))
    assert refused == []
