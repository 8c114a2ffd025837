"""What every benchmark shares: the same thread count on both sides, warm-up and best of N on
both sides, an agreement check that raises before any ratio exists, and the JSON record
(figures, machine, versions, date, load average) kept under ``benchmarks/results/``.

A ratio is only ever produced by :func:`compare`, which runs both sides once untimed, checks
that their outputs agree (raising :class:`Disagreement` if not), and only then times each
side ``repeat`` times and keeps the best.
"""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


class Disagreement(AssertionError):
    """The two sides of a benchmark computed different things: no ratio may be reported."""


@contextmanager
def threads(n: int):
    """Both torch's and every BLAS/OpenMP pool limited to ``n`` threads (restored after)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield n
    finally:
        torch.set_num_threads(before)


def best_of(fn: Callable[[], Any], repeat: int = 3, warmup: int = 1) -> tuple[float, Any]:
    """``(best wall seconds of repeat runs, last output)`` after ``warmup`` untimed runs."""
    out = None
    for _ in range(warmup):
        out = fn()
    best = float("inf")
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def check_agreement(name: str, ours, reference, *, rtol: float, atol: float) -> float:
    """Raise :class:`Disagreement` unless the arrays agree; return the max abs difference."""
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise Disagreement(f"{name}: shapes differ, ours {a.shape} vs reference {b.shape}")
    if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.nanmax(np.abs(a - b))
        raise Disagreement(f"{name}: the two sides disagree (max |diff| {diff:.3g}, rtol {rtol}, atol {atol})")
    return float(np.nanmax(np.abs(a - b))) if a.size else 0.0


def compare(name: str, ours: Callable[[], Any], reference: Callable[[], Any], *, rtol: float, atol: float,
            repeat: int = 3, warmup: int = 1, ref_repeat: int | None = None,
            agree: Callable[[Any, Any], Any] | None = None) -> dict:
    """Time both sides (warm-up, best of ``repeat``) after checking they agree; the ratio last.

    ``agree(ours_out, ref_out) -> (ours_array, ref_array)`` extracts what is compared (default:
    the outputs themselves). The check runs on the warm-up outputs, before any timing, and
    again on the timed outputs.
    """
    pick = agree or (lambda a, b: (a, b))
    o, r = ours(), reference()  # warm-up of both sides, and the first agreement check
    check_agreement(name, *pick(o, r), rtol=rtol, atol=atol)
    t_ref, r = best_of(reference, ref_repeat or repeat, warmup=0)
    t_ours, o = best_of(ours, repeat, warmup=0)
    max_diff = check_agreement(name, *pick(o, r), rtol=rtol, atol=atol)
    return {"ours_seconds": t_ours, "reference_seconds": t_ref, "speedup": t_ref / t_ours,
            "max_abs_diff": max_diff, "rtol": rtol, "atol": atol,
            "repeat": repeat, "reference_repeat": ref_repeat or repeat, "warmup": 1}


def environment(n_threads: int | None = None) -> dict:
    """Machine, versions, date and load average, recorded beside every figure."""
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for mod in ("sklearn", "lime", "captum", "transformers", "threadpoolctl"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", None) or _dist_version(mod)
        except ImportError:
            pass
    try:
        from viz_engine import __version__ as engine_version

        versions["viz_engine"] = engine_version
    except ImportError:  # pragma: no cover
        pass
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count()},
        "threads": n_threads if n_threads is not None else torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def _dist_version(mod: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(mod)
    except PackageNotFoundError:
        return None


def write_json(path: Path | str, report: dict) -> Path:
    """Write ``report`` with its load average at the end of the run beside the one at the start."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {**report, "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x)}")
