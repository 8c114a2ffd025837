"""Benchmark: the full five-stage bundle of 60 shapes-VQA items (early fusion).

    nice python -m benchmarks.bundle_precompute [--items 60] [--json benchmarks/results/bundle_precompute.json]

Plans once, then computes every item twice from the same plan, in one run: in 1 worker
process, then in 2 (each loads the model once and takes items from a shared queue, as
Celery workers do). Prints the time per stage, each run's start-up (spawn, load the model
and the split) and item phase (from the moment every worker is ready), and the speed-up
of 2 processes over 1 on the item phase. Each process uses one torch thread. The two bundles
must be byte-identical (their manifests list every file's digest): if they differ the run
raises :class:`~benchmarks._harness.Disagreement` and no speed-up is reported. The load
average before and after is recorded beside the figure (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from benchmarks._harness import RESULTS, Disagreement, environment, write_json

from viz_engine.bundles.format import MULTIVIZ_STAGES as STAGES
from viz_engine.bundles.precompute import finalize, load_context, missing_items, plan_bundle, validate_bundle
from viz_engine.bundles.stages import compute_item

_CTX = None


def _init(root: str, ready) -> None:
    global _CTX
    torch.set_num_threads(1)
    threadpool_limits(1)  # BLAS and OpenMP too: one core per worker process
    _CTX = load_context(root)
    ready.wait()  # every worker loaded: the item phase starts together


def _work(item_id: str) -> dict:
    entry = next(e for e in _CTX.plan["items"] if e["id"] == item_id)
    timings: dict = {}
    compute_item(_CTX, entry, timings=timings)
    return timings


def _run(root: Path, processes: int) -> dict:
    """Start-up (spawn, load model and split) and item-phase wall times of ``processes`` workers."""
    ids = missing_items(root)
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(processes + 1)
    t0 = time.perf_counter()
    with ctx.Pool(processes, initializer=_init, initargs=(str(root), ready)) as pool:
        ready.wait()
        t1 = time.perf_counter()
        per_stage: dict = {}
        for timings in pool.imap_unordered(_work, ids, chunksize=1):
            for k, v in timings.items():
                per_stage[k] = per_stage.get(k, 0.0) + v
        t2 = time.perf_counter()
    return {"startup_seconds": round(t1 - t0, 2), "items_seconds": round(t2 - t1, 2),
            "stage_seconds": {k: round(v, 2) for k, v in per_stage.items()}}


def check_identical(a: dict, b: dict) -> bool:
    """True if two manifests' ``files`` (name → sha256) are equal; else :class:`Disagreement`."""
    if a != b:
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise Disagreement(f"1 and 2 worker processes wrote different bundles ({len(differ)} files differ, "
                           f"e.g. {differ[:3]}); no speed-up is reported")
    return True


def run(n_items: int = 60, workdir: Path | None = None) -> dict:
    base = Path(workdir or tempfile.mkdtemp(prefix="bundle-bench-"))
    one, two = base / "one", base / "two"
    for d in (one, two):
        shutil.rmtree(d, ignore_errors=True)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    plan_bundle(one, dataset="shapes_vqa", model="shapes_vqa_early", n_items=n_items, seed=0, stages=STAGES)
    plan_seconds = time.perf_counter() - t0
    shutil.copytree(one, two)  # the same plan, P and feature cache
    report = {"benchmark": "bundle_precompute", **environment(1), "items": n_items, "model": "shapes_vqa_early", "stages": list(STAGES),
              "plan_seconds": round(plan_seconds, 2)}
    for name, root, procs in (("1_process", one, 1), ("2_processes", two, 2)):
        print(f"== {procs} worker process(es) …", flush=True)
        report[name] = _run(root, procs)
        t1 = time.perf_counter()
        finalize(root)
        validate_bundle(root)
        report[name]["finalize_seconds"] = round(time.perf_counter() - t1, 2)
    a = json.loads((one / "manifest.json").read_text())["files"]
    b = json.loads((two / "manifest.json").read_text())["files"]
    try:
        report["identical_bundles"] = check_identical(a, b)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report["speedup_2_over_1"] = round(report["1_process"]["items_seconds"] / report["2_processes"]["items_seconds"], 2)
    shutil.rmtree(base, ignore_errors=True)
    return report


def format_report(r: dict) -> str:
    lines = [f"Bundle of {r['items']} shapes-VQA items, {r['model']}, stages {' '.join(r['stages'])}",
             f"  plan (features of the split, P fit, selection): {r['plan_seconds']:.1f} s"]
    stage = r["1_process"]["stage_seconds"]
    lines.append("  per stage, 1 process (total s · per item s):")
    for k in [*STAGES, "item"]:
        if k in stage:
            lines.append(f"    {k:<5}{stage[k]:8.1f}  {stage[k] / r['items']:7.3f}")
    for name, label in (("1_process", "1 worker process"), ("2_processes", "2 worker processes")):
        x = r[name]
        lines.append(f"  {label}: start-up {x['startup_seconds']:.1f} s, items {x['items_seconds']:.1f} s, "
                     f"finalize {x['finalize_seconds']:.1f} s")
    lines.append(f"  speed-up of 2 over 1 (items): {r['speedup_2_over_1']:.2f}×   "
                 f"(bundles identical: {r['identical_bundles']}; load average {r['load_average']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bundle_precompute", description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=60)
    p.add_argument("--json", type=Path, default=RESULTS / "bundle_precompute.json")
    args = p.parse_args(argv)
    report = run(args.items)
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
