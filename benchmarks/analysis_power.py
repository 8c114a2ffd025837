"""The tests between conditions at the paper's size (issue 16): false-positive rates over
seeded null studies and the power at a planted 20-point difference, for the accuracy model
of :mod:`annotations.analysis` (the one the study page, the API and the exports run), and
the false-positive rate of the ordinal confidence model.

    .venv/bin/python -m benchmarks.analysis_power [--sims 1000] [--out benchmarks/results/analysis_power.json]

Studies are drawn by :func:`annotations.analysis.simulate_accuracy_answers`: 5 conditions ×
3 annotators × 20 items (every annotator answers every item), annotator effects with SD
``--annotator-sd`` and item effects with SD 1.0 on the logit scale; the null puts every
condition at 60 %, the planted difference one condition at 80 %. Tests at the 5 % level.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

CONDITIONS, ANNOTATORS, ITEMS = 5, 3, 20
NULL = [0.6] * CONDITIONS
PLANTED = [0.6] * (CONDITIONS - 1) + [0.8]


def _rate(result: dict) -> dict:
    lo = max(result["power"] - 1.96 * result["monte_carlo_se"], 0.0)
    hi = min(result["power"] + 1.96 * result["monte_carlo_se"], 1.0)
    return {"rate": result["power"], "monte_carlo_95": [lo, hi], "sims": result["sims"]}


def confidence_false_positives(sims: int, seed: int, annotator_sd: float) -> dict:
    """Share of null studies (confidence 1–5 from a proportional-odds model with annotator and
    item effects, no condition effect) where :func:`confidence_model` rejects at 5 %."""
    from annotations.analysis import confidence_model

    rng = np.random.default_rng(seed)
    cuts = np.array([-2.0, -0.7, 0.5, 1.8])
    n_ann = CONDITIONS * ANNOTATORS
    ann = np.repeat(np.arange(n_ann), ITEMS)
    item = np.tile(np.arange(ITEMS), n_ann)
    names = [f"c{k}" for k in range(CONDITIONS)]
    omnibus = contrast = 0
    for _ in range(sims):
        eta = rng.normal(0, annotator_sd, n_ann)[ann] + rng.normal(0, 0.5, ITEMS)[item] + rng.logistic(size=ann.size)
        result = confidence_model(1 + np.searchsorted(cuts, eta), [names[a // ANNOTATORS] for a in ann], ann,
                                  conditions=names)
        omnibus += result.get("omnibus", {}).get("p_value", 1.0) < 0.05
        contrast += result.get("contrasts", [{"p_value": 1.0}])[0]["p_value"] < 0.05
    se = lambda k: math.sqrt(k / sims * (1 - k / sims) / sims)  # noqa: E731
    return {"omnibus": {"rate": omnibus / sims, "monte_carlo_se": se(omnibus), "sims": sims},
            "first_contrast": {"rate": contrast / sims, "monte_carlo_se": se(contrast), "sims": sims}}


def alpha_difference_false_positives(sims: int, seed: int) -> dict:
    """Share of null studies (two conditions of 3 annotators × 20 items answering alike: each
    answer the item's own choice with probability 0.6, else one of 4 at random) where the
    bootstrap interval of the difference of α excludes 0."""
    from annotations.analysis import alpha_differences

    rng = np.random.default_rng(seed)
    excluded = 0
    for s in range(sims):
        truth = rng.integers(0, 4, ITEMS)
        answers = {c: {(f"{c}{a}", f"i{i}"): int(truth[i]) if rng.random() < 0.6 else int(rng.integers(0, 4))
                       for a in range(ANNOTATORS) for i in range(ITEMS)} for c in ("a", "b")}
        (row,) = alpha_differences(answers, seed=s)
        excluded += row["interval"] is not None and not row["interval"][0] <= 0 <= row["interval"][1]
    return {"rate": excluded / sims, "sims": sims}


def run(sims: int, seed: int, annotator_sd: float, confidence_sims: int) -> dict:
    from annotations.analysis import accuracy_power

    common = {"items": ITEMS, "annotator_sd": annotator_sd, "item_sd": 1.0, "seed": seed}
    out: dict = {"design": f"{CONDITIONS} conditions × {ANNOTATORS} annotators × {ITEMS} items",
                 "annotator_sd_logit": annotator_sd, "item_sd_logit": 1.0, "test_level": 0.05}
    start = time.perf_counter()
    out["false_positive_omnibus"] = _rate(accuracy_power(NULL, ANNOTATORS, sims=sims, **common))
    out["false_positive_contrast_c4_vs_c0"] = _rate(accuracy_power(NULL, ANNOTATORS, sims=sims, contrast=(0, 4),
                                                                   **common))
    out["seconds_per_null_study"] = (time.perf_counter() - start) / (2 * sims)
    out["false_positive_omnibus_by_annotator_sd"] = {
        str(sd): _rate(accuracy_power(NULL, ANNOTATORS, sims=sims, **{**common, "annotator_sd": sd}))
        for sd in (0.0, 0.25, 1.0)}
    out["power_20_points"] = {}
    for n in (3, 5, 10):
        out["power_20_points"][f"{n}_annotators"] = {
            "omnibus": _rate(accuracy_power(PLANTED, n, sims=sims, **common)),
            "contrast_80_vs_60": _rate(accuracy_power(PLANTED, n, sims=sims, contrast=(0, 4), **common))}
    out["alpha_difference_interval_excludes_0_under_null"] = alpha_difference_false_positives(min(sims, 300), seed)
    if confidence_sims:
        out["confidence_false_positive"] = confidence_false_positives(confidence_sims, seed, annotator_sd)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=1000, help="simulated studies per figure")
    parser.add_argument("--confidence-sims", type=int, default=200)
    parser.add_argument("--annotator-sd", type=float, default=0.5, help="between-annotator SD, logit scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "analysis_power.json")
    args = parser.parse_args(argv)
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    started = time.perf_counter()
    result = run(args.sims, args.seed, args.annotator_sd, args.confidence_sims)
    result.update({"seconds": time.perf_counter() - started, "python": sys.version.split()[0],
                   "machine": platform.machine(), "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    print(json.dumps(result, indent=1, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
