"""Concept assignment (paper 3.2): what does this feature stand for? A free-text concept and
a confidence; the researcher clusters the texts, and α is computed over the clusters."""

from __future__ import annotations

from studies.models import Study
from studies.selectors import feature_name
from studies.services import StudyError
from studies.task_registry import TaskSpec, register_task

from ..figures import plus_minus
from ..services import MAX_FREE_TEXT


def clean(answer: dict, item) -> dict:
    text = str(answer.get("free_text") or "").strip()
    if not text:
        raise StudyError("describe the concept in a few words")
    if len(text) > MAX_FREE_TEXT:
        raise StudyError(f"the concept is longer than {MAX_FREE_TEXT} characters")
    return {"free_text": text}


def annotator_fields(enrolment, item, names) -> dict:
    """The feature asked about, by its per-item name."""
    return {"feature": feature_name(enrolment, item, names, item.bundle_item.feature)}


def metrics(rows, answers, clusters) -> tuple[dict, dict]:
    clusters = clusters if clusters is not None else {r.pk: r.concept_cluster for r in rows if r.concept_cluster}
    values = {(r.annotator, r.item): clusters[r.pk] for r in rows if r.pk in clusters}
    by_item: dict[str, set] = {}
    counts: dict[str, int] = {}
    for (_, item), v in values.items():
        by_item.setdefault(item, set()).add(v)
        counts[item] = counts.get(item, 0) + 1
    full = sum(1 for i, vs in by_item.items() if len(vs) == 1 and counts[i] >= 2)
    return {"clustered": len(values), "full_agreement_items": full}, values


def summary_row(m: dict, alpha: str) -> dict:
    return {"confidence": plus_minus(m["confidence"], 1, 2), "agreement α": alpha}


CONCEPT = register_task(TaskSpec(
    Study.Task.CONCEPT, "concept assignment", answer_fields=("free_text",), clean=clean,
    form_template="annotate/answers/concept.html", annotator_fields=annotator_fields,
    value=lambda r: r.concept_cluster or r.free_text, metrics=metrics,
    alpha_over="the researcher's concept clusters", summary_row=summary_row,
    presets=(("Rℓ", ["Rl"], {}), ("Rℓ+Rg without highlights", ["Rl", "Rg"], {"rg_highlights": False}),
             ("Rℓ+Rg with highlights", ["Rl", "Rg"], {"rg_highlights": True})),
    group_size=5, clusters=True))
