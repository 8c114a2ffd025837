"""Exports: the tidy CSV, JSON and the paper-style summary, for the owner only."""

import csv
import io
import json

import pytest
from django.contrib.auth.models import User

from annotations.exports import CSV_COLUMNS, response_rows, summary_latex, summary_rows
from tests.platform.study_helpers import answer_all, make_study
from studies.services import enrol

pytestmark = pytest.mark.django_db


def simulated(study):
    answer_all(enrol(study, pseudonym="a"), lambda item: {"choice": item.bundle_item.prediction})
    answer_all(enrol(study, pseudonym="b"), lambda item: {"choice": "red"})
    return study


def test_the_csv_has_one_row_per_response_with_whether_it_matched_the_model():
    study = simulated(make_study(n_items=4, practice=1))
    rows = response_rows(study)
    assert len(rows) == 10 and set(rows[0]) == set(CSV_COLUMNS)
    a = [r for r in rows if r["annotator"] == "a" and not r["practice"]]
    assert all(r["matched_model"] is True for r in a)
    b = [r for r in rows if r["annotator"] == "b" and not r["practice"]]
    assert [r["matched_model"] for r in b] == [r["model_prediction"] == "red" for r in b]


def test_the_summary_reports_accuracy_mean_std_and_alpha_per_condition():
    study = simulated(make_study(n_items=4, practice=1))
    (row,) = summary_rows(study)
    # a: 4/4 right; b answers red: right only on the item the model predicted red (1/4)
    assert row["accuracy (%)"] == "62.5 ± 53.0"
    assert row["annotators"] == 2
    tex = summary_latex(study)
    assert r"\begin{tabular}" in tex and r"62.5 $\pm$ 53.0" in tex


def test_only_the_owner_downloads_exports(client):
    study = simulated(make_study(n_items=2, practice=0))
    stranger = User.objects.create_user("mallory")
    client.force_login(stranger)
    for path in ("export.csv", "export.json", "summary.tex", ""):
        assert client.get(f"/studies/{study.pk}/{path}").status_code == 404
    client.force_login(study.owner)
    text = client.get(f"/studies/{study.pk}/export.csv").content.decode()
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 4 and parsed[0]["study"] == study.title
    data = json.loads(client.get(f"/studies/{study.pk}/export.json").content)
    assert len(data["responses"]) == 4 and data["metrics"][0]["accuracy"]["n"] == 2
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert study.invite_token in page and "accuracy (%)" in page
    client.logout()
    assert client.get(f"/studies/{study.pk}/export.csv").status_code == 302
