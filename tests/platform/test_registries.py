"""A stage and a task added through the registries alone (registered here, removed after)
reach the builder, the annotator's page and the exports: no other file needs to know them."""

import re

import pytest
from django.contrib.auth.models import User

from annotations.exports import response_rows, responses_csv
from annotations.models import Response
from annotations.selectors import condition_metrics
from studies.models import Bundle, BundleItem, Enrolment, Study
from studies.stage_views import StageView, register_stage_view, unregister_stage_view
from studies.task_registry import TaskSpec, register_task, unregister_task
from studies.services import StudyError
from viz_engine.bundles.registry import StageSpec, register_stage, unregister_stage

pytestmark = pytest.mark.django_db

TOY_STAGE_PARTIAL = '<p id="toy-stage">Toy stage says: {{ view.sections.Toy.note }}</p>\n'
TOY_FORM_PARTIAL = ('<label>Type the model\'s answer <input type="text" name="choice" id="toy-answer" '
                    'value="{{ posted.choice|default:\'\' }}" required></label>\n')


def _clean_toy(answer, item):
    typed = str(answer.get("choice") or "").strip()
    if not typed or len(typed) > 200:
        raise StudyError("type the model's answer")
    return {"choice": typed}


def _score_toy(answer, prediction):
    return answer.choice == prediction


@pytest.fixture
def toys(tmp_path, settings):
    """A toy stage (engine spec + platform view) and a toy task, with their partials in a
    template folder of the test's own; unregistered afterwards."""
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "stage.html").write_text(TOY_STAGE_PARTIAL)
    (tmp_path / "toy" / "form.html").write_text(TOY_FORM_PARTIAL)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    register_stage(StageSpec("Toy", "Toy", methods=("gradient",), params={"k": 1},
                             writer=lambda ctx, entry, ex, batch, pred: {"note": "written", "secret": "x"}))
    register_stage_view(StageView("Toy", "overview", "toy/stage.html",
                                  to_annotator=lambda section, ctx: {"note": section["note"]}, aliases=("toy",)))
    register_task(TaskSpec(
        "toy", "toy typing", answer_fields=("choice",), clean=_clean_toy, form_template="toy/form.html",
        asks_confidence=False, score=_score_toy, measure="accuracy", value=lambda r: r.choice,
        metrics=lambda rows, answers, clusters: ({}, {(r.annotator, r.item): r.choice for r in rows}),
        alpha_over="the typed answers", export_columns=("typed_length",),
        export_row=lambda response, enrolment, bundle_item: {"typed_length": len(response.choice)},
        summary_row=lambda m, alpha: {"typed right (%)": m["accuracy"]["mean"], "agreement α": alpha},
        presets=(("Toy only", ["Toy"], {}),), group_size=2))
    yield
    unregister_task("toy")
    unregister_stage_view("Toy")
    unregister_stage("Toy")


@pytest.fixture
def researcher(client):
    user = User.objects.create_user("toy-researcher", password="a-long-passphrase")
    client.force_login(user)
    return user


def _toy_bundle(owner):
    bundle = Bundle.objects.create(name="toy", owner=owner, path="/nowhere", manifest_sha256="f" * 64,
                                   dataset="shapes_vqa", model="shapes_vqa_early", task="toy", stages=["U", "Toy"],
                                   class_names=["red", "blue"], manifest={})
    for k in range(3):
        BundleItem.objects.create(
            bundle=bundle, item_id=f"t{k}", position=k, label="red", prediction="blue", correct=False,
            record={"datapoint": {"question": f"what colour {k}?", "tokens": ["what", "colour"]},
                    "label": "red", "prediction": "blue"},
            sections={"Toy": {"note": f"toy-note-{k}", "secret": "never-sent"}})
    return bundle


def test_a_toy_stage_and_task_reach_the_builder_the_annotator_and_the_export(client, researcher, toys):
    bundle = _toy_bundle(researcher)
    form = client.get("/studies/new/").content.decode()
    assert '<option value="toy">toy typing</option>' in form and "Toy only" in form
    created = client.post("/studies/new/", {"title": "Toy study", "bundle": bundle.pk, "task": "toy",
                                            "preset": ["Toy only"], "custom": "None:", "practice": "0"})
    study = Study.objects.get(title="Toy study")
    assert created.status_code == 302, created.content.decode()
    assert study.task == "toy" and study.get_task_display() == "toy typing"
    assert [(c.name, c.stages, c.target_size) for c in study.conditions.all()] == [("Toy only", ["Toy"], 2),
                                                                                    ("None", [], 2)]
    preview = client.get(f"/studies/{study.pk}/preview/{study.conditions.get(name='Toy only').pk}/")
    assert 'id="toy-stage"' in preview.content.decode()
    study.status = Study.Status.OPEN
    study.save()
    study.conditions.filter(name="None").update(paused=True)

    client.logout()
    url = client.get(f"/join/{study.invite_token}/")["Location"]
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "instructions"})
    html = client.get(url).content.decode()
    assert re.search(r'<p id="toy-stage">Toy stage says: toy-note-\d</p>', html)  # the stage's partial
    assert "never-sent" not in html  # only what the stage's to_annotator keeps
    assert 'id="toy-answer"' in html and 'name="confidence"' not in html  # the task's form, no confidence
    e = Enrolment.objects.get()
    for k, item in enumerate(e.item_order):
        typed = "blue" if k < 2 else "red"  # two match the model, one does not
        page = client.post(url, {"item": item, "choice": typed})
        assert page.status_code == 302, page.content.decode()
    assert Response.objects.count() == 3 and sorted(Response.objects.values_list("choice", flat=True)) == ["blue", "blue", "red"]

    rows = response_rows(study)
    assert sorted((r["answer"], r["matched_model"], r["typed_length"]) for r in rows) == [
        ("blue", True, 4), ("blue", True, 4), ("red", False, 3)]
    header = responses_csv(study).splitlines()[0].split(",")
    assert header[-1] == "typed_length"
    metrics = condition_metrics(study.conditions.get(name="Toy only"))
    assert metrics["accuracy"]["mean"] == pytest.approx(2 / 3) and metrics["alpha_over"] == "the typed answers"


def test_the_toy_task_validates_its_answer_and_the_toy_stage_is_a_condition_stage(client, researcher, toys):
    from studies.services import parse_condition

    assert parse_condition("Mine: U toy") == ("Mine", ["U", "Toy"], {})
    bundle = _toy_bundle(researcher)
    client.post("/studies/new/", {"title": "Toy 2", "bundle": bundle.pk, "task": "toy", "preset": ["Toy only"],
                                  "practice": "0"})
    study = Study.objects.get(title="Toy 2")
    study.status = Study.Status.OPEN
    study.save()
    client.logout()
    url = client.get(f"/join/{study.invite_token}/")["Location"]
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "instructions"})
    item = Enrolment.objects.get().item_order[0]
    refused = client.post(url, {"item": item, "choice": ""})
    assert refused.status_code == 400 and "Type the model&#x27;s answer." in refused.content.decode()
    assert not Response.objects.exists()


def test_after_the_toys_are_removed_the_registries_no_longer_know_them(toys):
    from studies.stage_views import platform_stage_names
    from studies.task_registry import task_choices

    assert "Toy" in platform_stage_names() and ("toy", "toy typing") in task_choices()
    unregister_task("toy")
    unregister_stage_view("Toy")
    unregister_stage("Toy")
    assert "Toy" not in platform_stage_names() and "toy" not in dict(task_choices())
    assert [t for t, _ in task_choices()] == ["simulation", "concept", "error"]


def test_an_export_format_registered_alone_gets_a_button_and_an_address(client, researcher):
    from annotations.export_formats import ExportFormat, register_export_format, unregister_export_format
    from tests.platform.study_helpers import body_text, make_study

    study = make_study()
    study.owner = researcher
    study.save()
    register_export_format(ExportFormat("items-txt", "Item list", "text/plain; charset=utf-8", "study-{pk}-items.txt",
                                        lambda s: iter(f"{i.bundle_item.item_id}\n" for i in s.items.all())))
    try:
        page = client.get(f"/studies/{study.pk}/").content.decode()
        assert f'id="export-items-txt" href="/studies/{study.pk}/export/items-txt/"' in page
        assert 'id="export-csv"' in page  # the built-in ones keep their buttons
        response = client.get(f"/studies/{study.pk}/export/items-txt/")
        assert response.status_code == 200 and body_text(response) == "i0\ni1\ni2\ni3\ni4\n"
        assert response["Content-Disposition"] == f'attachment; filename="study-{study.pk}-items.txt"'
        assert client.get(f"/studies/{study.pk}/export/no-such/").status_code == 404
        client.force_login(User.objects.create_user("stranger"))
        assert client.get(f"/studies/{study.pk}/export/items-txt/").status_code == 404
    finally:
        unregister_export_format("items-txt")
