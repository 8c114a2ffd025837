"""Exports of a study: a tidy long CSV (one row per response), a CSV of the annotators (one
row each, with their closing answers), JSON of everything, the summary per condition in the
form of the paper's Tables 2 (simulation) and 3 (concepts, errors), and that table across
several studies (one column group per study's dataset). Read-only.

The CSVs go to spreadsheets, which run a cell starting with ``=``, ``+``, ``-`` or ``@`` as a
formula: ``defusedcsv`` writes such text (an annotator's concept, a Prolific id) with a
leading apostrophe, so it shows as text. The JSON keeps every text exactly."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

from defusedcsv import csv
from django.db.models import Count

from studies.models import CLOSING_QUESTIONS, Study
from studies.quality import is_right, known_answer
from studies.services import StudyError
from studies.stage_views import platform_stage_names
from studies.task_registry import task_spec

from .figures import plus_minus
from .models import Response
from .analysis import study_analysis
from .selectors import bonus_rows, condition_metrics

__all__ = ["CSV_COLUMNS", "ANNOTATOR_COLUMNS", "response_columns", "response_rows", "iter_response_rows", "responses_csv",
           "responses_csv_chunks", "annotator_rows", "annotators_csv", "annotators_csv_chunks",
           "study_json", "bonuses_csv", "summary_rows", "summary_latex", "latex_text", "table_studies", "results_table",
           "results_table_cells", "results_table_latex", "results_table_csv"]

CSV_COLUMNS = ["study", "task", "condition", "stages", "annotator", "item", "practice", "attention_check",
               "expected_answer", "answer_right", "answer", "choices_shown",
               "concept_cluster", "model_prediction", "matched_model", "correct_label", "confidence", "helpful_page",
               "seconds_on_item", "answered_at", "enrolled_at", "completed_at", "excluded", "exclusion_reason"]
# the closing answers go in a CSV of their own: they are one per annotator, not one per response
ANNOTATOR_COLUMNS = ["study", "task", "condition", "stages", "annotator", "step", "responses", "enrolled_at",
                     "completed_at", "excluded", "exclusion_reason", "exclusion_changed_by", "exclusion_changed_at",
                     "attention_right", "attention_checks", "practice_rounds", "practice_last_right",
                     "practice_last_of"]
JSON_ONLY = ("closing_answers", "exclusion_history", "practice_round_details")  # annotator fields that are not one CSV cell
EXPORT_CHUNK_ROWS = 1000  # rows read from the database, and rows of CSV sent, at a time


def response_rows(study: Study) -> list[dict]:
    return list(iter_response_rows(study))


def response_columns(study: Study) -> list[str]:
    """The responses CSV's columns: the shared ones, then any the study's task adds."""
    return CSV_COLUMNS + [c for c in task_spec(study.task).export_columns if c not in CSV_COLUMNS]


def iter_response_rows(study: Study):
    """The rows of :func:`response_rows` one at a time, read from the database in chunks;
    the task fills its own columns (``export_row`` in the task registry)."""
    task = task_spec(study.task)
    responses = (Response.objects.filter(enrolment__study=study)
                 .select_related("enrolment__condition", "item__bundle_item").order_by("enrolment_id", "created_at")
                 # an item's record and stage sections are the bulk of a bundle: never read them per response
                 .defer("item__bundle_item__record", "item__bundle_item__sections", "enrolment__item_order",
                        "enrolment__closing_answers"))
    for r in responses.iterator(chunk_size=EXPORT_CHUNK_ROWS):
        e, bi = r.enrolment, r.item.bundle_item
        answer = r.choice or r.category or r.free_text
        scored = is_right(r.item, r, study.task)  # against a known answer: attention checks, practice
        row = {
            "study": study.title, "task": study.task, "condition": e.condition.name,
            "stages": "+".join(e.condition.stages) or "none", "annotator": e.pseudonym, "item": bi.item_id,
            "practice": r.is_practice, "attention_check": r.item.attention_check,
            "expected_answer": known_answer(r.item, study.task), "answer_right": "" if scored is None else scored,
            "answer": answer, "concept_cluster": r.concept_cluster,
            "choices_shown": "", "model_prediction": bi.prediction, "matched_model": "",
            "correct_label": bi.label, "confidence": r.confidence if r.confidence is not None else "",
            "helpful_page": r.helpful_page, "seconds_on_item": r.seconds_on_item if r.seconds_on_item is not None else "",
            "answered_at": r.created_at.isoformat(), "enrolled_at": e.started_at.isoformat(),
            "completed_at": e.completed_at.isoformat() if e.completed_at else "",
            "excluded": e.excluded, "exclusion_reason": e.exclusion_reason,
        }
        matched = task.score(r, bi.prediction)
        yield {**row, "matched_model": "" if matched is None else matched, **task.export_row(r, e, bi)}


def _csv_text(columns: list[str], rows: list[dict], header: bool = True) -> str:
    return "".join(_csv_chunks(columns, rows, header=header))


def _csv_chunks(columns: list[str], rows, header: bool = True) -> Iterator[str]:
    """The CSV of ``rows`` (any iterable of dicts) as text chunks of ``EXPORT_CHUNK_ROWS`` rows:
    the header first (unless ``header`` is false), never the whole file at once."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    if header:
        writer.writeheader()
    for n, row in enumerate(rows, start=1):
        writer.writerow(row)
        if n % EXPORT_CHUNK_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def responses_csv(study: Study) -> str:
    return "".join(responses_csv_chunks(study))


def responses_csv_chunks(study: Study) -> Iterator[str]:
    """The responses CSV streamed: rows read, written and sent a chunk at a time."""
    return _csv_chunks(response_columns(study), iter_response_rows(study))


def annotator_rows(study: Study) -> list[dict]:
    """One row per enrolment, with its ``closing_answers`` (a dict of the closing page's fields),
    whether the researcher excluded it from the metrics, why, by whom and when, and every
    change of that (``exclusion_history``)."""
    enrolments = study.enrolments.select_related("condition", "exclusion_changed_by").order_by("started_at", "pk")
    answered = dict(Response.objects.filter(enrolment__study=study).values_list("enrolment").annotate(n=Count("pk")))
    attention: dict[int, tuple[int, int]] = {}
    for r in (Response.objects.filter(enrolment__study=study, item__attention_check=True)
              .select_related("item__bundle_item")):
        right, of = attention.get(r.enrolment_id, (0, 0))
        attention[r.enrolment_id] = (right + bool(is_right(r.item, r, study.task)), of + 1)
    return [{
        "study": study.title, "task": study.task, "condition": e.condition.name,
        "stages": "+".join(e.condition.stages) or "none", "annotator": e.pseudonym, "step": e.step,
        "responses": answered.get(e.pk, 0), "enrolled_at": e.started_at.isoformat(),
        "completed_at": e.completed_at.isoformat() if e.completed_at else "",
        "excluded": e.excluded, "exclusion_reason": e.exclusion_reason,
        "exclusion_changed_by": e.exclusion_changed_by.get_username() if e.exclusion_changed_by else "",
        "exclusion_changed_at": e.exclusion_changed_at.isoformat() if e.exclusion_changed_at else "",
        "attention_right": attention.get(e.pk, (0, 0))[0], "attention_checks": attention.get(e.pk, (0, 0))[1],
        "practice_rounds": len(e.practice_rounds),
        "practice_last_right": e.practice_rounds[-1]["right"] if e.practice_rounds else "",
        "practice_last_of": e.practice_rounds[-1]["of"] if e.practice_rounds else "",
        "closing_answers": dict(e.closing_answers or {}), "exclusion_history": list(e.exclusion_history),
        "practice_round_details": list(e.practice_rounds),
    } for e in enrolments]


def annotators_csv(study: Study) -> str:
    return "".join(annotators_csv_chunks(study))


def annotators_csv_chunks(study: Study) -> Iterator[str]:
    """The annotators, one row each: the closing questions as ``closing_<question>`` columns
    (empty for an annotator who did not reach them), then any other answers stored. The
    columns depend on every annotator's answers, so the rows (one per annotator) are read
    first; the text is still sent a chunk at a time."""
    rows = annotator_rows(study)
    extra = sorted({k for r in rows for k in r["closing_answers"]} - set(CLOSING_QUESTIONS))
    keys = [*CLOSING_QUESTIONS, *extra]
    flat = ({**{k: v for k, v in r.items() if k not in JSON_ONLY},
             **{f"closing_{k}": r["closing_answers"].get(k, "") for k in keys}} for r in rows)
    return _csv_chunks(ANNOTATOR_COLUMNS + [f"closing_{k}" for k in keys], flat)


def bonuses_csv(study: Study) -> str:
    """Prolific's bulk bonus form: one ``participant_id,amount`` line per annotator who is
    paid (a Prolific id, not excluded, an amount above 0), the amount with 2 decimals in the
    study's currency; no header line (Prolific reads every line as a payment)."""
    rows = [{"participant_id": r["annotator"], "amount": f"{r['amount']:.2f}"} for r in bonus_rows(study) if r["payable"]]
    return _csv_text(["participant_id", "amount"], rows, header=False)


def study_json(study: Study) -> dict:
    return {
        "study": {"title": study.title, "task": study.task, "status": study.status, "bundle": study.bundle.name,
                  "model": study.bundle.model, "dataset": study.bundle.dataset},
        "conditions": [{"name": c.name, "stages": c.stages, "rg_highlights": c.rg_highlights, "live_sog": c.live_sog,
                        "ask_helpful_page": c.ask_helpful_page, "global_feature_ids": c.global_feature_ids,
                        "target_size": c.target_size}
                       for c in study.conditions.all()],
        "quality_controls": {"attention_min_correct": study.attention_min_correct,
                             "gate_min_correct": study.gate_min_correct, "gate_attempts": study.gate_attempts},
        "items": [{"item": i.bundle_item.item_id, "practice": i.is_practice, "attention_check": i.attention_check,
                   "expected_answer": i.expected_answer, "instruction": i.instruction, "choices": i.choices,
                   "model_prediction": i.bundle_item.prediction, "correct_label": i.bundle_item.label}
                  for i in study.items.select_related("bundle_item")],
        "responses": response_rows(study),
        "annotators": annotator_rows(study),
        "metrics": [condition_metrics(c) for c in study.conditions.all()],
        "analysis": study_analysis(study),  # the tests between conditions, as the page and the API show them
    }


def _pm(stat: dict, scale: float = 1.0, digits: int = 1) -> str:
    return plus_minus(stat, scale, digits)


def summary_rows(study: Study, metrics: list[dict] | None = None) -> list[dict]:
    """One row per condition, with the columns of the paper's table for this task
    (``metrics``: the conditions' metrics if already computed, in condition order)."""
    rows = []
    conditions = list(study.conditions.all())
    metrics = metrics or [condition_metrics(c) for c in conditions]
    for c, m in zip(conditions, metrics):
        alpha = "undefined" if m["alpha"] is None else f"{m['alpha']:.2f}"
        if m["alpha_interval"]:
            alpha += f" [{m['alpha_interval'][0]:.2f}, {m['alpha_interval'][1]:.2f}]"
        row = {"condition": c.name, "annotators": m["annotators"], **task_spec(study.task).summary_row(m, alpha)}
        rows.append(row)
    return rows


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_MATH = [(re.compile(r"\bR(?:ℓ|l)(?![A-Za-z0-9])"), r"$R_\ell$"), (re.compile(r"\bRg(?![A-Za-z0-9])"), r"$R_g$"),
               (re.compile("±"), r"$\pm$"), (re.compile("α"), r"$\alpha$"), (re.compile("–"), "--")]


def latex_text(value) -> str:
    """``value`` as LaTeX text: special characters escaped, the stages in the paper's notation
    (Rℓ or Rl → ``$R_\\ell$``, Rg → ``$R_g$``), ± and α as math."""
    text = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(value))
    for pattern, replacement in _LATEX_MATH:
        text = pattern.sub(lambda _m, r=replacement: r, text)
    return text


def summary_latex(study: Study) -> str:
    rows = summary_rows(study)
    if not rows:
        return "% no conditions\n"
    cols = list(rows[0])
    lines = [r"\begin{tabular}{l" + "c" * (len(cols) - 1) + "}", r"\toprule",
             " & ".join(latex_text(c) for c in cols) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_text(r[c]) for c in cols) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# -- the paper's Table 2 across studies -------------------------------------------------------------
def table_studies(queryset, ids) -> list[Study]:
    """The studies ``ids`` (in that order, once each) among ``queryset`` — the ones the asker
    may see — or a :class:`StudyError` naming the id that is not a study or the mixed tasks."""
    wanted: list[int] = []
    for raw in ids:
        try:
            pk = int(str(raw).strip())
        except ValueError:
            raise StudyError(f"study: {str(raw)[:40]!r} is not a study id") from None
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        raise StudyError("study: pick at least one study")
    found = {s.pk: s for s in queryset.filter(pk__in=wanted)}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise StudyError(f"study: there is no study with id {missing[0]}")
    studies = [found[pk] for pk in wanted]
    tasks = {s.task for s in studies}
    if len(tasks) > 1:
        kinds = ", ".join(f"{s.pk}: {s.get_task_display()}" for s in studies)
        raise StudyError(f"study: a table compares studies of one task; these are of different tasks ({kinds})")
    return studies


def _condition_key(c) -> tuple:
    """What a condition shows: its stages (in canonical order) and the variants that change it."""
    stages = tuple(s for s in platform_stage_names() if s in c.stages)
    return stages, ("Rg" in stages and c.rg_highlights), c.live_sog


def _group_labels(studies: list[Study]) -> list[str]:
    datasets = [s.bundle.dataset for s in studies]
    return [d if datasets.count(d) == 1 else f"{d} · {s.title} (#{s.pk})" for d, s in zip(datasets, studies)]


def results_table(studies: list[Study]) -> dict:
    """The paper's Table 2 over ``studies`` (one task): a column group per study (its dataset),
    a row per condition, matched across studies by what the condition shows (stages and
    variants; by name too where one study has two such conditions). Each cell holds the
    condition's metrics from :func:`~annotations.selectors.condition_metrics`, or None.

    Returns ``{"task", "measure", "groups": [{"study", "label"}], "rows": [{"condition",
    "stages", "cells": [metrics | None per group]}]}``; ``measure`` is ``"accuracy"`` for model
    simulation, ``"confidence"`` for the other tasks (the paper's Table 3).
    """
    rows: dict[tuple, dict] = {}
    for g, study in enumerate(studies):
        conditions = list(study.conditions.all())
        keys = [_condition_key(c) for c in conditions]
        for c, key in zip(conditions, keys):
            if keys.count(key) > 1:
                key = (*key, c.name)
            row = rows.setdefault(key, {"condition": c.name, "stages": "+".join(key[0]) or "none",
                                        "cells": [None] * len(studies)})
            row["cells"][g] = condition_metrics(c)
    task = studies[0].task if studies else Study.Task.SIMULATION
    return {"task": task, "measure": task_spec(task).measure,
            "groups": [{"study": s, "label": label} for s, label in zip(studies, _group_labels(studies))],
            "rows": list(rows.values())}


def _measure_cell(table: dict, m: dict | None) -> str:
    if m is None:
        return "–"
    return _pm(m["accuracy"], 100) if table["measure"] == "accuracy" else _pm(m["confidence"], 1, 2)


def _alpha_cell(m: dict | None) -> str:
    if m is None:
        return "–"
    return "undefined" if m["alpha"] is None else f"{m['alpha']:.2f}"


def results_table_cells(table: dict) -> tuple[list[str], list[list[str]]]:
    """The table as text: the per-group headers and, per row, the condition then (measure, α) per group."""
    measure = "accuracy (%)" if table["measure"] == "accuracy" else "confidence"
    body = [[row["condition"], *[v for m in row["cells"] for v in (_measure_cell(table, m), _alpha_cell(m))]]
            for row in table["rows"]]
    return [measure, "α"], body


def results_table_latex(table: dict) -> str:
    """LaTeX (booktabs): a column group per dataset, each with the measure and α."""
    heads, body = results_table_cells(table)
    groups = table["groups"]
    spec = "l" + " cc" * len(groups)
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule",
             " & " + " & ".join(r"\multicolumn{2}{c}{" + latex_text(g["label"]) + "}" for g in groups) + r" \\",
             " ".join(rf"\cmidrule(lr){{{2 + 2 * k}-{3 + 2 * k}}}" for k in range(len(groups))),
             "condition & " + " & ".join(latex_text(h) for _ in groups for h in heads) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_text(v) for v in cells) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _number(value, scale: float = 1.0):
    return "" if value is None else round(value * scale, 4)


def _csv_cells(table: dict, m: dict | None) -> dict:
    """One study's cells of a row, named without the study (all empty when ``m`` is None)."""
    accuracy = table["measure"] == "accuracy"
    name = "accuracy (%)" if accuracy else "confidence"
    stat = (m or {}).get(table["measure"]) or {}
    low, high = (m or {}).get("alpha_interval") or (None, None)
    return {f"{name} mean": _number(stat.get("mean"), 100 if accuracy else 1),
            f"{name} std": _number(stat.get("std"), 100 if accuracy else 1),
            "annotators": m["annotators"] if m else "", "α": _number((m or {}).get("alpha")),
            "α 95% low": _number(low), "α 95% high": _number(high)}


def results_table_csv(table: dict) -> str:
    """CSV: a row per condition; per study ``<dataset>: <measure> mean``, ``… std``,
    ``… annotators``, ``… α`` and its bootstrap interval (empty where the study has no such
    condition or α is undefined)."""
    names = list(_csv_cells(table, None))
    columns = ["condition", "stages", *[f"{g['label']}: {n}" for g in table["groups"] for n in names]]
    out = []
    for row in table["rows"]:
        line = {"condition": row["condition"], "stages": row["stages"]}
        for g, m in zip(table["groups"], row["cells"]):
            line.update({f"{g['label']}: {n}": v for n, v in _csv_cells(table, m).items()})
        out.append(line)
    return _csv_text(columns, out)
