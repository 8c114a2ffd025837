"""P stage: the sparse elastic-net path solver, its reading helpers and the benchmark."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import AdapterError, Modality, TorchModuleAdapter
from benchmarks.sparse_linear import benchmark_sparse_linear, planted_sparse_multinomial
from viz_engine.methods.features import feature_matrix
from viz_engine.methods.sparse_linear import (
    SparseLinearModel,
    SparseLinearPath,
    accuracy_sparsity_curve,
    choose_path_point,
    fit_sparse_linear_from_adapter,
    fit_sparse_linear_path,
    sklearn_C,
    top_features_per_class,
)


@pytest.fixture(scope="module")
def data():
    x, y, w = planted_sparse_multinomial(700, 16, 4, seed=1, support=2)
    x = x * 3.0 + 5.0  # raw features neither centred nor unit-variance
    return x[:500], y[:500], x[500:], y[500:], w


def _objective(xs, y, w, b, lam, alpha):
    z = xs @ w.T + b
    zmax = z.max(1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(1)) + zmax[:, 0]
    return np.mean(lse - z[np.arange(len(y)), y]) + lam * alpha * np.abs(w).sum() + lam * (1 - alpha) / 2 * (w ** 2).sum()


def test_solver_matches_sklearn_saga_objective_and_accuracy_at_same_lambda(data):
    from sklearn.linear_model import LogisticRegression

    x, y, _, _, _ = data
    alpha = 0.8
    path = fit_sparse_linear_path(x, y, alpha=alpha, n_lambdas=5, eps=0.05, tol=1e-7, max_iter=5000)
    xs = (x - path.mean) / path.std
    for p in path.points[1:]:
        clf = LogisticRegression(solver="saga", l1_ratio=alpha, C=sklearn_C(p.lam, len(y)), tol=1e-8, max_iter=20000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(xs, y)
        sk_obj = _objective(xs, y, clf.coef_, clf.intercept_, p.lam, alpha)
        ours = _objective(xs, y, p.weights, p.bias, p.lam, alpha)
        assert ours == pytest.approx(p.objective, rel=1e-6)
        assert ours <= sk_obj + 1e-6
        assert ours == pytest.approx(sk_obj, rel=1e-5)
        assert abs(p.train_accuracy - clf.score(xs, y)) <= 0.01


def test_path_gets_denser_as_lambda_decreases_and_starts_empty(data):
    x, y, _, _, _ = data
    path = fit_sparse_linear_path(x, y, n_lambdas=10, eps=0.01)
    nnz = np.array([p.n_nonzero for p in path.points])
    assert nnz[0] == 0  # λ_max: nothing enters
    assert np.all(np.diff(path.lambdas) < 0)
    assert nnz[-1] > nnz[1] > 0
    assert np.all(np.diff(nnz) >= -2)  # monotone up to the odd feature leaving the model


def test_feature_screening_gives_the_same_solution_as_the_full_problem(data):
    x, y, _, _, _ = data
    screened = fit_sparse_linear_path(x, y, n_lambdas=6, eps=0.02, tol=1e-6)
    full = fit_sparse_linear_path(x, y, n_lambdas=6, eps=0.02, tol=1e-6, screening=False)
    for a, b in zip(screened.points, full.points):
        assert a.objective == pytest.approx(b.objective, rel=1e-5)
        np.testing.assert_allclose(a.weights, b.weights, atol=1e-3)


def test_standardisation_is_stored_and_applied_to_new_features(data):
    x, y, xv, _, _ = data
    path = fit_sparse_linear_path(x, y, n_lambdas=4, eps=0.1)
    np.testing.assert_allclose(path.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(path.std, x.std(0), rtol=1e-5)
    m = path.points[-1]
    expected = ((xv - x.mean(0)) / x.std(0)) @ m.weights.T + m.bias
    np.testing.assert_allclose(m.decision_function(xv), expected, rtol=1e-4, atol=1e-4)
    assert m.predict(xv).shape == (len(xv),)
    np.testing.assert_allclose(m.weights_original_scale, m.weights / x.std(0), rtol=1e-5)


def test_warm_start_gets_closer_to_the_optimum_in_the_same_iterations(data):
    x, y, _, _, _ = data
    ref = fit_sparse_linear_path(x, y, n_lambdas=8, eps=0.01, tol=1e-5)
    warm = fit_sparse_linear_path(x, y, lambdas=ref.lambdas, max_iter=5, tol=1e-12)
    cold = fit_sparse_linear_path(x, y, lambdas=ref.lambdas, max_iter=5, tol=1e-12, warm_start=False)
    gap_warm = sum(w.objective - r.objective for w, r in zip(warm.points, ref.points))
    gap_cold = sum(c.objective - r.objective for c, r in zip(cold.points, ref.points))
    assert gap_warm < 0.5 * gap_cold


def test_heldout_accuracy_recorded_and_curve_has_one_entry_per_point(data):
    x, y, xv, yv, _ = data
    path = fit_sparse_linear_path(x, y, n_lambdas=6, eps=0.02, val_features=xv, val_labels=yv)
    curve = accuracy_sparsity_curve(path)
    assert set(curve) == {"lambda", "n_nonzero", "n_active_features", "train_accuracy", "val_accuracy"}
    assert all(len(v) == 6 for v in curve.values())
    assert curve["val_accuracy"][-1] > 0.6  # planted structure is learnable
    assert np.isfinite(curve["val_accuracy"]).all()


def _model(nnz, val_acc, lam):
    w = np.zeros((2, 10))
    w.flat[:nnz] = 1.0
    return SparseLinearModel(lam=lam, alpha=1.0, weights=w, bias=np.zeros(2), mean=np.zeros(10),
                             std=np.ones(10), classes=np.arange(2), objective=0.0, n_iter=1,
                             converged=True, train_accuracy=0.5, val_accuracy=val_acc)


def test_choose_path_point_takes_sparsest_point_within_accuracy_tolerance():
    pts = [_model(0, 0.50, 1.0), _model(2, 0.80, 0.5), _model(5, 0.88, 0.25), _model(9, 0.90, 0.1)]
    path = SparseLinearPath(points=pts, lambda_max=1.0, alpha=1.0, mean=np.zeros(10), std=np.ones(10),
                            classes=np.arange(2))
    assert choose_path_point(path, max_acc_drop=0.02) is pts[2]
    assert choose_path_point(path, max_acc_drop=0.0) is pts[3]
    assert choose_path_point(path, max_acc_drop=0.5) is pts[0]
    with pytest.raises(AdapterError, match="max_acc_drop"):
        choose_path_point(path, max_acc_drop=-0.1)


def test_top_features_per_class_ranks_positive_weights_and_pads():
    m = _model(0, 0.5, 1.0)
    m.weights[0, [3, 7, 1]] = [0.5, 2.0, 0.5]
    m.weights[1, [2, 4]] = [-3.0, 1.0]
    top = top_features_per_class(m, k=3, class_names=["cat", "dog"])
    np.testing.assert_array_equal(top["feature_indices"], [[7, 1, 3], [4, -1, -1]])
    np.testing.assert_allclose(top["weights"][0], [2.0, 0.5, 0.5])
    assert np.isnan(top["weights"][1, 1:]).all()
    assert top["class_names"] == ["cat", "dog"]
    by_magnitude = top_features_per_class(m, k=1, positive_only=False)
    assert by_magnitude["feature_indices"][1, 0] == 2


def test_planted_features_rank_first_for_their_class(data):
    x, y, _, _, w = data
    path = fit_sparse_linear_path(x, y, n_lambdas=10, eps=0.05)
    top = top_features_per_class(path.points[-1], k=1)
    for c in range(4):
        planted_positive = set(np.flatnonzero(w[c] > 0))
        if planted_positive:
            assert top["feature_indices"][c, 0] in planted_positive


def test_fit_from_adapter_uses_model_predictions_by_default():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    adapter = TorchModuleAdapter(net, [Modality("x", "field", (6,), "bar")], ["a", "b", "c"])
    batch = adapter.make_batch(torch.randn(300, 6))
    path = fit_sparse_linear_from_adapter(adapter, batch, n_lambdas=8, eps=0.01)
    feats, logits = feature_matrix(adapter, batch)
    assert feats.shape == (300, 8)
    assert set(path.classes.tolist()) <= {0, 1, 2}
    assert path.points[-1].train_accuracy > 0.8  # a linear readout of the penultimate layer
    with pytest.raises(AdapterError, match="true_labels"):
        fit_sparse_linear_from_adapter(adapter, batch, labels="true")


def test_bad_inputs_raise_adapter_error_naming_the_argument(data):
    x, y, xv, yv, _ = data
    with pytest.raises(AdapterError, match="features"):
        fit_sparse_linear_path(x[:, 0], y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(AdapterError, match="features"):
        fit_sparse_linear_path(bad, y)
    with pytest.raises(AdapterError, match="labels"):
        fit_sparse_linear_path(x, y[:-1])
    with pytest.raises(AdapterError, match="alpha"):
        fit_sparse_linear_path(x, y, alpha=0.0)
    with pytest.raises(AdapterError, match="val_features"):
        fit_sparse_linear_path(x, y, val_features=xv)
    with pytest.raises(AdapterError, match="val_features"):
        fit_sparse_linear_path(x, y, val_features=xv[:, :3], val_labels=yv)
    with pytest.raises(AdapterError, match="lambdas"):
        fit_sparse_linear_path(x, y, lambdas=[0.1, 0.2])
    with pytest.raises(AdapterError, match="k"):
        top_features_per_class(_model(1, 0.5, 1.0), k=0)


def test_benchmark_at_tiny_size_returns_the_reported_keys():
    out = benchmark_sparse_linear(n=600, d=24, c=5, path_n_lambdas=10, path_indices=(2, 3))
    for key in ("ours_seconds", "sklearn_seconds", "slm_speedup_vs_sklearn", "slm_heldout_acc_gap", "per_lambda"):
        assert key in out
    assert len(out["per_lambda"]) == 2
    assert abs(out["slm_heldout_acc_gap"]) <= 0.02
    row = out["per_lambda"][0]
    assert row["C"] == pytest.approx(1.0 / (row["lam"] * 600))
