"""The tests between conditions at the paper's size (issue 16): false-positive rates over
seeded null studies and the power at a planted 20-point difference, for the accuracy model
of :mod:`annotations.analysis` (the one the study page, the API and the exports run), and
the false-positive rate of the ordinal confidence model, and the calibration and power of
the interval of a difference of α.

    .venv/bin/python -m benchmarks.analysis_power [--sims 1000] [--out benchmarks/results/analysis_power.json]

Studies are drawn by :func:`annotations.analysis.simulate_accuracy_answers`: 5 conditions ×
3 annotators × 20 items (every annotator answers every item), annotator effects with SD
``--annotator-sd`` and item effects with SD 1.0 on the logit scale; the null puts every
condition at 60 %, the planted difference one condition at 80 %. Tests at the 5 % level.
α studies are drawn by :func:`annotations.analysis.simulate_choice_answers` with the same
annotator and item effects (:func:`alpha_difference_calibration`).
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


ALPHA_SIZES = [(3, 20), (5, 20), (10, 20), (3, 40)]


def _alpha_studies(sims: int, seed: int, knowing: list[float], annotators: int, items: int,
                   annotator_sd: float) -> dict:
    """Seeded studies (:func:`simulate_choice_answers`, item SD 1.0) through :func:`alpha_differences`:
    ``excluded`` (studies × pairs: the pair's interval excludes 0; an untested pair does not), the
    untested pairs, the mean α of the last and the first condition, and the seconds per study."""
    from annotations.analysis import alpha_differences, simulate_choice_answers

    rng = np.random.default_rng(seed)
    excluded, untested, alphas = [], 0, []
    start = time.perf_counter()
    for _ in range(sims):
        rows = alpha_differences(simulate_choice_answers(knowing, annotators, items, annotator_sd=annotator_sd,
                                                         item_sd=1.0, rng=rng))
        untested += sum(r["interval"] is None for r in rows)
        excluded.append([r["interval"] is not None and not r["interval"][0] <= 0 <= r["interval"][1] for r in rows])
        last_first = rows[len(knowing) - 2]  # the pair (first condition, last condition)
        alphas.append((last_first["alpha"], last_first["alpha_versus"]))
    return {"excluded": np.array(excluded), "pairs_untested": untested,
            "mean_alpha_last_and_first_condition": np.nanmean(np.array(alphas, dtype=float), axis=0).tolist(),
            "seconds_per_study": (time.perf_counter() - start) / sims}


def _alpha_share(flags: np.ndarray, studies: dict) -> dict:
    """The share of ``flags`` with its Monte-Carlo 95 % interval (over all pairs of a study the pairs are
    not independent, so that interval is too narrow there)."""
    rate = float(flags.mean())
    half = 1.96 * math.sqrt(rate * (1 - rate) / flags.size)
    return {"rate": rate, "monte_carlo_95": [max(rate - half, 0.0), min(rate + half, 1.0)],
            "sims": int(studies["excluded"].shape[0]), "pairs_untested": studies["pairs_untested"],
            "mean_alpha_last_and_first_condition": studies["mean_alpha_last_and_first_condition"],
            "seconds_per_study": studies["seconds_per_study"]}


def alpha_difference_calibration(sims: int, seed: int, annotator_sd: float) -> dict:
    """The interval of a difference of α (:func:`annotations.analysis.alpha_differences`): how often it
    excludes 0 when the conditions answer alike (5 conditions whose annotators know an item's answer with
    probability 60 % on average, else pick one of 4 choices at random), for the first pair and over all
    pairs, at each size; and how often it excludes 0 for a condition whose annotators know 80 % (or 70 %)
    against one at 60 %. Then the same null with other annotator SDs and with fewer conditions."""
    from annotations.analysis import ALPHA_DIFFERENCE_METHOD

    out: dict = {"method": ALPHA_DIFFERENCE_METHOD, "null": {}, "power_c4_vs_c0": {}, "null_other_designs": {}}
    null = [0.6] * CONDITIONS
    for m, n in ALPHA_SIZES:
        size = f"{m}_annotators_{n}_items"
        studies = _alpha_studies(sims, seed, null, m, n, annotator_sd)
        out["null"][size] = {"first_pair": _alpha_share(studies["excluded"][:, 0], studies),
                             "all_pairs": _alpha_share(studies["excluded"], studies)}
        out["power_c4_vs_c0"][size] = {}
        for planted in (0.8, 0.7):
            studies = _alpha_studies(sims, seed + 1, null[:-1] + [planted], m, n, annotator_sd)
            out["power_c4_vs_c0"][size][f"{planted:.0%}_vs_60%"] = _alpha_share(studies["excluded"][:, CONDITIONS - 2],
                                                                               studies)
    for name, knowing, m, sd in (("annotator_sd_0", null, 3, 0.0), ("annotator_sd_1", null, 3, 1.0),
                                 ("2_conditions_3_annotators", [0.6] * 2, 3, annotator_sd),
                                 ("2_conditions_5_annotators", [0.6] * 2, 5, annotator_sd),
                                 ("3_conditions_5_annotators", [0.6] * 3, 5, annotator_sd),
                                 ("7_conditions_3_annotators", [0.6] * 7, 3, annotator_sd),
                                 ("knowing_40%", [0.4] * CONDITIONS, 3, annotator_sd),
                                 ("knowing_85%", [0.85] * CONDITIONS, 3, annotator_sd)):
        studies = _alpha_studies(sims, seed, knowing, m, ITEMS, sd)
        out["null_other_designs"][name] = _alpha_share(studies["excluded"][:, 0], studies)
    return out


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
    out["alpha_difference"] = alpha_difference_calibration(sims, seed, annotator_sd)
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
