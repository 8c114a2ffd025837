"""The model debugging report as a Celery task: a row it fills with its progress and its
result, a page that follows it, reports a failure and gives the verdict."""

import html
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from studies.models import Bundle, DebuggingReport
from tests.platform.test_browser import browser  # noqa: F401 - the chromium fixture

# small enough for CI on two cores; the late-fusion model errs often enough for every split
TINY = {"budget": "20", "runs": "3", "seed": "7", "k_features": "3", "labelled_size": "300", "pool_size": "200",
        "held_out_size": "300"}


def make_bundle(model="shapes_vqa_late", name="debug-me") -> Bundle:
    """A bundle row of a model (the report reads the model and the dataset, not the folder),
    owned by the test's one researcher (bundles are seen by their owners only)."""
    return Bundle.objects.create(name=name, owner=User.objects.get(), path=f"/nowhere/{name}",
                                 manifest_sha256=name.ljust(64, "0"),
                                 dataset="shapes_vqa", model=model, task="simulation", stages=[], class_names=[],
                                 manifest={"items": []})


@pytest.fixture
def researcher(client, db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    client.force_login(User.objects.create_user("ada"))
    return client


@pytest.fixture
def inline(settings, eager_tasks):
    """Tasks run inline in the request (not in a thread), so a test can read what they did."""
    settings.EAGER_TASKS_IN_THREAD = False


@pytest.mark.slow
def test_the_task_fills_the_report_with_progress_to_100_and_the_page_gives_the_verdict(
        researcher, inline, django_capture_on_commit_callbacks):
    bundle = make_bundle()
    url = f"/bundles/{bundle.pk}/debugging/"
    assert "No report yet" in researcher.get(url).content.decode()
    assert researcher.get(url + "progress.json").json() == {"status": "none", "progress": 0}
    with django_capture_on_commit_callbacks(execute=True):
        assert researcher.post(url, TINY).status_code == 302
    run = DebuggingReport.objects.get(bundle=bundle)
    assert (run.status, run.progress, run.stage, run.error) == ("done", 1.0, "done", "")
    assert run.params == {"budget": 20, "runs": 3, "seed": 7, "k_features": 3, "epochs": 1, "labelled_size": 300,
                          "pool_size": 200, "held_out_size": 300}
    assert set(run.result["fine_tuning"]["runs"]) == {"targeted", "random", "uncertainty"}
    state = researcher.get(url + "progress.json").json()
    assert (state["status"], state["progress"], state["id"]) == ("done", 100, run.pk)

    page = researcher.get(url).content.decode()
    assert html.escape(run.result["verdict"]["headline"]) in page
    assert html.escape(run.result["verdict"]["selection"]) in page
    for key in run.result["fine_tuning"]["base"]:
        assert f'id="table-{key}"' in page
    for strategy in ("targeted", "random", "uncertainty"):
        assert f"<td>{strategy}</td>" in page
    assert page.count('class="feature"') == 3 and 'id="report-progress"' not in page
    image = run.result["features"][0]["examples"][0]["image"]
    assert researcher.get(url + image).status_code == 200
    assert (run.folder / "report.json").is_file()
    assert researcher.get(url + "report.json").status_code == 404


def test_a_failed_run_says_why_on_the_page_not_a_500(researcher, inline, django_capture_on_commit_callbacks,
                                                     monkeypatch):
    bundle = make_bundle(model="no_such_model")
    url = f"/bundles/{bundle.pk}/debugging/"
    with django_capture_on_commit_callbacks(execute=True):
        assert researcher.post(url, TINY).status_code == 302
    page = researcher.get(url)
    assert page.status_code == 200
    assert "failed: model &#x27;no_such_model&#x27; is unknown" in page.content.decode()
    state = researcher.get(url + "progress.json").json()
    assert state["status"] == "failed" and "no_such_model" in state["error"]

    def crash(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr("studies.tasks.build_debugging_report", crash)  # what the task runs
    with django_capture_on_commit_callbacks(execute=True):
        assert researcher.post(url, TINY).status_code == 302  # a failed run does not block the next
    assert "failed: RuntimeError: the disk is full" in researcher.get(url).content.decode()
    assert DebuggingReport.objects.filter(bundle=bundle, status="failed").count() == 2


def test_a_bad_parameter_is_named_and_starts_nothing(researcher, inline):
    bundle = make_bundle()
    url = f"/bundles/{bundle.pk}/debugging/"
    for posted, message in (({"budget": "many"}, "budget: A valid integer is required."),
                            ({"runs": "1"}, "runs: Ensure this value is greater than or equal to 2."),
                            ({"pool_size": "5"}, "pool size: Ensure this value is greater than or equal to 20.")):
        response = researcher.post(url, {**TINY, **posted})
        assert response.status_code == 400
        assert html.escape(message) in response.content.decode()
    assert not DebuggingReport.objects.exists()


def test_one_run_at_a_time_and_a_run_that_stopped_showing_progress_is_marked_interrupted(researcher, inline):
    bundle = make_bundle()
    url = f"/bundles/{bundle.pk}/debugging/"
    going = DebuggingReport.objects.create(bundle=bundle, params={}, status="running", progress=0.4,
                                           stage="features of the val split")
    response = researcher.post(url, TINY)
    assert response.status_code == 400 and "already being computed (40 % done)" in response.content.decode()
    assert DebuggingReport.objects.count() == 1

    DebuggingReport.objects.filter(pk=going.pk).update(updated_at=timezone.now() - timedelta(minutes=6))
    page = researcher.get(url).content.decode()
    assert "stopped showing progress at 40 % (features of the val split)" in page
    assert researcher.get(url + "progress.json").json()["status"] == "interrupted"
    assert researcher.post(url, TINY).status_code == 302  # on_commit never runs here: nothing computes
    going.refresh_from_db()
    assert going.status == "failed" and going.error.startswith("interrupted: no progress for 5 minutes (at 40 %")
    queued = DebuggingReport.objects.latest("pk")
    assert queued.status == "queued"

    DebuggingReport.objects.filter(pk=queued.pk).update(updated_at=timezone.now() - timedelta(minutes=6))
    assert "was not taken by a worker within 5 minutes: is a Celery worker running?" in researcher.get(url).content.decode()


def test_the_page_follows_a_run_in_progress(researcher):
    bundle = make_bundle()
    url = f"/bundles/{bundle.pk}/debugging/"
    DebuggingReport.objects.create(bundle=bundle, params={}, status="running", progress=0.37,
                                   stage="features of the test split")
    page = researcher.get(url).content.decode()
    assert '<progress id="report-progress" max="100" value="37">' in page
    assert "features of the test split" in page and 'data-status="running"' in page
    assert f"/bundles/{bundle.pk}/debugging/progress.json" in page  # what the page polls
    assert 'id="compute"' not in page  # no second run while one is going
    state = researcher.get(url + "progress.json").json()
    assert (state["status"], state["progress"], state["stage"]) == ("running", 37, "features of the test split")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_request_returns_at_once_and_the_run_goes_on_in_a_thread(client, settings, tmp_path,
                                                                                       eager_tasks, monkeypatch):
    from studies import tasks

    real = tasks.build_debugging_report

    def paced(*args, progress, **kwargs):
        def step(fraction, stage):  # an idle machine finished the tiny run between two polls
            progress(fraction, stage)
            if 0 < fraction < 1:
                time.sleep(0.05)
        return real(*args, progress=step, **kwargs)

    monkeypatch.setattr(tasks, "build_debugging_report", paced)
    settings.DATA_DIR = tmp_path
    settings.EAGER_TASKS_IN_THREAD = True
    client.force_login(User.objects.create_user("ada"))
    bundle = make_bundle()
    url = f"/bundles/{bundle.pk}/debugging/"
    assert client.post(url, TINY).status_code == 302
    assert client.get(url + "progress.json").json()["status"] in ("queued", "running")
    seen, deadline = [], time.monotonic() + 600
    while time.monotonic() < deadline:
        state = client.get(url + "progress.json").json()
        seen.append(state["progress"])
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert state["status"] == "done", state
    assert any(0 < p < 100 for p in seen) and seen == sorted(seen) and seen[-1] == 100
    page = client.get(url).content.decode()
    assert html.escape(DebuggingReport.objects.get().result["verdict"]["headline"]) in page


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_the_browser_the_page_shows_the_progress_then_the_verdict_and_keeps_it_after_a_reload(
        browser, live_server, settings, tmp_path, eager_tasks):
    from playwright.sync_api import expect

    from tests.platform.test_browser import login

    settings.DATA_DIR = tmp_path
    settings.EAGER_TASKS_IN_THREAD = True  # no broker: the run goes on in a thread of the server
    User.objects.create_user("grace", password="a-long-passphrase", is_staff=True)
    bundle = make_bundle()
    url = f"/bundles/{bundle.pk}/debugging/"
    page = browser.new_context().new_page()
    login(page, live_server, "grace", "a-long-passphrase", url)
    expect(page.get_by_text("No report yet")).to_be_visible()
    page.click("details summary")
    for name, value in TINY.items():
        page.fill(f"input[name={name}]", value)
    page.click("#compute")
    expect(page.locator("#report-progress")).to_be_visible()  # the request came back before the run ended
    expect(page.locator("#headline")).to_be_visible(timeout=300_000)  # the poll reloaded it once done
    headline = DebuggingReport.objects.get().result["verdict"]["headline"]
    expect(page.locator("#headline")).to_have_text(headline)
    page.reload()
    expect(page.locator("#headline")).to_have_text(headline)
    expect(page.locator("#table-overall")).to_contain_text("targeted")
