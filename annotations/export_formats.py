"""The export formats of a study: one registration each (name, button label, file name,
content type and the function that writes it). The study page draws one button per format
(``{% export_links study %}``) and :func:`annotations.views.export` serves any of them at
``/studies/<id>/export/<name>/``, so adding a format is its writer plus one
:func:`register_export_format` (``docs/extending.md``). The built-in formats also keep the
addresses they had (``export.csv`` …)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from viz_engine.registries import Registry

from .analysis import ANALYSIS_COLUMNS, analysis_rows, study_analysis
from .exports import _csv_text, annotators_csv_chunks, responses_csv_chunks, study_json, summary_latex

__all__ = ["ExportFormat", "register_export_format", "unregister_export_format", "export_formats",
           "get_export_format"]


@dataclass(frozen=True)
class ExportFormat:
    """name: in the URL and the button's id (``export-<name>``). write(study): the file's
    text, or an iterator of text chunks (streamed). filename: with ``{pk}`` for the study's id.
    legacy_url: the URL name of an older address of the same file, if any."""

    name: str
    label: str
    content_type: str
    filename: str
    write: Callable
    legacy_url: str = ""


_FORMATS: Registry[ExportFormat] = Registry("export format")


def register_export_format(fmt: ExportFormat, *, replace: bool = False) -> ExportFormat:
    return _FORMATS.add(fmt.name, fmt, replace=replace)


def unregister_export_format(name: str) -> None:
    _FORMATS.remove(name)


def export_formats() -> tuple[ExportFormat, ...]:
    return _FORMATS.entries()


def get_export_format(name: str) -> ExportFormat | None:
    return _FORMATS.find(name)


def _json(study) -> str:
    # one document, built whole: its metrics section needs every answer anyway, and 10,000
    # responses make a few megabytes (benchmarks/platform_size.py measures it)
    return json.dumps(study_json(study), indent=1, default=str)


register_export_format(ExportFormat("csv", "CSV", "text/csv; charset=utf-8", "study-{pk}-responses.csv",
                                    responses_csv_chunks, legacy_url="annotations:export-csv"))
register_export_format(ExportFormat("annotators-csv", "Annotators CSV", "text/csv; charset=utf-8",
                                    "study-{pk}-annotators.csv", annotators_csv_chunks,
                                    legacy_url="annotations:export-annotators-csv"))
register_export_format(ExportFormat("json", "JSON", "application/json", "study-{pk}.json", _json,
                                    legacy_url="annotations:export-json"))
register_export_format(ExportFormat("latex", "LaTeX table", "application/x-tex", "study-{pk}-summary.tex",
                                    summary_latex, legacy_url="annotations:export-latex"))


def _analysis_csv(study) -> str:
    """The tests between conditions, one row per test and contrast (the page's and the API's)."""
    return _csv_text(ANALYSIS_COLUMNS, analysis_rows(study_analysis(study)))


register_export_format(ExportFormat("analysis-csv", "Tests between conditions (CSV)", "text/csv; charset=utf-8",
                                    "study-{pk}-analysis.csv", _analysis_csv,
                                    legacy_url="annotations:export-analysis-csv"))
