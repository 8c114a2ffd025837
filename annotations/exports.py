"""Exports of a study: a tidy long CSV (one row per response), JSON of everything, and the
summary per condition in the form of the paper's Tables 2 (simulation) and 3 (concepts,
errors). Read-only."""

from __future__ import annotations

import csv
import io

from studies.models import Study
from studies.selectors import choices_shown

from .models import Response
from .selectors import condition_metrics

__all__ = ["CSV_COLUMNS", "response_rows", "responses_csv", "study_json", "summary_rows", "summary_latex"]

CSV_COLUMNS = ["study", "task", "condition", "stages", "annotator", "item", "practice", "answer", "choices_shown",
               "model_prediction",
               "matched_model", "correct_label", "confidence", "helpful_page", "seconds_on_item", "answered_at",
               "enrolled_at", "completed_at"]


def response_rows(study: Study) -> list[dict]:
    rows = []
    responses = (Response.objects.filter(enrolment__study=study)
                 .select_related("enrolment__condition", "item__bundle_item").order_by("enrolment_id", "created_at"))
    for r in responses:
        e, bi = r.enrolment, r.item.bundle_item
        answer = r.choice or r.category or r.free_text
        rows.append({
            "study": study.title, "task": study.task, "condition": e.condition.name,
            "stages": "+".join(e.condition.stages) or "none", "annotator": e.pseudonym, "item": bi.item_id,
            "practice": r.is_practice, "answer": answer,
            "choices_shown": " | ".join(choices_shown(e, r.item)) if study.task == Study.Task.SIMULATION else "",
            "model_prediction": bi.prediction,
            "matched_model": (r.choice == bi.prediction) if study.task == Study.Task.SIMULATION else "",
            "correct_label": bi.label, "confidence": r.confidence if r.confidence is not None else "",
            "helpful_page": r.helpful_page, "seconds_on_item": r.seconds_on_item if r.seconds_on_item is not None else "",
            "answered_at": r.created_at.isoformat(), "enrolled_at": e.started_at.isoformat(),
            "completed_at": e.completed_at.isoformat() if e.completed_at else "",
        })
    return rows


def responses_csv(study: Study) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(response_rows(study))
    return out.getvalue()


def study_json(study: Study, n_boot: int = 1000) -> dict:
    return {
        "study": {"title": study.title, "task": study.task, "status": study.status, "bundle": study.bundle.name,
                  "model": study.bundle.model, "dataset": study.bundle.dataset},
        "conditions": [{"name": c.name, "stages": c.stages, "rg_highlights": c.rg_highlights, "live_sog": c.live_sog,
                        "ask_helpful_page": c.ask_helpful_page, "global_feature_ids": c.global_feature_ids,
                        "target_size": c.target_size}
                       for c in study.conditions.all()],
        "items": [{"item": i.bundle_item.item_id, "practice": i.is_practice, "choices": i.choices,
                   "model_prediction": i.bundle_item.prediction, "correct_label": i.bundle_item.label}
                  for i in study.items.select_related("bundle_item")],
        "responses": response_rows(study),
        "metrics": [condition_metrics(c, n_boot=n_boot) for c in study.conditions.all()],
    }


def _pm(stat: dict, scale: float = 1.0, digits: int = 1) -> str:
    if stat["mean"] is None:
        return "–"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def summary_rows(study: Study, n_boot: int = 1000, metrics: list[dict] | None = None) -> list[dict]:
    """One row per condition, with the columns of the paper's table for this task
    (``metrics``: the conditions' metrics if already computed, in condition order)."""
    rows = []
    conditions = list(study.conditions.all())
    metrics = metrics or [condition_metrics(c, n_boot=n_boot) for c in conditions]
    for c, m in zip(conditions, metrics):
        alpha = "undefined" if m["alpha"] is None else f"{m['alpha']:.2f}"
        if m["alpha_interval"]:
            alpha += f" [{m['alpha_interval'][0]:.2f}, {m['alpha_interval'][1]:.2f}]"
        row = {"condition": c.name, "annotators": m["annotators"]}
        if study.task == Study.Task.SIMULATION:
            row["accuracy (%)"] = _pm(m["accuracy"], 100)
            row["agreement α"] = alpha
            share = m["features_helped_more"]
            row["Features helped more (%)"] = "–" if share is None else f"{100 * share:.1f}"
        else:
            row["confidence"] = _pm(m["confidence"], 1, 2)
            row["agreement α"] = alpha
            if study.task == Study.Task.ERROR:
                row["errors (unimodal / cross-modal / prediction)"] = " / ".join(str(v) for v in m["categories"].values())
        rows.append(row)
    return rows


def summary_latex(study: Study, n_boot: int = 1000) -> str:
    rows = summary_rows(study, n_boot=n_boot)
    if not rows:
        return "% no conditions\n"
    cols = list(rows[0])

    def esc(s):
        return str(s).replace("%", r"\%").replace("±", r"$\pm$").replace("α", r"$\alpha$").replace("&", r"\&") \
            .replace("ℓ", r"$_\ell$").replace("_", r"\_")

    lines = [r"\begin{tabular}{l" + "c" * (len(cols) - 1) + "}", r"\toprule", " & ".join(esc(c) for c in cols) + r" \\",
             r"\midrule"]
    lines += [" & ".join(esc(r[c]) for c in cols) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
