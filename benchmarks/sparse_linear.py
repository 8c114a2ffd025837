"""Benchmark: our sparse-linear path solver (P) against scikit-learn's SAGA.

Both fit the same multinomial elastic-net on the same standardised features, on the same
λ values (consecutive points near the sparse end of the path), with the same ``tol``, each
warm-started from the previous λ. The λ ↔ C mapping is exact (see
``viz_engine.methods.sparse_linear``): sklearn's SAGA minimises
``C·Σ_i CE_i + ½(1−l1_ratio)‖W‖² + l1_ratio‖W‖₁`` (scikit-learn 1.9; ``penalty`` is
deprecated since 1.8, the penalty is set by ``l1_ratio`` and ``C`` alone), which divided by
``C·N`` is ours with ``λ = 1/(C·N)``.

Data: synthetic standardised Gaussian features with a planted sparse multinomial structure —
each class is driven by a few features (``support`` per class); labels are sampled from the
softmax of the planted logits. A held-out split measures accuracy.

Defaults (tol 1e-3, two λ values: points 4 and 5 of a 40-point grid down to λ_max·1e-3)
keep SAGA's run bounded: at full size one SAGA epoch (one pass over the data) takes ~25 s on
one core, and with tol 1e-4 on three λ values it had not finished after 23 minutes.

Run: ``python -m benchmarks.sparse_linear`` (full size, many minutes; progress on
stderr), ``python -m benchmarks.sparse_linear '{"n": 2000, "d": 64, "c": 10}'`` or
``benchmark_sparse_linear(n=2000, d=64, c=10)`` for a quick check.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from viz_engine.methods.sparse_linear import fit_sparse_linear_path, lambda_grid, sklearn_C

__all__ = ["planted_sparse_multinomial", "benchmark_sparse_linear"]


def planted_sparse_multinomial(n: int, d: int, c: int, seed: int = 0, support: int = 3,
                               signal: float = 4.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X (n, d) float32, y (n,) int, W_true (c, d))`` with ``support`` features per class."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = np.zeros((c, d))
    for k in range(c):
        feats = rng.choice(d, size=support, replace=False)
        w[k, feats] = signal * rng.choice([-1.0, 1.0], size=support) * rng.uniform(0.5, 1.0, size=support)
    z = x @ w.T
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random((n, 1))
    y = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), c - 1)
    return x, y.astype(np.int64), w


def benchmark_sparse_linear(n: int = 20000, d: int = 768, c: int = 300, seed: int = 0, *,
                            n_val: int | None = None, alpha: float = 0.99, tol: float = 1e-3,
                            max_iter: int = 1000, path_n_lambdas: int = 40, path_eps: float = 1e-3,
                            path_indices: tuple[int, ...] = (4, 5), run_sklearn: bool = True,
                            verbose: bool = False) -> dict:
    """Time both solvers on the λ values ``lambda_grid(λ_max, path_n_lambdas, path_eps)[path_indices]``.

    Returns a dict with ``ours_seconds``, ``sklearn_seconds``, ``slm_speedup_vs_sklearn``
    (sklearn time / ours), ``slm_heldout_acc_gap`` (our held-out accuracy − sklearn's at the
    densest benchmarked λ, a fraction) and per-λ lists (``per_lambda``) with C, accuracies,
    nonzeros, iterations and objectives of both.
    """
    from sklearn.linear_model import LogisticRegression

    n_val = n_val if n_val is not None else max(n // 4, 1)
    x_all, y_all, _ = planted_sparse_multinomial(n + n_val, d, c, seed=seed)
    x, y, xv, yv = x_all[:n], y_all[:n], x_all[n:], y_all[n:]
    mean, std = x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64)
    xs = ((x - mean) / std).astype(np.float32)
    xvs = ((xv - mean) / std).astype(np.float32)

    # λ_max from a one-point path (cheap: W = 0 is optimal there)
    lam_max = fit_sparse_linear_path(xs, y, alpha=alpha, lambdas=[1e9], max_iter=1).lambda_max
    grid = lambda_grid(lam_max, path_n_lambdas, path_eps)
    lams = [float(grid[i]) for i in path_indices]

    t0 = time.perf_counter()
    path = fit_sparse_linear_path(xs, y, alpha=alpha, lambdas=lams, tol=tol, max_iter=max_iter,
                                  val_features=xvs, val_labels=yv)
    ours_seconds = time.perf_counter() - t0
    if verbose:
        print(f"ours: {ours_seconds:.1f}s on λ={lams}", file=sys.stderr, flush=True)

    rows = []
    for p in path.points:
        rows.append(dict(lam=p.lam, C=sklearn_C(p.lam, n), ours_val_acc=p.val_accuracy,
                         ours_train_acc=p.train_accuracy, ours_nonzero=p.n_nonzero,
                         ours_iter=p.n_iter, ours_converged=p.converged, ours_objective=p.objective,
                         ours_seconds=p.seconds))
    out = dict(n=n, n_val=n_val, d=d, c=c, alpha=alpha, tol=tol, lambda_max=lam_max,
               lambdas=lams, ours_seconds=ours_seconds)

    if run_sklearn:
        # our standardisation is a no-op on xs up to round-off; give sklearn the same matrix
        xs2 = ((xs - path.mean) / path.std).astype(np.float32)
        xvs2 = ((xvs - path.mean) / path.std).astype(np.float32)
        clf = LogisticRegression(solver="saga", l1_ratio=alpha, C=1.0, tol=tol,
                                 max_iter=max_iter, warm_start=True)
        t0 = time.perf_counter()
        for row in rows:
            t1 = time.perf_counter()
            clf.set_params(C=row["C"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(xs2, y)
            w = clf.coef_
            z = xs2.astype(np.float64) @ w.T + clf.intercept_
            zmax = z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
            obj = float(np.mean(lse - z[np.arange(n), np.searchsorted(clf.classes_, y)])
                        + row["lam"] * alpha * np.abs(w).sum()
                        + row["lam"] * (1 - alpha) / 2 * (w ** 2).sum())
            row.update(sklearn_val_acc=float(clf.score(xvs2, yv)), sklearn_train_acc=float(clf.score(xs2, y)),
                       sklearn_nonzero=int(np.count_nonzero(w)), sklearn_iter=int(np.max(clf.n_iter_)),
                       sklearn_objective=obj, sklearn_seconds=time.perf_counter() - t1)
            if verbose:
                print(f"sklearn λ={row['lam']:.4g}: {row['sklearn_seconds']:.1f}s", file=sys.stderr, flush=True)
        sk_seconds = time.perf_counter() - t0
        out.update(sklearn_seconds=sk_seconds,
                   slm_speedup_vs_sklearn=sk_seconds / ours_seconds,
                   slm_heldout_acc_gap=rows[-1]["ours_val_acc"] - rows[-1]["sklearn_val_acc"],
                   slm_heldout_acc_gap_max_abs=max(abs(r["ours_val_acc"] - r["sklearn_val_acc"]) for r in rows))
    out["per_lambda"] = rows
    return out


# -- the whole λ path (issue 18, point 2) ----------------------------------------------------------
def _objective(x: np.ndarray, y_idx: np.ndarray, w: np.ndarray, b: np.ndarray, lam: float, alpha: float) -> float:
    """Our objective: mean cross-entropy + λ·α‖W‖₁ + λ(1−α)/2‖W‖², in float64."""
    z = x.astype(np.float64) @ w.T + b
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return float(np.mean(lse - z[np.arange(len(x)), y_idx]) + lam * alpha * np.abs(w).sum()
                 + lam * (1 - alpha) / 2 * (w ** 2).sum())


def benchmark_path(n: int = 5000, d: int = 128, c: int = 20, seed: int = 0, *, n_val: int | None = None,
                   alpha: float = 0.99, n_lambdas: int = 40, eps: float = 1e-3, tol: float = 1e-6,
                   sklearn_tol: float = 1e-6, max_iter: int = 100000, rel_objective_tol: float = 1e-4,
                   verbose: bool = False) -> dict:
    """P over the engine's whole λ grid (``n_lambdas`` points from λ_max down to λ_max·eps)
    against scikit-learn's saga warm-started along the same grid, in the caller's thread
    count. Raises :class:`~benchmarks._harness.Disagreement` unless the two objectives (both
    evaluated by :func:`_objective` on the same data) agree within ``rel_objective_tol``
    relative at every λ; only then is a ratio computed."""
    from sklearn.linear_model import LogisticRegression

    from benchmarks._harness import Disagreement

    n_val = n_val if n_val is not None else max(n // 4, 1)
    x_all, y_all, _ = planted_sparse_multinomial(n + n_val, d, c, seed=seed)
    x, y, xv, yv = x_all[:n], y_all[:n], x_all[n:], y_all[n:]
    lam_max = fit_sparse_linear_path(x, y, alpha=alpha, lambdas=[1e9], max_iter=1).lambda_max
    lams = [float(v) for v in lambda_grid(lam_max, n_lambdas, eps)]

    t0 = time.perf_counter()
    path = fit_sparse_linear_path(x, y, alpha=alpha, lambdas=lams, tol=tol, max_iter=max_iter,
                                  val_features=xv, val_labels=yv)
    ours_seconds = time.perf_counter() - t0
    xs = ((x - path.mean) / path.std).astype(np.float64)  # the matrix both objectives are measured on
    xvs = ((xv - path.mean) / path.std).astype(np.float64)
    classes = np.unique(y)
    y_idx = np.searchsorted(classes, y)
    if verbose:
        print(f"ours: {ours_seconds:.1f}s on {len(lams)} λ", file=sys.stderr, flush=True)

    clf = LogisticRegression(solver="saga", l1_ratio=alpha, C=1.0, tol=sklearn_tol, max_iter=max_iter,
                             warm_start=True)
    rows, sk_seconds = [], 0.0
    for lam, p in zip(lams, path.points):
        clf.set_params(C=sklearn_C(lam, n))
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(xs, y)
        dt = time.perf_counter() - t1
        sk_seconds += dt
        ours_obj = _objective(xs, y_idx, np.asarray(p.weights, dtype=np.float64),
                              np.asarray(p.bias, dtype=np.float64), lam, alpha)
        sk_obj = _objective(xs, y_idx, clf.coef_, clf.intercept_, lam, alpha)
        rel = abs(ours_obj - sk_obj) / max(abs(sk_obj), 1e-12)
        rows.append(dict(lam=lam, C=sklearn_C(lam, n), ours_objective=ours_obj, sklearn_objective=sk_obj,
                         relative_objective_gap=rel, ours_val_acc=p.val_accuracy,
                         sklearn_val_acc=float(clf.score(xvs, yv)), ours_nonzero=p.n_nonzero,
                         sklearn_nonzero=int(np.count_nonzero(clf.coef_)), ours_iter=p.n_iter,
                         sklearn_iter=int(np.max(clf.n_iter_)), ours_seconds=p.seconds, sklearn_seconds=dt))
        if verbose:
            print(f"λ={lam:.4g} saga {dt:.2f}s rel gap {rel:.2e}", file=sys.stderr, flush=True)
    worst = max(rows, key=lambda r: r["relative_objective_gap"])
    if worst["relative_objective_gap"] > rel_objective_tol:
        raise Disagreement(f"P vs saga: objectives differ by {worst['relative_objective_gap']:.2e} relative at "
                           f"λ={worst['lam']:.4g} (> {rel_objective_tol:g}); no ratio is reported")
    return dict(n=n, n_val=n_val, d=d, c=c, alpha=alpha, n_lambdas=n_lambdas, eps=eps, tol=tol,
                sklearn_tol=sklearn_tol, lambda_max=lam_max, ours_seconds=ours_seconds, sklearn_seconds=sk_seconds,
                slm_path_speedup_vs_sklearn=sk_seconds / ours_seconds,
                max_relative_objective_gap=worst["relative_objective_gap"], rel_objective_tol=rel_objective_tol,
                heldout_acc_gap_sparse_end=rows[0]["ours_val_acc"] - rows[0]["sklearn_val_acc"],
                heldout_acc_gap_dense_end=rows[-1]["ours_val_acc"] - rows[-1]["sklearn_val_acc"],
                per_lambda=rows)


PATH_SIZE = dict(n=1500, d=48, c=8, n_lambdas=20, eps=1e-3, tol=1e-6, sklearn_tol=1e-6)  # ~7 min here


def main(argv=None) -> int:
    """``python -m benchmarks.sparse_linear [--threads 1] [--json benchmarks/results/sparse_linear_path.json]``:
    the whole-path comparison at ``PATH_SIZE``; ``--two-points`` runs the older two-λ figure at full size."""
    import argparse

    from benchmarks._harness import RESULTS, environment, threads, write_json

    ap = argparse.ArgumentParser(prog="python -m benchmarks.sparse_linear")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=json.loads, default={}, help='JSON overrides of PATH_SIZE, e.g. \'{"n": 600}\'')
    ap.add_argument("--json", type=Path, default=RESULTS / "sparse_linear_path.json")
    args = ap.parse_args(argv)
    size = {**PATH_SIZE, **args.size}
    with threads(args.threads):
        report = {"benchmark": "sparse_linear_path", **environment(args.threads), "size": size}
        report.update(benchmark_path(**size, verbose=True))
    write_json(args.json, report)
    print(json.dumps({k: v for k, v in report.items() if k != "per_lambda"}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    sys.exit(main())
