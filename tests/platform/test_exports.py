"""Exports: the tidy CSV, JSON and the paper-style summary, for the owner only."""

import csv
import io
import json

import pytest
from django.contrib.auth.models import User

from annotations.exports import CSV_COLUMNS, response_rows, responses_csv, summary_latex, summary_rows
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
    text = b"".join(client.get(f"/studies/{study.pk}/export.csv").streaming_content).decode()
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 4 and parsed[0]["study"] == study.title
    data = json.loads(client.get(f"/studies/{study.pk}/export.json").content)
    assert len(data["responses"]) == 4 and data["metrics"][0]["accuracy"]["n"] == 2
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert study.invite_token in page and "accuracy (%)" in page
    client.logout()
    assert client.get(f"/studies/{study.pk}/export.csv").status_code == 302


def test_the_csv_has_the_concept_cluster_of_each_clustered_answer_and_empty_otherwise():
    from annotations.models import Response
    from annotations.services import assign_concept_clusters

    study = make_study(task="concept", n_items=2, practice=0)
    answer_all(enrol(study, pseudonym="a"), lambda item: {"free_text": f"text {item.pk}", "confidence": 3})
    first, second = Response.objects.filter(enrolment__study=study).order_by("pk")
    assign_concept_clusters(study, {first.pk: "redness"})
    parsed = list(csv.DictReader(io.StringIO(responses_csv(study))))
    assert [(r["answer"], r["concept_cluster"]) for r in parsed] == [(first.free_text, "redness"),
                                                                    (second.free_text, "")]


def test_the_closing_answers_are_in_the_annotators_csv_and_the_json(client):
    from studies.models import Enrolment
    from studies.services import finish

    study = simulated(make_study(n_items=2, practice=0))
    finish(Enrolment.objects.get(study=study, pseudonym="a"), {"clarity": "4", "comments": 'clear, "mostly"\nthanks'})
    enrol(study, pseudonym="late")  # has not reached the closing questions
    client.force_login(study.owner)
    response = client.get(f"/studies/{study.pk}/annotators.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = {r["annotator"]: r for r in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}
    assert set(rows) == {"a", "b", "late"}
    assert (rows["a"]["closing_clarity"], rows["a"]["closing_comments"]) == ("4", 'clear, "mostly"\nthanks')
    assert (rows["b"]["closing_clarity"], rows["late"]["closing_comments"]) == ("", "")
    assert (rows["a"]["responses"], rows["late"]["responses"]) == ("2", "0") and rows["a"]["completed_at"]
    data = json.loads(client.get(f"/studies/{study.pk}/export.json").content)
    closing = {a["annotator"]: a["closing_answers"] for a in data["annotators"]}
    assert closing == {"a": {"clarity": "4", "comments": 'clear, "mostly"\nthanks'}, "b": {}, "late": {}}
    assert "token" not in json.dumps(data["annotators"])
    client.force_login(User.objects.create_user("eve"))
    assert client.get(f"/studies/{study.pk}/annotators.csv").status_code == 404


def test_the_latex_table_writes_the_stages_in_the_papers_notation():
    study = simulated(make_study(n_items=2, practice=0, conditions=(
        ("U+C+Rℓ", ["U", "C", "Rl"], 3), ("Rg+P", ["Rg", "P"], 3), ("100% & more_", ["U"], 3))))
    tex = summary_latex(study)
    assert r"U+C+$R_\ell$ &" in tex and r"$R_g$+P &" in tex
    assert r"100\% \& more\_ &" in tex
    assert "ℓ" not in tex and r"\_\ell" not in tex


def two_simulation_studies():
    """Two studies on two datasets: U and U+C+Rℓ in the first, U+C+Rℓ and Rg+P in the second."""
    a = simulated(make_study(n_items=4, practice=0, conditions=(("U", ["U"], 3), ("U+C+Rℓ", ["U", "C", "Rl"], 3))))
    b = make_study(n_items=4, practice=0, conditions=(("Local", ["Rl", "C", "U"], 3), ("Rg+P", ["Rg", "P"], 3)))
    b.bundle.dataset = "mm_imdb"
    b.bundle.save()
    for name in ("c", "d", "e", "f"):
        answer_all(enrol(b, pseudonym=name), lambda item: {"choice": item.bundle_item.prediction})
    return a, b


def test_results_table_puts_datasets_in_column_groups_and_matches_conditions_by_stages():
    from django.core.management import call_command

    from annotations.selectors import condition_metrics

    a, b = two_simulation_studies()
    out = io.StringIO()
    call_command("results_table", str(a.pk), str(b.pk), stdout=out)
    tex = out.getvalue()
    assert r"\multicolumn{2}{c}{shapes\_vqa} & \multicolumn{2}{c}{mm\_imdb}" in tex
    assert r"condition & accuracy (\%) & $\alpha$ & accuracy (\%) & $\alpha$ \\" in tex
    metrics = {(s.pk, c.name): condition_metrics(c) for s in (a, b) for c in s.conditions.all()}
    local = [line for line in tex.splitlines() if line.startswith(r"U+C+$R_\ell$ &")]
    acc_a = metrics[a.pk, "U+C+Rℓ"]["accuracy"]
    assert len(local) == 1 and f"{100 * acc_a['mean']:.1f} $\\pm$ {100 * acc_a['std']:.1f}" in local[0]
    assert r"100.0 $\pm$ 0.0 & 1.00" in local[0]  # the second study's "Local": the same stages
    assert any(line.startswith(r"$R_g$+P & -- & -- & 100.0") for line in tex.splitlines())
    assert any(line.startswith("U & ") and line.endswith(r"& -- & -- \\") for line in tex.splitlines())

    call_command("results_table", str(a.pk), str(b.pk), "--format", "csv", stdout=(out := io.StringIO()))
    rows = {r["condition"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    assert list(rows) == ["U", "U+C+Rℓ", "Rg+P"] and rows["U+C+Rℓ"]["stages"] == "U+C+Rl"
    assert float(rows["U+C+Rℓ"]["shapes_vqa: accuracy (%) mean"]) == pytest.approx(100 * acc_a["mean"], abs=1e-3)
    assert rows["U+C+Rℓ"]["mm_imdb: annotators"] == "2"
    assert rows["U"]["mm_imdb: α"] == "" and rows["Rg+P"]["shapes_vqa: accuracy (%) mean"] == ""


def test_results_table_writes_to_a_file_or_says_why_it_cannot(tmp_path):
    from django.core.management import CommandError, call_command

    a, b = two_simulation_studies()
    target = tmp_path / "table.csv"
    call_command("results_table", str(a.pk), str(b.pk), "--format", "csv", "-o", str(target), stdout=io.StringIO())
    assert target.read_text().startswith("condition,stages,shapes_vqa: accuracy (%) mean")
    with pytest.raises(CommandError, match="cannot write"):
        call_command("results_table", str(a.pk), "-o", str(tmp_path / "no-such-folder" / "t.tex"), stdout=io.StringIO())


@pytest.mark.parametrize("ids, message", [
    (["999999"], "there is no study with id 999999"),
    (["x1"], "'x1' is not a study id"),
    ("mixed", "a table compares studies of one task; these are of different tasks"),
])
def test_results_table_refuses_unknown_ids_and_mixed_tasks(ids, message):
    from django.core.management import CommandError, call_command

    if ids == "mixed":
        ids = [str(make_study().pk), str(make_study(task="concept").pk)]
    with pytest.raises(CommandError, match=message):
        call_command("results_table", *ids, stdout=io.StringIO())


def test_the_results_page_picks_accessible_studies_for_the_table(client):
    a, b = two_simulation_studies()
    b.owner = a.owner
    b.save()
    other = make_study()  # someone else's
    client.force_login(a.owner)
    page = client.get(f"/studies/{a.pk}/").content.decode()
    assert f'name="study" value="{b.pk}"' in page and f'value="{other.pk}"' not in page
    shown = client.get(f"/studies/table/?study={a.pk}&study={b.pk}")
    assert shown.status_code == 200 and "mm_imdb" in shown.content.decode()
    tex = client.get(f"/studies/table/?study={a.pk}&study={b.pk}&format=latex")
    assert tex.status_code == 200 and r"\multicolumn{2}{c}{mm\_imdb}" in tex.content.decode()
    csv_text = client.get(f"/studies/table/?study={b.pk}&format=csv").content.decode()
    assert csv_text.startswith("condition,stages,mm_imdb: accuracy (%) mean")
    for query, message in ((f"study={a.pk}&study={other.pk}", f"Study: there is no study with id {other.pk}"),
                           ("format=html", "Study: pick at least one study"),  # the form sent, none picked
                           (f"study={a.pk}&format=pdf", "Format: choose")):
        refused = client.get(f"/studies/table/?{query}")
        assert refused.status_code == 400 and message in refused.content.decode()
