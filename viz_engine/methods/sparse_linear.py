"""P — multimodal prediction: a sparse elastic-net linear model on penultimate features.

MultiViz (after Wong et al. 2021, "glm-saga") approximates the last layer of a model by a
*sparse* linear model on its (standardised) penultimate features, fitted along a
regularisation path, so a class can be explained by a handful of features and their weights
(the P graph: features → classes). The paper writes the objective with a squared loss; for
classification we fit, as glm-saga does, a **multinomial logistic** model::

    minimise over W (K, d), b (K,):
        (1/N) Σ_i CE(softmax(W x̃_i + b), y_i)  +  λ1 ‖W‖₁  +  λ2 ‖W‖²_F
    with  λ1 = λ·alpha,  λ2 = λ·(1 − alpha)/2,

where x̃ = (x − mean) / std are the standardised features (mean/std of the training
features, stored on the model and applied by :meth:`SparseLinearModel.decision_function`),
``alpha`` is the elastic-net mixing (sklearn's ``l1_ratio``) and intercepts ``b`` are not
penalised. Equivalence with scikit-learn: ``LogisticRegression(solver="saga", l1_ratio=alpha,
C=C)`` minimises ``C·Σ_i CE_i + ½(1−alpha)‖W‖² + alpha‖W‖₁``; dividing by ``C·N`` gives our
objective with **λ = 1 / (C·N)**, i.e. ``C = 1 / (λ·N)`` (:func:`sklearn_C`).

Labels: the paper fits the model's *predictions* (so the sparse model explains the model,
not the task: faithfulness); :func:`fit_sparse_linear_from_adapter` does that by default,
``labels="true"`` fits the ground truth instead.

Solver: full-batch accelerated proximal gradient (FISTA) in torch with backtracking on the
step size (the step grows again by 10 % each iteration), adaptive momentum restart
(O'Donoghue & Candès 2015), soft-thresholding for the L1 part; the L2 part and the loss are
the smooth part. The path runs from λ_max (the smallest λ with W = 0: ``max|∇_W| / alpha``
at W = 0 with the optimal intercepts) down to ``λ_max·eps`` on a log grid, each point
warm-started from the previous one. Per iteration only two matmuls with X are needed:
logits are linear in (W, b), so the logits at the momentum point are combined from cached
ones. Feature screening: each λ is solved on a working set (features in the model plus the
strong rule's candidates) and re-solved with any feature violating the KKT conditions added,
so the result is exact while iterations touch only the few active columns near the sparse
end. Convergence: **tol** on the relative change of the iterate,
``max|θ_k − θ_{k−1}| / max|θ_k| ≤ tol`` with θ = (W, b) — sklearn's SAG/SAGA rule
(``max change / max weight``), which it checks once per epoch and we once per iteration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from viz_engine.adapters import AdapterError

__all__ = [
    "SparseLinearModel",
    "SparseLinearPath",
    "fit_sparse_linear_path",
    "fit_sparse_linear_from_adapter",
    "choose_path_point",
    "top_features_per_class",
    "accuracy_sparsity_curve",
    "lambda_grid",
    "sklearn_C",
]


@dataclass
class SparseLinearModel:
    """One point of the path: a fitted multinomial elastic-net model.

    weights: ``(K, d)`` on *standardised* features; bias: ``(K,)``; mean/std: ``(d,)``
    standardisation; classes: ``(K,)`` the label each row of ``weights`` predicts.
    """

    lam: float
    alpha: float
    weights: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    classes: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    train_accuracy: float
    val_accuracy: float | None = None
    seconds: float = 0.0

    @property
    def n_nonzero(self) -> int:
        """Number of nonzero weights (entries of ``weights``)."""
        return int(np.count_nonzero(self.weights))

    @property
    def n_active_features(self) -> int:
        """Number of features with a nonzero weight for at least one class."""
        return int(np.count_nonzero(np.any(self.weights != 0, axis=0)))

    @property
    def weights_original_scale(self) -> np.ndarray:
        """``(K, d)`` weights applying to raw (unstandardised) features."""
        return self.weights / self.std[None, :]

    def standardise(self, features: np.ndarray) -> np.ndarray:
        features = _check_features(features, "features")
        if features.shape[1] != self.weights.shape[1]:
            raise AdapterError(
                f"features has {features.shape[1]} columns; the model was fitted on {self.weights.shape[1]}"
            )
        return (features - self.mean) / self.std

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """``(N, K)`` logits of the sparse model for raw features ``(N, d)``."""
        return self.standardise(features) @ self.weights.T + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(N,)`` predicted labels (values of ``classes``)."""
        return self.classes[np.argmax(self.decision_function(features), axis=1)]


@dataclass
class SparseLinearPath:
    """The fitted path, from the sparsest point (λ_max) to the densest (λ_max·eps)."""

    points: list[SparseLinearModel]
    lambda_max: float
    alpha: float
    mean: np.ndarray
    std: np.ndarray
    classes: np.ndarray
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def lambdas(self) -> np.ndarray:
        return np.array([p.lam for p in self.points])

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> SparseLinearModel:
        return self.points[i]


# -- input checks -----------------------------------------------------------------------------
def _check_features(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise AdapterError(f"{name} must be a 2-D (N, d) array; got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise AdapterError(f"{name} is empty: shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise AdapterError(f"{name} must be numeric; got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise AdapterError(f"{name} contains NaN or infinite values")
    return x


def _check_labels(y, n: int, name: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise AdapterError(f"{name} must have shape ({n},); got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise AdapterError(f"{name} must hold integer class labels; got dtype {y.dtype}")
    return y


def sklearn_C(lam: float, n_samples: int) -> float:
    """sklearn ``C`` giving the same minimiser as our λ on ``n_samples`` points: 1/(λ·N)."""
    return 1.0 / (lam * n_samples)


# -- the solver -------------------------------------------------------------------------------
class _Problem:
    """Standardised data and the smooth part of the objective, in torch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, onehot: torch.Tensor | None = None):
        self.x = x
        self.y = y
        self.n = x.shape[0]
        self.k = n_classes
        self.onehot = onehot if onehot is not None else torch.nn.functional.one_hot(y, n_classes).to(x.dtype)

    def columns(self, keep: torch.Tensor) -> "_Problem":
        """The same problem on the feature columns ``keep`` (bool (d,))."""
        return _Problem(self.x[:, keep].contiguous(), self.y, self.k, self.onehot)

    def logits(self, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.addmm(b[None, :], self.x, w.T)

    def loss(self, z: torch.Tensor) -> float:
        """Mean cross-entropy from logits ``z`` (N, K), accumulated in float64."""
        lse = torch.logsumexp(z, dim=1)
        picked = z.gather(1, self.y[:, None])[:, 0]
        return float((lse - picked).double().sum()) / self.n

    def grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Gradient of the mean cross-entropy w.r.t. (W, b), and the loss."""
        lse = torch.logsumexp(z, dim=1, keepdim=True)
        picked = z.gather(1, self.y[:, None])
        loss = float((lse - picked).double().sum()) / self.n
        r = torch.exp(z - lse)
        r.sub_(self.onehot).div_(self.n)
        return r.T @ self.x, r.sum(0), loss


def _soft_threshold(v: torch.Tensor, thresh: float) -> torch.Tensor:
    return torch.sign(v) * torch.clamp(v.abs() - thresh, min=0.0)


def _fista(prob: _Problem, w: torch.Tensor, b: torch.Tensor, lam: float, alpha: float,
           tol: float, max_iter: int, step_l: float) -> dict:
    """Minimise the elastic-net objective at one λ from (w, b). Returns the solution and stats."""
    l1 = lam * alpha
    l2 = lam * (1.0 - alpha)  # smooth part: (l2/2)‖W‖²  (= λ2‖W‖² with λ2 = λ(1−α)/2)

    def smooth(z, wv):
        return prob.loss(z) + 0.5 * l2 * float((wv.double() ** 2).sum())

    x_w, x_b = w.clone(), b.clone()
    z_x = prob.logits(x_w, x_b)
    prev_w, prev_b, z_prev = x_w, x_b, z_x
    t = 1.0
    beta = 0.0
    converged = False
    f_x = smooth(z_x, x_w)
    it = 0
    for it in range(1, max_iter + 1):
        if beta > 0:
            y_w = x_w + beta * (x_w - prev_w)
            y_b = x_b + beta * (x_b - prev_b)
            z_y = z_x + beta * (z_x - z_prev)
        else:
            y_w, y_b, z_y = x_w, x_b, z_x
        g_w, g_b, loss_y = prob.grad(z_y)
        if l2:
            g_w = g_w + l2 * y_w
        f_y = loss_y + 0.5 * l2 * float((y_w.double() ** 2).sum())
        while True:
            n_w = _soft_threshold(y_w - g_w / step_l, l1 / step_l)
            n_b = y_b - g_b / step_l
            z_n = prob.logits(n_w, n_b)
            f_n = smooth(z_n, n_w)
            d_w, d_b = n_w - y_w, n_b - y_b
            lin = float((g_w * d_w).double().sum() + (g_b * d_b).double().sum())
            sq = float((d_w.double() ** 2).sum() + (d_b.double() ** 2).sum())
            if f_n <= f_y + lin + 0.5 * step_l * sq + 1e-7 * max(1.0, abs(f_y)):
                break
            step_l *= 2.0
        # adaptive restart: momentum pointing uphill -> drop it
        restart = float(((y_w - n_w) * (n_w - x_w)).sum() + ((y_b - n_b) * (n_b - x_b)).sum()) > 0
        change = max(float((n_w - x_w).abs().max()), float((n_b - x_b).abs().max()))
        scale = max(float(n_w.abs().max()), float(n_b.abs().max()))
        prev_w, prev_b, z_prev = x_w, x_b, z_x
        x_w, x_b, z_x, f_x = n_w, n_b, z_n, f_n
        if (scale == 0 and change == 0) or (scale > 0 and change / scale <= tol):
            converged = True
            break
        if restart:
            t, beta = 1.0, 0.0
        else:
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = (t - 1.0) / t_next
            t = t_next
        step_l *= 0.9
    objective = f_x + l1 * float(x_w.double().abs().sum())
    return dict(w=x_w, b=x_b, z=z_x, n_iter=it, converged=converged, objective=objective, step_l=step_l)


def _solve_screened(prob: _Problem, w: torch.Tensor, b: torch.Tensor, lam: float, lam_prev: float,
                    alpha: float, tol: float, max_iter: int, step_l: float) -> dict:
    """:func:`_fista` on a working set of features, enlarged until the full KKT conditions hold.

    Working set: features already in the model plus those the sequential strong rule
    (Tibshirani et al. 2012) keeps, ``max_c |∇_{c,j}| ≥ alpha·max(2λ − λ_prev, 0.9λ)`` at the
    warm start. After solving on it, a feature outside may enter only if some ``|∇_{c,j}| > λ·alpha``
    (KKT for a zero weight); violators are added and the problem re-solved. The result is the
    full problem's solution, while most iterations touch only a few columns of X.
    """
    l1, l2 = lam * alpha, lam * (1.0 - alpha)
    d = prob.x.shape[1]
    g_w, _, _ = prob.grad(prob.logits(w, b))
    g_w = g_w + l2 * w
    score = g_w.abs().amax(0)
    # the strong rule's threshold; after a big step down in λ it falls below zero and keeps
    # everything, so never go below 0.9·λ1 (the KKT loop adds whatever this misses)
    work = (w != 0).any(0) | (score >= alpha * max(2 * lam - lam_prev, 0.9 * lam))
    total_iter = 0
    while True:
        if int(work.sum()) > 0.7 * d:  # nearly dense: no point in a sub-problem
            res = _fista(prob, w, b, lam, alpha, tol, max_iter, step_l)
            res["n_iter"] += total_iter
            return res
        sub = prob.columns(work)
        res = _fista(sub, w[:, work], b, lam, alpha, tol, max(max_iter - total_iter, 1), step_l)
        total_iter += res["n_iter"]
        step_l = res["step_l"]
        w = torch.zeros_like(w)
        w[:, work] = res["w"]
        b = res["b"]
        g_w, _, _ = prob.grad(res["z"])  # logits are unchanged: the other weights are zero
        violators = ~work & (g_w.abs().amax(0) > l1 * (1 + 1e-6))
        if not bool(violators.any()) or total_iter >= max_iter:
            res.update(w=w, n_iter=total_iter, converged=res["converged"] and not bool(violators.any()))
            return res
        work = work | violators


def _optimal_intercept(y: np.ndarray, k: int) -> np.ndarray:
    """Intercepts minimising the loss at W = 0: log class frequencies (centred)."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    b = np.log(counts / counts.sum())
    return b - b.mean()


def lambda_grid(lambda_max: float, n_lambdas: int, eps: float) -> np.ndarray:
    """``n_lambdas`` values from ``lambda_max`` down to ``lambda_max·eps``, evenly on a log scale."""
    if n_lambdas < 1:
        raise AdapterError(f"n_lambdas must be ≥ 1; got {n_lambdas}")
    if not 0 < eps < 1:
        raise AdapterError(f"eps must be in (0, 1); got {eps}")
    return lambda_max * np.logspace(0.0, math.log10(eps), n_lambdas)


def fit_sparse_linear_path(
    features,
    labels,
    *,
    alpha: float = 0.99,
    n_lambdas: int = 40,
    eps: float = 1e-3,
    lambdas: Sequence[float] | None = None,
    tol: float = 1e-4,
    max_iter: int = 2000,
    val_features=None,
    val_labels=None,
    warm_start: bool = True,
    screening: bool = True,
    dtype: str = "auto",
    device: str | torch.device = "cpu",
) -> SparseLinearPath:
    """Fit the multinomial elastic-net along a λ path (see the module docstring).

    Args:
        features:   ``(N, d)`` raw features (standardised here; mean/std are stored).
        labels:     ``(N,)`` integer labels — the model's predictions for a faithful P
                    (paper), or the true labels. Classes are the distinct labels (as sklearn).
        alpha:      elastic-net mixing in (0, 1]: λ1 = λ·alpha, λ2 = λ·(1 − alpha)/2.
        n_lambdas, eps: the grid ``λ_max · logspace(0, log10(eps), n_lambdas)``.
        lambdas:    explicit decreasing λ values instead of the grid.
        tol:        stop at ``max|Δθ| / max|θ| ≤ tol`` (θ = weights and intercepts).
        max_iter:   iteration cap per λ.
        val_features, val_labels: optional held-out set for ``val_accuracy``.
        warm_start: start each λ from the previous solution (else from W = 0).
        screening:  solve each λ on a working set of features (strong rule + KKT check,
                    exact); False solves on all features every iteration.
        dtype:      "float32", "float64" or "auto" (float32 unless ``tol < 1e-5``: float32
                    round-off alone moves the iterate by ~1e-7 relative, so tighter
                    tolerances need float64).

    Returns a :class:`SparseLinearPath`; ``path.points[i]`` is the model at ``lambdas[i]``.
    """
    start = time.perf_counter()
    feats = _check_features(features, "features")
    n, d = feats.shape
    y_raw = _check_labels(labels, n, "labels")
    if not 0 < alpha <= 1:
        raise AdapterError(f"alpha must be in (0, 1] (alpha=0 has no sparse path); got {alpha}")
    if tol <= 0:
        raise AdapterError(f"tol must be positive; got {tol}")
    if max_iter < 1:
        raise AdapterError(f"max_iter must be ≥ 1; got {max_iter}")
    classes, y = np.unique(y_raw, return_inverse=True)
    if len(classes) < 2:
        raise AdapterError(f"labels must contain at least 2 classes; got {classes.tolist()}")
    k = len(classes)
    if (val_features is None) != (val_labels is None):
        raise AdapterError("val_features and val_labels must be given together")
    if val_features is not None:
        vfeats = _check_features(val_features, "val_features")
        if vfeats.shape[1] != d:
            raise AdapterError(f"val_features has {vfeats.shape[1]} columns; features has {d}")
        vy_raw = _check_labels(val_labels, vfeats.shape[0], "val_labels")

    mean = feats.mean(axis=0, dtype=np.float64)
    std = feats.std(axis=0, dtype=np.float64)
    std = np.where(std < 1e-12, 1.0, std)
    if dtype not in ("auto", "float32", "float64"):
        raise AdapterError(f"dtype must be 'auto', 'float32' or 'float64'; got {dtype!r}")
    np_dtype = np.float64 if dtype == "float64" or (dtype == "auto" and tol < 1e-5) else np.float32
    xs = ((feats - mean) / std).astype(np_dtype)
    prob = _Problem(torch.from_numpy(xs).to(device), torch.from_numpy(y.astype(np.int64)).to(device), k)
    if val_features is not None:
        vx = torch.from_numpy(((vfeats - mean) / std).astype(np_dtype)).to(device)

    t_dtype = prob.x.dtype
    b0 = torch.tensor(_optimal_intercept(y, k), dtype=t_dtype, device=device)
    w0 = torch.zeros(k, d, dtype=t_dtype, device=device)
    g_w, _, _ = prob.grad(prob.logits(w0, b0))
    lambda_max = float(g_w.abs().max()) / alpha
    if lambdas is None:
        lams = lambda_grid(lambda_max, n_lambdas, eps)
    else:
        lams = np.asarray(lambdas, dtype=np.float64)
        if lams.ndim != 1 or len(lams) == 0 or not np.all(lams > 0):
            raise AdapterError(f"lambdas must be a non-empty 1-D sequence of positive values; got {lambdas!r}")
        if np.any(np.diff(lams) > 0):
            raise AdapterError("lambdas must be decreasing (the path goes from sparse to dense)")

    # a safe first step size: the loss Hessian is bounded by ½‖[X 1]‖²/N (Böhning's bound)
    step_l = 0.5 * max(float((prob.x ** 2).sum()) / n / d, 1.0)
    w, b = w0, b0
    points = []
    lam_prev = lambda_max
    for lam in lams:
        t0 = time.perf_counter()
        if not warm_start:
            w, b, lam_prev = w0, b0, lambda_max
        if lam >= lambda_max:  # W = 0 is optimal (exactly, whatever the round-off says)
            z0 = prob.logits(w0, b0)
            res = dict(w=w0, b=b0, z=z0, n_iter=0, converged=True, step_l=step_l,
                       objective=prob.loss(z0))
        elif screening:
            res = _solve_screened(prob, w, b, float(lam), float(lam_prev), alpha, tol, max_iter, step_l)
        else:
            res = _fista(prob, w, b, float(lam), alpha, tol, max_iter, step_l)
        lam_prev = lam
        w, b, step_l = res["w"], res["b"], res["step_l"]
        pred = res["z"].argmax(1)
        train_acc = float((pred == prob.y).float().mean())
        val_acc = None
        if val_features is not None:
            vpred = classes[(vx @ w.T + b).argmax(1).cpu().numpy()]
            val_acc = float(np.mean(vpred == vy_raw))
        points.append(SparseLinearModel(
            lam=float(lam), alpha=alpha,
            weights=w.cpu().numpy().astype(np.float64), bias=b.cpu().numpy().astype(np.float64),
            mean=mean, std=std, classes=classes, objective=res["objective"],
            n_iter=res["n_iter"], converged=res["converged"],
            train_accuracy=train_acc, val_accuracy=val_acc, seconds=time.perf_counter() - t0,
        ))
    return SparseLinearPath(points=points, lambda_max=lambda_max, alpha=alpha, mean=mean, std=std,
                            classes=classes, seconds=time.perf_counter() - start)


def fit_sparse_linear_from_adapter(adapter, data, *, labels: str = "predicted", true_labels=None,
                                   layer: str | None = None, batch_size: int = 256,
                                   cache_path=None, data_key: str | None = None, **path_kwargs) -> SparseLinearPath:
    """Features of ``adapter`` on ``data`` (a Batch or iterable of Batches), then the path.

    labels: ``"predicted"`` (default, paper: y = the model's argmax, so P is faithful to the
    model) or ``"true"`` (then ``true_labels`` ``(N,)`` is required).
    """
    from viz_engine.methods.features import feature_matrix

    if labels not in ("predicted", "true"):
        raise AdapterError(f"labels must be 'predicted' or 'true'; got {labels!r}")
    feats, logits = feature_matrix(adapter, data, layer=layer, batch_size=batch_size,
                                   cache_path=cache_path, data_key=data_key)
    if labels == "predicted":
        y = logits.argmax(axis=1)
    else:
        if true_labels is None:
            raise AdapterError("true_labels is required when labels='true'")
        y = _check_labels(true_labels, feats.shape[0], "true_labels")
    return fit_sparse_linear_path(feats, y, **path_kwargs)


# -- reading the path -----------------------------------------------------------------------------
def choose_path_point(path: SparseLinearPath, max_acc_drop: float = 0.01) -> SparseLinearModel:
    """The sparsest point whose accuracy is within ``max_acc_drop`` of the best on the path.

    Accuracy is the held-out (validation) accuracy when the path has one, else the training
    accuracy. Among points with ``acc ≥ best − max_acc_drop`` the one with the fewest nonzero
    weights wins (ties: the larger λ, i.e. earlier on the path). This trades accuracy for
    sparsity explicitly: ``max_acc_drop=0`` returns the sparsest of the most accurate points.
    """
    if not isinstance(path, SparseLinearPath) or not path.points:
        raise AdapterError("path must be a non-empty SparseLinearPath")
    if not 0 <= max_acc_drop <= 1:
        raise AdapterError(f"max_acc_drop must be in [0, 1]; got {max_acc_drop}")
    use_val = all(p.val_accuracy is not None for p in path.points)
    accs = np.array([p.val_accuracy if use_val else p.train_accuracy for p in path.points])
    ok = np.flatnonzero(accs >= accs.max() - max_acc_drop - 1e-12)
    best = min(ok, key=lambda i: (path.points[i].n_nonzero, i))
    return path.points[best]


def top_features_per_class(model: SparseLinearModel, k: int = 5, class_names: Sequence[str] | None = None,
                           positive_only: bool = True) -> dict:
    """The P graph's data: per class, the ``k`` features with the largest weights.

    Returns ``dict(classes (K,), class_names (K,) list, feature_indices (K, k) int,
    weights (K, k) float)``, ordered by decreasing weight (ties: lower feature index).
    With ``positive_only`` only positive weights count (evidence *for* the class); otherwise
    features are ranked by |weight|. Where a class has fewer than ``k`` such weights the row
    is padded with index -1 and weight NaN. Weights are on standardised features.
    """
    if not isinstance(model, SparseLinearModel):
        raise AdapterError(f"model must be a SparseLinearModel; got {type(model).__name__}")
    n_cls, d = model.weights.shape
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise AdapterError(f"k must be a positive integer; got {k!r}")
    if class_names is not None and len(class_names) != n_cls:
        raise AdapterError(f"class_names has {len(class_names)} names; the model has {n_cls} classes")
    idx = np.full((n_cls, k), -1, dtype=np.int64)
    vals = np.full((n_cls, k), np.nan)
    for c in range(n_cls):
        w = model.weights[c]
        score = w if positive_only else np.abs(w)
        cand = np.flatnonzero(score > 0)
        order = cand[np.lexsort((cand, -score[cand]))][:k]
        idx[c, : len(order)] = order
        vals[c, : len(order)] = w[order]
    names = list(class_names) if class_names is not None else [str(c) for c in model.classes]
    return dict(classes=model.classes.copy(), class_names=names, feature_indices=idx, weights=vals)


def accuracy_sparsity_curve(path: SparseLinearPath) -> dict:
    """Arrays along the path (length = number of points): ``lambda``, ``n_nonzero``,
    ``n_active_features``, ``train_accuracy``, ``val_accuracy`` (NaN without a held-out set)."""
    if not isinstance(path, SparseLinearPath) or not path.points:
        raise AdapterError("path must be a non-empty SparseLinearPath")
    pts = path.points
    return {
        "lambda": np.array([p.lam for p in pts]),
        "n_nonzero": np.array([p.n_nonzero for p in pts]),
        "n_active_features": np.array([p.n_active_features for p in pts]),
        "train_accuracy": np.array([p.train_accuracy for p in pts]),
        "val_accuracy": np.array([np.nan if p.val_accuracy is None else p.val_accuracy for p in pts]),
    }
