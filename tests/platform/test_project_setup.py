"""The Django project's set-up: settings from the environment, the demo page."""

import json
import os

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app


@pytest.mark.django_db
def test_database_is_the_one_database_url_names():
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith("postgres") else "sqlite"
    assert connection.vendor == expected
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone()[0] == 1


def test_tasks_run_in_process_exactly_when_no_broker_is_configured():
    broker = os.environ.get("CELERY_BROKER_URL", "")
    assert settings.CELERY_TASK_ALWAYS_EAGER is (not broker)
    assert celery_app.conf.task_always_eager is (not broker)


def test_engine_demo_page_explains_how_to_build_the_demo_when_missing(client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    response = client.get("/")
    assert response.status_code == 503
    assert b"manage.py engine_demo" in response.content


def test_engine_demo_page_shows_each_stage_of_a_computed_demo(client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / "demo").mkdir()
    pixel = "data:image/png;base64,iVBORw0KGgo="
    demo = {
        "model": "test model",
        "seconds": 1.0,
        "sparse_linear": {"n_nonzero": 3, "val_accuracy": 0.9},
        "emap": {"early": {"interaction_share": 0.4, "accuracy_model": 0.9, "accuracy_emap": 0.5, "test_accuracy": 0.95}},
        "items": [
            {
                "question": "what colour is the large circle ?",
                "answer": "red",
                "prediction": "red",
                "correct": True,
                "top_probabilities": [["red", 0.9]],
                "image": pixel,
                "unimodal": {"question": [{"token": "circle", "score": 1.0, "weight": 1.0}], "image_lime": pixel},
                "cross": {"phrase": "large circle", "heatmap": pixel, "referred_object": 0, "top2_objects": [0, 1], "top1_hit": True},
                "prediction_stage": {"class": "red", "features": [{"feature": 7, "weight": 0.5}]},
                "feature_page": {"feature": 7, "local": {"question": [], "image": pixel}, "max": [], "min": []},
            }
        ],
    }
    (tmp_path / "demo" / "engine_demo.json").write_text(json.dumps(demo))
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("what colour is the large circle", "second-order gradient of “large circle”", "z7", "EMAP"):
        assert text in html


@pytest.mark.slow
@pytest.mark.django_db
def test_engine_demo_command_computes_every_stage_and_the_page_shows_it(client, settings, tmp_path):
    from django.core.management import call_command

    settings.DATA_DIR = tmp_path
    call_command("engine_demo", "--items", "1")
    demo = json.loads((tmp_path / "demo" / "engine_demo.json").read_text())
    item = demo["items"][0]
    for key in ("unimodal", "cross", "prediction_stage", "feature_page"):
        assert key in item, key
    assert set(demo["emap"]) == {"early", "late"}
    html = client.get("/").content.decode()
    assert item["question"] in html and "Rg · most activating" in html


def test_the_default_database_folder_is_created_on_a_fresh_clone(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "fresh" / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["MULTIVIZ_DATA_DIR"] = str(data)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (data / "db.sqlite3").is_file()


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_study_command_builds_one_open_study_per_task_with_the_papers_conditions(settings, tmp_path, capsys):
    from django.core.management import call_command

    from studies.models import Study

    settings.DATA_DIR = tmp_path
    call_command("demo_study")
    fusion = Study.objects.get(bundle__dataset="fusion")
    studies = {s.task: s for s in Study.objects.filter(title__startswith="Demo ·").exclude(pk=fusion.pk)}
    assert {t: s.conditions.count() for t, s in studies.items()} == {"simulation": 8, "concept": 3, "error": 2}
    assert fusion.task == "simulation" and fusion.conditions.count() == 7  # the paper's seven, no transformer
    assert fusion.items.filter(is_practice=False).count() == 8
    assert sum("T" in c.stages for c in studies["simulation"].conditions.all()) == 1  # the transformer views
    assert all(s.status == "open" for s in studies.values())
    assert studies["simulation"].items.filter(is_practice=False).count() == 20
    assert all(not i.bundle_item.correct for i in studies["error"].items.all())
    assert {s.bundle.owner.username for s in studies.values()} == {"researcher"}  # its bundles are theirs
    out = capsys.readouterr().out
    multiviz = list(Study.objects.filter(title__startswith="MultiViz's own"))  # vqa554 is vendored: one at least
    assert multiviz and all(s.task == "simulation" and s.status == "open" for s in multiviz)
    assert "password" in out and all(s.invite_token in out for s in [*studies.values(), fusion, *multiviz])
    call_command("demo_study")  # again: nothing duplicated
    assert Study.objects.count() == 4 + len(multiviz)


def test_production_settings_pass_djangos_deployment_checks(tmp_path):
    import secrets
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}  # a test-only switch
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="studies.example.org",
               CACHE_URL="redis://127.0.0.1:6379/1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_without_a_shared_cache_fails_the_check_and_says_why():
    """Several server processes each counting joins in their own memory would let every
    address join N times too often: production must name a shared cache (CACHE_URL)."""
    import secrets
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "CACHE_URL")}
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="studies.example.org")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "django_ratelimit.E003" in done.stderr and "is not a shared cache" in done.stderr
