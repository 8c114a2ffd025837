"""Moving a study: export the whole study to one JSON document, import it elsewhere with
identical metrics and every field kept; refusals write nothing."""

import copy
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest.mock import ANY

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotations.models import Response
from annotations.selectors import condition_metrics
from annotations.services import assign_concept_clusters, submit_response
from studies.models import Condition, Enrolment, Study, StudyItem
from studies.services import StudyError, enrol, finish
from annotations.transfer import FORMAT, VERSION, export_study, import_study
from tests.platform.study_helpers import answer_all, make_study, start

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BASE_TIME = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


# -- building a study with a bit of everything ----------------------------------------------------------
def _pick(task, annotator):
    """Annotator ``annotator``'s answer to an item: varies with both, so accuracy and α are
    not trivial."""
    def simulation(item):
        k = item.bundle_item.position + annotator
        return {"choice": item.bundle_item.prediction if k % 3 else "red", "confidence": 1 + k % 5,
                "seconds_on_item": 3.25 + k, "helpful_page": "features" if k % 2 else "overview"}

    def concept(item):
        k = item.bundle_item.position + annotator // 2
        return {"free_text": f"concept {k % 2}", "confidence": 2 + k % 3, "seconds_on_item": 7.5 + annotator,
                "helpful_page": "features"}

    def error(item):
        k = item.bundle_item.position + annotator // 2
        return {"category": ["unimodal", "cross_modal", "prediction"][k % 3], "confidence": 1 + k % 5,
                "helpful_page": "overview"}

    return {"simulation": simulation, "concept": concept, "error": error}[task]


def _backdate(study):
    """Distinct past timestamps, so an import that stamped 'now' would show."""
    Study.objects.filter(pk=study.pk).update(created_at=BASE_TIME)
    for k, e in enumerate(study.enrolments.order_by("pk")):
        Enrolment.objects.filter(pk=e.pk).update(started_at=BASE_TIME + timedelta(hours=k, microseconds=17),
                                                 last_seen_at=BASE_TIME + timedelta(hours=k, minutes=40))
    for k, r in enumerate(Response.objects.filter(enrolment__study=study).order_by("pk")):
        Response.objects.filter(pk=r.pk).update(created_at=BASE_TIME + timedelta(minutes=k, microseconds=k))


def build_study(task="simulation"):
    """Two conditions; annotators who finished (with closing answers and Prolific ids), one
    half-way through, one still at consent; shared with two researchers."""
    study = make_study(task=task, n_items=5, practice=1, conditions=[("U", ["U"], 5), ("U+C+Rℓ", ["U", "C", "Rl"], 5)],
                       instructions="Guess the model's answer.", consent_text="I agree.", completion_code="DONE-42",
                       completion_url="https://example.org/complete",
                       sections={"U": {}, "C": {}, "Rl": {"features": []}},  # U+C+Rℓ: an overview and a features page
                       training_cards={"U": {"shows": "Where the model looked."}, "Rl": {"title": "One feature"}})
    Condition.objects.filter(study=study, name="U+C+Rℓ").update(ask_helpful_page=True, rg_highlights=False)
    Condition.objects.filter(study=study, name="U").update(live_sog=True)
    StudyItem.objects.filter(study=study, bundle_item__item_id="i3").update(choices=["red", "yellow"])
    for k in range(4):
        e = enrol(study, pseudonym=f"PID-{k}", prolific_study_id="STUDY-9", prolific_session_id=f"S-{k}")
        answer_all(e, _pick(task, k))
        finish(e, {"strategy": f"looked at the heatmap {k}", "comments": "ünïcode ✓"})
    halfway = start(enrol(study, pseudonym="halfway"))
    for item_id in halfway.item_order[:3]:
        submit_response(halfway, item_id, _pick(task, 4)(StudyItem.objects.get(pk=item_id)))
    enrol(study, pseudonym="at-consent")
    Condition.objects.filter(study=study, name="U+C+Rℓ").update(paused=True)
    if task == "concept":  # the researcher's clusters; one answer left unclustered
        responses = Response.objects.filter(enrolment__study=study, is_practice=False).order_by("pk")
        assign_concept_clusters(study, {r.pk: r.free_text.replace("concept", "cluster") for r in responses[1:]})
    study.shared_with.add(User.objects.get_or_create(username="friend")[0],
                          User.objects.get_or_create(username="gone")[0])
    _backdate(study)
    return Study.objects.get(pk=study.pk)


# -- what must survive a move --------------------------------------------------------------------------
def _fields(obj, skip=(), refs=None) -> dict:
    """Every concrete field of a row except its id, references translated to natural keys."""
    refs = refs or {}
    out = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name in skip:
            continue
        out[field.name] = refs[field.name](obj) if field.name in refs else getattr(obj, field.attname)
    return out


def snapshot(study) -> dict:
    """The whole study by natural keys (pseudonyms, item ids, condition names): what an
    identical study elsewhere would also give."""
    item_id = {i.pk: i.bundle_item.item_id for i in study.items.select_related("bundle_item")}
    return {
        "study": _fields(study, skip=("owner",), refs={"bundle": lambda s: s.bundle.manifest_sha256}),
        "conditions": [_fields(c, skip=("study",)) for c in study.conditions.order_by("pk")],
        "items": [_fields(i, skip=("study",), refs={"bundle_item": lambda i: i.bundle_item.item_id})
                  for i in study.items.order_by("pk")],
        "enrolments": {e.pseudonym: _fields(e, skip=("study",), refs={
            "condition": lambda e: e.condition.name, "item_order": lambda e: [item_id[pk] for pk in e.item_order]})
            for e in study.enrolments.all()},
        "responses": {(r.enrolment.pseudonym, item_id[r.item_id]): _fields(r, refs={
            "enrolment": lambda r: r.enrolment.pseudonym, "item": lambda r: item_id[r.item_id]})
            for r in Response.objects.filter(enrolment__study=study).select_related("enrolment")},
    }


def metrics(study) -> list[dict]:
    """The figures the study page, the API and the exports show."""
    return [condition_metrics(c) for c in study.conditions.all()]


def delete_study(study) -> None:
    Response.objects.filter(enrolment__study=study).delete()
    Enrolment.objects.filter(study=study).delete()
    study.delete()


def row_counts() -> dict:
    return {m.__name__: m.objects.count() for m in (Study, Condition, StudyItem, Enrolment, Response)}


# -- (a) round trip in one database ----------------------------------------------------------------------
@pytest.mark.parametrize("task", ["simulation", "concept", "error"])
def test_a_study_moved_out_and_back_has_identical_metrics_and_every_field(task):
    study = build_study(task)
    before, figures = snapshot(study), metrics(study)
    assert figures[0]["alpha"] is not None and Response.objects.filter(enrolment__study=study).count() == 27
    if task == "concept":
        # one answer left unclustered (in whichever condition its annotator was drawn into)
        assert sum(f["clustered"] for f in figures) == sum(f["responses"] for f in figures) - 1
    document = json.loads(json.dumps(export_study(study)))  # as it travels: a file
    assert (document["format"], document["version"]) == (FORMAT, VERSION)
    owner = study.owner
    delete_study(study)
    User.objects.filter(username="gone").delete()
    assert row_counts() == {"Study": 0, "Condition": 0, "StudyItem": 0, "Enrolment": 0, "Response": 0}

    notes = []
    moved = import_study(document, owner, notes=notes)

    assert snapshot(moved) == before
    assert metrics(moved) == figures
    assert moved.owner == owner and list(moved.shared_with.values_list("username", flat=True)) == ["friend"]
    assert notes == ["not shared with gone: no such user here"]
    assert moved.created_at == BASE_TIME
    assert Enrolment.objects.get(pseudonym="halfway").position == 3


def test_the_export_covers_every_field_of_every_model():
    """A field added to a model later must be added to the document too."""
    document = export_study(build_study())
    enrolment = document["enrolments"][0]
    keys = {
        Study: set(document["study"]) - {"owner"}, Condition: set(document["conditions"][0]),
        StudyItem: set(document["items"][0]) | {"bundle_item"}, Enrolment: set(enrolment) - {"responses"},
        Response: set(enrolment["responses"][0]) | {"enrolment"},
    }
    for model, exported in keys.items():
        fields = {f.name for f in model._meta.get_fields() if f.concrete and not f.primary_key} - {"study", "owner"}
        assert fields - exported <= {"bundle"}, model.__name__


def test_the_imported_study_keeps_annotators_links_working(client):
    study = build_study()
    document, owner = export_study(study), study.owner
    halfway_token = Enrolment.objects.get(pseudonym="halfway").token
    delete_study(study)
    moved = import_study(document, User.objects.create_user("new-owner"))
    assert moved.invite_token == document["study"]["invite_token"] and moved.owner.username == "new-owner"
    assert document["study"]["owner"] == owner.username and moved.status == Study.Status.OPEN
    halfway = Enrolment.objects.get(token=halfway_token)
    next_item = halfway.item_order[halfway.position]
    response, created = submit_response(halfway, next_item, _pick("simulation", 4)(StudyItem.objects.get(pk=next_item)))
    assert created and response.item.study_id == moved.pk


def test_the_commands_move_a_study_through_a_file(tmp_path, capsys):
    study = build_study("concept")
    before, figures = snapshot(study), metrics(study)
    path = tmp_path / "study.json"
    call_command("export_study", str(study.pk), "-o", str(path))
    assert f"exported study {study.pk}" in capsys.readouterr().out
    call_command("export_study", str(study.pk))  # to standard output
    assert json.loads(capsys.readouterr().out) == {**json.loads(path.read_text()), "exported_at": ANY}
    delete_study(study)
    call_command("import_study", str(path), "--owner", "friend")
    out = capsys.readouterr().out
    assert "imported study" in out and "note: not shared with" not in out and "owned here by friend" in out
    moved = Study.objects.get()
    assert snapshot(moved) == before and metrics(moved) == figures and moved.owner.username == "friend"


def test_the_commands_refuse_bad_input_with_a_message(tmp_path):
    study = build_study()
    path = tmp_path / "study.json"
    call_command("export_study", str(study.pk), "-o", str(path))
    with pytest.raises(CommandError, match="there is no study 999999"):
        call_command("export_study", "999999")
    with pytest.raises(CommandError, match="there is no user 'nobody'"):
        call_command("import_study", str(path), "--owner", "nobody")
    (tmp_path / "broken.json").write_text('{"format": ')
    with pytest.raises(CommandError, match="broken.json is not JSON"):
        call_command("import_study", str(tmp_path / "broken.json"), "--owner", "friend")
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_study", str(tmp_path / "missing.json"), "--owner", "friend")
    counts = row_counts()
    with pytest.raises(CommandError, match="import refused, nothing written: the study's invite token is already used"):
        call_command("import_study", str(path), "--owner", "friend")
    assert row_counts() == counts


# -- (c) refusals: a message, and nothing written ------------------------------------------------------------
def _refused(document, match):
    """The import is refused with ``match`` in the message and the database is unchanged."""
    counts, study = row_counts(), Study.objects.first()
    before = snapshot(study) if study else None
    with pytest.raises(StudyError, match=match):
        import_study(document, User.objects.get(username="friend"))
    assert row_counts() == counts
    if study:
        assert snapshot(Study.objects.get(pk=study.pk)) == before


@pytest.fixture
def moved_out():
    """An exported study, deleted here, and another study still here that must stay untouched."""
    study = build_study()
    document = export_study(study)
    delete_study(study)
    build_study("error")
    return document


def test_a_study_whose_bundle_is_not_here_is_refused(moved_out):
    document = copy.deepcopy(moved_out)
    document["bundle"]["manifest_sha256"] = "f" * 64
    name = document["bundle"]["name"]
    _refused(document, rf"import bundle '{name}' \(sha ffffffffffff…\) first with manage.py import_bundle")


def test_an_unknown_format_or_version_is_refused(moved_out):
    for change, match in [
        (lambda d: d.update(version=2), "document.version is 2, but this installation reads version 1"),
        (lambda d: d.update(version="1"), "document.version must be a whole number"),
        (lambda d: d.pop("version"), "document.version must be a whole number; got None"),
        (lambda d: d.update(format="something-else"), "document.format must be 'multiviz-study'"),
    ]:
        document = copy.deepcopy(moved_out)
        change(document)
        _refused(document, match)
    _refused([1, 2], "the document must be a JSON object")


def test_malformed_fields_are_refused_naming_the_field(moved_out):
    for change, match in [
        (lambda d: d["enrolments"][1]["responses"][2].update(confidence="high"),
         r"enrolments\[1\]\.responses\[2\]\.confidence: must be a whole number; got str"),
        (lambda d: d["enrolments"][0].update(step="dancing"), r"enrolments\[0\]\.step: .*dancing.* is not a valid choice"),
        (lambda d: d["enrolments"][0].pop("started_at"), r"enrolments\[0\]\.started_at: missing"),
        (lambda d: d["enrolments"][2].update(completed_at="yesterday"),
         r"enrolments\[2\]\.completed_at: must be an ISO 8601 time"),
        (lambda d: d["enrolments"][0].update(condition="Rg only"), r"enrolments\[0\]\.condition: 'Rg only' is not"),
        (lambda d: d["conditions"][1].update(stages=["U", "X"]), r"conditions\[1\]\.stages\[1\]: .*X.* is not a valid choice"),
        (lambda d: d["study"].update(task="guessing"), r"study\.task: .*guessing.* is not a valid choice"),
        (lambda d: d["study"].update(title=""), r"study\.title: This field may not be blank"),
        (lambda d: d["enrolments"][1].update(pseudonym="PID-0"), r"enrolments\[1\]: pseudonym 'PID-0' appears twice"),
        (lambda d: d["enrolments"][0]["responses"].append(dict(d["enrolments"][0]["responses"][0])),
         r"enrolments\[0\]\.responses\[6\]: a response to item 'i\d' appears twice"),
        (lambda d: d["enrolments"][0].update(position=99),
         r"enrolments\[0\]\.position must be a whole number from 0 to 6"),
        (lambda d: d["enrolments"][0].update(item_order=[r["item"] for r in d["enrolments"][0]["responses"][1:]],
                                             position=5),
         r"enrolments\[0\]\.responses\[0\]\.item: 'i\d' is not in this annotator's item_order"),
        (lambda d: d.update(items="all"), r"items: Expected a list of items"),
    ]:
        document = copy.deepcopy(moved_out)
        change(document)
        _refused(document, match)


def test_an_item_missing_from_the_bundle_is_refused(moved_out):
    document = copy.deepcopy(moved_out)
    document["items"][2]["item_id"] = "i99"
    _refused(document, r"items\[2\]\.item_id: item 'i99' is not in bundle 'b0' here")
    document = copy.deepcopy(moved_out)
    document["enrolments"][3]["item_order"][1] = "i77"
    _refused(document, r"enrolments\[3\]\.item_order: \['i77'\] are not items of this study")


def test_tokens_already_used_here_are_refused_naming_the_study(moved_out):
    here = import_study(copy.deepcopy(moved_out), User.objects.get(username="friend"))
    _refused(copy.deepcopy(moved_out),
             rf"the study's invite token is already used here by study #{here.pk} 't' \(owner friend\)")
    document = copy.deepcopy(moved_out)
    document["study"]["invite_token"] = "a-fresh-invite-token"
    _refused(document,
             rf"annotator 'PID-0''s enrolment token is already used here by an enrolment in study #{here.pk} 't'")


def test_a_failure_while_writing_leaves_nothing_behind(moved_out, monkeypatch):
    import annotations.transfer

    real = annotations.transfer._create_responses
    calls = []

    def fail_on_the_third_annotator(enrolment, responses, items):
        calls.append(enrolment.pseudonym)
        if len(calls) == 3:
            from django.db import IntegrityError
            raise IntegrityError("the disk is full")
        real(enrolment, responses, items)

    monkeypatch.setattr(annotations.transfer, "_create_responses", fail_on_the_third_annotator)
    _refused(copy.deepcopy(moved_out), "the study could not be saved, nothing was written: the disk is full")
    assert len(calls) == 3


# -- (d) the download on the study page -----------------------------------------------------------------------
def test_the_study_page_offers_the_whole_study_to_its_researchers_only(client):
    study = build_study()
    url = f"/studies/{study.pk}/whole-study.json"
    client.force_login(study.owner)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Download the whole study (to move it)" in page and url in page
    download = client.get(url)
    assert download.status_code == 200 and download["Content-Type"].startswith("application/json")
    assert download["Content-Disposition"] == f'attachment; filename="study-{study.pk}-whole.json"'
    document = json.loads(download.content)
    expected = export_study(study)
    assert {**document, "exported_at": None} == {**expected, "exported_at": None}
    client.force_login(User.objects.get(username="friend"))  # shared with: may download
    assert client.get(url).status_code == 200
    client.force_login(User.objects.create_user("mallory"))
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


# -- (b) two real installations -----------------------------------------------------------------------------
BUILD_IN_A = """
from django.contrib.auth.models import User
from annotations.services import submit_response
from studies.models import Bundle
from studies.services import create_study, enrol, finish

owner = User.objects.create_user("ada")
Bundle.objects.update(owner=owner)
study = create_study(owner, Bundle.objects.get(), title="Moved between installations", presets=["U", "U+C"],
                     practice=0, group_size=5, open_now=True)
for k in range(5):
    e = enrol(study, pseudonym=f"p{k}", prolific_study_id="S", prolific_session_id=f"s{k}")
    e.step = "items"
    e.save()
    for n, item_id in enumerate(e.item_order[: 1 if k == 4 else None]):
        item = study.items.get(pk=item_id)
        choice = item.bundle_item.prediction if (k + n) % 2 else item.choices[0]
        submit_response(e, item_id, {"choice": choice, "confidence": 1 + k, "seconds_on_item": 2.5 + k})
    if k < 4:
        finish(e, {"comments": f"annotator {k}"})
study.shared_with.add(User.objects.create_user("bob"), User.objects.create_user("carol"))
"""

WRITE_METRICS = """
import json
from annotations.selectors import condition_metrics
from studies.models import Study

study = Study.objects.get()
with open({out!r}, "w") as f:
    json.dump([condition_metrics(c) for c in study.conditions.all()], f, sort_keys=True)
"""


def _installation(folder: Path):
    """``manage.py`` in an installation of its own: SQLite in ``folder``, whatever this
    process's database is."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env["MULTIVIZ_DATA_DIR"] = str(folder)

    def manage(*args):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"manage.py {' '.join(args[:2])}: {done.stdout}\n{done.stderr}"
        return done.stdout

    return manage


@pytest.mark.slow
def test_a_study_moves_between_two_installations_with_identical_metrics(tmp_path, built_bundle):
    a, b = _installation(tmp_path / "a"), _installation(tmp_path / "b")
    for manage in (a, b):
        manage("migrate", "--noinput")
        manage("import_bundle", str(built_bundle))
    a("shell", "-c", BUILD_IN_A)
    a("export_study", "1", "-o", str(tmp_path / "study.json"))
    b("shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('bob')")
    out = b("import_study", str(tmp_path / "study.json"), "--owner", "bob")
    assert "imported study 1 'Moved between installations'" in out and "owned here by bob (exported from ada's" in out
    assert "note: not shared with carol: no such user here" in out
    for name, manage in (("a", a), ("b", b)):
        manage("shell", "-c", WRITE_METRICS.format(out=str(tmp_path / f"metrics-{name}.json")))
        manage("export_study", "1", "-o", str(tmp_path / f"again-{name}.json"))
    metrics_a = json.loads((tmp_path / "metrics-a.json").read_text())
    assert metrics_a == json.loads((tmp_path / "metrics-b.json").read_text())
    assert sum(m["responses"] for m in metrics_a) == 9 and sum(m["completed"] for m in metrics_a) == 4
    again_a, again_b = (json.loads((tmp_path / f"again-{n}.json").read_text()) for n in "ab")
    for doc in (again_a, again_b):
        doc.pop("exported_at")
        doc["study"].pop("owner")
        doc["study"].pop("shared_with")
    assert again_a == again_b  # everything else, timestamps included, arrived as it was
