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


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    import torch

    kwargs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    print(json.dumps(benchmark_sparse_linear(**{"verbose": True, **kwargs}), indent=1))
