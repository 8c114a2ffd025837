"""One plot per test of :func:`annotations.analysis.study_analysis`, as server-side SVG in the
style of :mod:`annotations.plots`: a row per contrast, the dot at its estimate and the whisker
its interval. Odds ratios are drawn on a log₂ axis (so OR 2 and OR ½ are as far from 1),
α differences on a linear one; the label carries the p-value and effect beside it."""

from __future__ import annotations

import math

from .figures import figure
from .plots import interval_plot

__all__ = ["analysis_plots"]


class _PowerOfTwo:
    """A ``fmt`` for :func:`interval_plot` on a log₂ axis: the value 1 is written "2"."""

    def format(self, v: float) -> str:  # noqa: A003 - the str.format protocol interval_plot calls
        return figure(2 ** v, 2) if abs(v) < 3 else f"{2 ** v:g}"


def _log2(v: float) -> float:
    return math.log2(v) if v and v > 0 and math.isfinite(v) else (-8.0 if not v else 8.0)


def _p(p) -> str:
    return "p –" if p is None else ("p < 0.001" if p < 0.001 else f"p = {figure(p, 3)}")


def _odds_ratio_plot(model: dict, title: str, effect_label: str, effect_scale: float, effect_digits: int) -> str:
    rows = []
    for c in model["contrasts"]:
        d = c["difference"]
        effect = "" if d is None else f"{effect_label} {'+' if d >= 0 else ''}{figure(d * effect_scale, effect_digits)}"
        rows.append({"label": f"{c['condition']} vs {c['versus']} · {_p(c['p_value'])} · {effect}",
                     "value": _log2(c["odds_ratio"]), "low": _log2(c["interval"][0]), "high": _log2(c["interval"][1])})
    return interval_plot(rows, title=title, lo=-4, hi=4, ticks=[-4, -2, -1, 0, 1, 2, 4], fmt=_PowerOfTwo(), width=760,
                         label_w=420)


def analysis_plots(analysis: dict) -> list[str]:
    """SVGs of the accuracy contrasts (odds ratios), the confidence contrasts (odds ratios of a
    higher confidence) and the α differences, each only where it is defined."""
    level = f"{analysis['level']:.0%}"
    plots = []
    accuracy = analysis.get("accuracy")
    if accuracy and "contrasts" in accuracy:
        plots.append(_odds_ratio_plot(accuracy, f"Accuracy: odds ratio of a right answer, {level} interval (log scale)",
                                      "Δ accuracy", 100, 1))
    confidence = analysis.get("confidence")
    if confidence and "contrasts" in confidence:
        plots.append(_odds_ratio_plot(confidence, f"Confidence: odds ratio of a higher confidence, {level} interval "
                                                  "(log scale)", "Δ mean", 1, 2))
    pairs = [p for p in analysis["alpha_difference"]["pairs"] if p["difference"] is not None]
    if pairs:
        rows = [{"label": f"{p['condition']} − {p['versus']} · {_p(p['p_value'])}", "value": p["difference"],
                 "low": p["interval"][0] if p["interval"] else None,
                 "high": p["interval"][1] if p["interval"] else None} for p in pairs]
        plots.append(interval_plot(rows, title=f"Difference of α, jackknife {level} interval (items and annotators)",
                                   lo=-1, hi=1, ticks=[-1, -0.5, 0, 0.5, 1], fmt="{:+.2f}", width=760, label_w=420))
    return plots


def analysis_section(study, conditions=None, answers=None) -> dict:
    """What the study page's analysis section shows: the analysis (the API's and the
    exports' very numbers), its plots and each annotator's quality figures. ``conditions``
    and their ``answers`` (:func:`annotations.selectors.conditions_answers`): when read already."""
    from .analysis import annotator_quality, study_analysis

    analysis = study_analysis(study, conditions, answers)
    return {"analysis": analysis, "analysis_plots": analysis_plots(analysis), "quality": annotator_quality(study)}
