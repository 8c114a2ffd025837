"""Performance and faithfulness benchmarks of the engine, measured side by side in one run.

    python -m benchmarks.engine --json bench-results/engine.json          # full run
    python -m benchmarks.engine --quick --json /tmp/b.json                # small sizes

Prints and writes (keys as named in the engine issue):
* ``sog_speedup`` — second-order gradients of every word of a question in one call vs a
  per-word loop (forward, gradient, second gradient per word, as the reference code does);
* ``emap_speedup`` — the N×N matrix for EMAP/DIME (N = 100) batched vs one forward per pair,
  on the early-fusion transformer (``emap_speedup_late_fusion``: the late-fusion model);
* ``lime_speedup`` — LIME with 1000 samples over image patches, batched vs one model call per
  sample (``lime_speedup_words``: over the question's words);
* ``slm_speedup_vs_sklearn`` and ``slm_heldout_acc_gap`` — the P solver vs scikit-learn's
  saga on N = 20,000 × d = 768 × C = 300 standardised features, same λ values and tolerance;
* ``faithfulness`` — {model: {top1, top2, chance_top1, chance_top2, n}} (Table 5's form);
* ``faithfulness_controls`` — {model: the control table of
  :mod:`viz_engine.faithfulness_controls`} (does the C map move with the word?); the full
  table, kept in ``benchmarks/results/faithfulness.json``, comes from
  ``python -m benchmarks.engine --only faithfulness_controls --json benchmarks/results/faithfulness.json``;
* ``faithfulness_grounded`` — {"shapes_vqa_grounded", "shapes_vqa_early@v2": the control
  table on the first 1000 version-2 test questions (position questions naming two objects,
  objects sharing attributes)}: the early-fusion transformer trained on those questions, and
  the shipped early model on the same questions, its before
  (``python -m benchmarks.engine --only faithfulness_grounded --json
  benchmarks/results/faithfulness_grounded.json``);
* ``faithfulness_settings`` — {"shapes_vqa_early": [the control table under each method
  setting]} on 200 pairs (target, aggregation, query set, object score): why the map
  ignores the word (``benchmarks/results/faithfulness_settings.json``);
* ``wall_seconds`` and ``peak_rss_mb`` per section.

Both sides of each ratio run in the same process, one after the other, on the same inputs,
and the benchmark checks that they agree before it reports a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from viz_engine import __version__
from viz_engine.adapters import Batch, LogitSum, atoms_per_patch
from viz_engine.data import shapes_vqa as vqa_data
from viz_engine.models import shapes_vqa as vqa_models

SECTIONS = ("sog", "emap", "lime", "slm", "faithfulness", "faithfulness_controls", "faithfulness_grounded",
            "faithfulness_settings")
# version-2 test questions the grounded model's control table is measured on (≈ 1.2 pairs each)
GROUNDED_EXAMPLES = 1000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# -- second-order gradients ----------------------------------------------------------------------
def _sog_reference_loop(adapter, batch: Batch) -> np.ndarray:
    """The reference code's way: per word, a forward, a gradient, a second gradient."""
    n_words = int(batch.n_atoms("question")[0])
    out = []
    for w in range(n_words):
        img = batch.inputs["image"].detach().clone().requires_grad_(True)
        words = batch.inputs["question"].detach().clone().requires_grad_(True)
        logits = adapter.logits(batch.with_inputs(image=img, question=words))
        (g1,) = torch.autograd.grad(logits.sum(), words, create_graph=True)
        (g12,) = torch.autograd.grad(g1[0, w].sum(), img)
        out.append(g12.abs().sum(1).reshape(-1).double())
    return torch.stack(out).numpy()


def bench_sog(adapter, example, repeat: int = 3) -> dict:
    from viz_engine.methods.second_order_gradient import second_order_gradient_per_atom

    batch = adapter.make_batch([example])
    with adapter.frozen():
        t_loop, ref = _timed(lambda: _sog_reference_loop(adapter, batch), repeat)
    t_ours, ours = _timed(
        lambda: second_order_gradient_per_atom(adapter, batch, LogitSum(), "question", "image", magnitude=True),
        repeat,
    )
    np.testing.assert_allclose(ours[0], ref, rtol=1e-4, atol=1e-7)
    return {
        "sog_speedup": t_loop / t_ours,
        "sog_words": int(ours.shape[1]),
        "sog_seconds_one_call": t_ours,
        "sog_seconds_per_word_loop": t_loop,
    }


# -- EMAP / DIME matrix ---------------------------------------------------------------------------
@torch.no_grad()
def _pairwise_loop(adapter, batch: Batch) -> np.ndarray:
    rows = [batch.select([i]) for i in range(batch.size)]
    n = batch.size
    out = np.empty((n, n, adapter.n_classes), dtype=np.float32)
    for i in range(n):
        for j in range(n):
            out[i, j] = adapter.logits(Batch.combine({"image": rows[i], "question": rows[j]}))[0].numpy()
    return out


def bench_emap(adapters: dict, examples) -> dict:
    """``emap_speedup`` on the early-fusion transformer (only its unimodal front can be reused
    across pairs), and the same figure for the late-fusion model (``emap_speedup_late_fusion``)."""
    from viz_engine.methods.emap import pairwise_logits

    out = {}
    for kind, adapter in adapters.items():
        batch = adapter.make_batch(examples)
        t_loop, ref = _timed(lambda: _pairwise_loop(adapter, batch))
        t_ours, ours = _timed(lambda: pairwise_logits(adapter, batch, ("image", "question")), 2)
        np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4)
        suffix = "" if kind == "early" else "_late_fusion"
        out.update({
            f"emap_speedup{suffix}": t_loop / t_ours,
            f"emap_seconds_batched{suffix}": t_ours,
            f"emap_seconds_one_forward_per_pair{suffix}": t_loop,
        })
    out["emap_n"] = len(examples)
    return out


# -- LIME -----------------------------------------------------------------------------------------
def bench_lime(adapter, example, n_samples: int) -> dict:
    """``lime_speedup``: LIME over the image's 36 patches of 8×8 pixels; the same figure over the
    question's words as ``lime_speedup_words`` (there the image is encoded once, not per sample)."""
    from viz_engine.methods.lime import lime

    batch = adapter.make_batch([example])
    batch = replace(batch, atoms={**batch.atoms, "image": atoms_per_patch(batch.inputs["image"], 8)})
    pred = int(adapter.logits(batch).argmax())
    kwargs = dict(n_samples=n_samples, seed=0)
    out = {"lime_samples": n_samples}
    for modality, suffix in (("image", ""), ("question", "_words")):
        t_one, ref = _timed(lambda: lime(adapter, batch, pred, modality, batch_size=1, **kwargs))
        t_ours, ours = _timed(lambda: lime(adapter, batch, pred, modality, batch_size=n_samples, **kwargs), 2)
        np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-5)
        out.update({
            f"lime_speedup{suffix}": t_one / t_ours,
            f"lime_atoms{suffix}": int(batch.n_atoms(modality)[0]),
            f"lime_seconds_batched{suffix}": t_ours,
            f"lime_seconds_one_call_per_sample{suffix}": t_one,
        })
    return out


# -- P solver -------------------------------------------------------------------------------------
def bench_slm(quick: bool) -> dict:
    from benchmarks.sparse_linear import benchmark_sparse_linear

    kwargs = dict(n=2000, d=64, c=10) if quick else {}
    return benchmark_sparse_linear(**kwargs)


# -- faithfulness ---------------------------------------------------------------------------------
def _per_model(key: str, measure, fmt, examples, max_pairs, kinds=("early", "late")) -> dict:
    """``{key: {"shapes_vqa_<kind>": measure(adapter, examples, max_pairs=…)}}``, printed by ``fmt``."""
    results = {f"shapes_vqa_{kind}": measure(vqa_models.load_pretrained(kind), examples, max_pairs=max_pairs)
               for kind in kinds}
    print(fmt(results))
    return {key: results}


def bench_faithfulness(examples, max_pairs: int | None) -> dict:
    from viz_engine.faithfulness import format_table, sog_alignment

    return _per_model("faithfulness", sog_alignment, format_table, examples, max_pairs)


def bench_faithfulness_controls(examples, max_pairs: int | None) -> dict:
    from viz_engine.faithfulness_controls import control_table, format_controls

    return _per_model("faithfulness_controls", control_table, format_controls, examples, max_pairs)


def bench_faithfulness_grounded(examples, max_pairs: int | None) -> dict:
    """The control table on version-2 test questions (which need each phrase grounded) of
    ``shapes_vqa_grounded`` (the early-fusion transformer trained on them) and of the shipped
    early-fusion model (``shapes_vqa_early@v2``, its before on the same questions)."""
    from viz_engine.faithfulness_controls import control_table, format_controls

    results = {name: control_table(vqa_models.load_pretrained(kind), examples, max_pairs=max_pairs)
               for name, kind in (("shapes_vqa_grounded", "grounded"), ("shapes_vqa_early@v2", "early"))}
    print(format_controls(results))
    return {"faithfulness_grounded": results}


def bench_faithfulness_settings(examples, max_pairs: int) -> dict:
    from viz_engine.faithfulness_controls import format_sweep, setting_sweep

    return _per_model("faithfulness_settings", setting_sweep, format_sweep, examples, max_pairs, kinds=("early",))


def run(sections=SECTIONS, quick: bool = False) -> dict:
    torch.manual_seed(0)
    test = vqa_data.load_split("test")
    early = vqa_models.load_pretrained("early")
    question = next(ex for ex in test if len(ex.tokens) >= 8)
    report: dict = {
        "engine_version": __version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "wall_seconds": {},
        "peak_rss_mb": {},
    }
    plan = {
        "sog": lambda: bench_sog(early, question, repeat=1 if quick else 3),
        "emap": lambda: bench_emap({"early": early, "late": vqa_models.load_pretrained("late")},
                                   test[: 20 if quick else 100]),
        "lime": lambda: bench_lime(early, question, 200 if quick else 1000),
        "slm": lambda: bench_slm(quick),
        "faithfulness": lambda: bench_faithfulness(test[: 100 if quick else 1000], 50 if quick else None),
        "faithfulness_controls": lambda: bench_faithfulness_controls(test[: 100 if quick else 1000],
                                                                     50 if quick else None),
        "faithfulness_grounded": lambda: bench_faithfulness_grounded(
            vqa_data.load_split("test", 60 if quick else GROUNDED_EXAMPLES, version=2), 50 if quick else None),
        "faithfulness_settings": lambda: bench_faithfulness_settings(test[: 100 if quick else 1000],
                                                                     40 if quick else 200),
    }
    for name in sections:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        figures = plan[name]()
        report["wall_seconds"][name] = round(time.perf_counter() - t0, 2)
        report["peak_rss_mb"][name] = round(_peak_rss_mb(), 1)
        report.update(figures)
        shown = {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}
        for k, v in shown.items():
            print(f"   {k:<36} {v:.4g}" if isinstance(v, float) else f"   {k:<36} {v}")
    return report


TARGETS = {"sog_speedup": 2.0, "emap_speedup": 10.0, "lime_speedup": 10.0, "slm_speedup_vs_sklearn": 10.0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not the figures)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run these sections")
    args = p.parse_args(argv)
    report = run(args.only, quick=args.quick)
    print("\n== targets")
    for key, target in TARGETS.items():
        if key in report:
            ok = "meets" if report[key] >= target else "MISSES"
            print(f"   {key:<28} {report[key]:8.2f}  (target ≥ {target:g}: {ok})")
    if "slm_heldout_acc_gap" in report:
        gap = report["slm_heldout_acc_gap"]
        print(f"   {'slm_heldout_acc_gap':<28} {gap:+8.4f}  (target within ±0.01: {'meets' if abs(gap) <= 0.01 else 'MISSES'})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
