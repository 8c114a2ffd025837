"""U methods on small analytic models whose attributions are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import (
    AdapterError,
    Batch,
    Feature,
    Label,
    LogitSum,
    Modality,
    TorchModuleAdapter,
    atoms_per_position,
    target_scalars,
)
from viz_engine.methods.gradient import gradient, gradient_elements
from viz_engine.methods.gradient_x_input import gradient_x_input
from viz_engine.methods.integrated_gradients import integrated_gradients, path_points
from viz_engine.methods.kernel_shap import kernel_shap
from viz_engine.methods.lime import lime, lime_from_scorer

torch.set_num_threads(1)

W1 = torch.tensor([1.5, -2.0, 0.5, 3.0])  # weights of x1 in logit 0
W2 = torch.tensor([-1.0, 2.5, 0.25])  # weights of x2 in logit 0
A = torch.tensor([[1.0, 0.5, 0.0], [0.0, -1.0, 2.0], [0.3, 0.0, 0.5]])


class Linear2(nn.Module):
    """logit0 = W1·x1 + W2·x2 + 0.1, logit1 = −logit0."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(7, 2)
        with torch.no_grad():
            w = torch.cat([W1, W2])
            self.head.weight.copy_(torch.stack([w, -w]))
            self.head.bias.copy_(torch.tensor([0.1, -0.1]))

    def forward(self, x1, x2):
        return self.head(torch.cat([x1, x2], dim=1))


class Quadratic(nn.Module):
    """Penultimate features h = [W1·x1, x2ᵀ A x2, Σ tanh(x1[:3] ⊙ x2)]; logits = M h."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0, 2.0], [0.5, -1.0, 1.0]]))
            self.head.bias.zero_()

    def forward(self, x1, x2):
        lin = x1 @ W1
        quad = ((x2 @ A) * x2).sum(dim=1)
        mix = torch.tanh(x1[:, :3] * x2).sum(dim=1)
        return self.head(torch.stack([lin, quad, mix], dim=1))


def vector_modalities():
    return [Modality("x1", "field", (4,), "bar"), Modality("x2", "field", (3,), "bar")]


@pytest.fixture
def linear():
    return TorchModuleAdapter(Linear2(), vector_modalities(), ["pos", "neg"])


@pytest.fixture
def quadratic():
    return TorchModuleAdapter(Quadratic(), vector_modalities(), ["a", "b"])


def vectors(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g)


# -- gradient, gradient × input, integrated gradients -----------------------------------------
def test_gradient_equals_the_analytic_gradient(quadratic):
    x1, x2 = vectors()
    batch = quadratic.make_batch(x1, x2)
    # logit 1 = 0.5·W1·x1 − x2ᵀAx2 + Σ tanh(x1[:3]·x2)
    expected_x2 = -(x2 @ (A + A.T)) + x1[:, :3] / torch.cosh(x1[:, :3] * x2) ** 2
    np.testing.assert_allclose(gradient(quadratic, batch, 1, "x2"), expected_x2.numpy(), rtol=1e-5, atol=1e-5)
    elements = gradient_elements(quadratic, batch, "b", "x2", batch_size=2)
    np.testing.assert_allclose(elements, expected_x2.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        gradient(quadratic, batch, 1, "x2", absolute=True), expected_x2.abs().numpy(), rtol=1e-5, atol=1e-5
    )


def test_gradient_of_a_penultimate_feature_is_that_features_gradient(quadratic):
    x1, x2 = vectors()
    batch = quadratic.make_batch(x1, x2)
    np.testing.assert_allclose(
        gradient(quadratic, batch, Feature(1), "x2"), (x2 @ (A + A.T)).numpy(), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        gradient(quadratic, batch, Feature(0), "x1"), W1.expand(3, 4).numpy(), rtol=1e-6
    )
    ig = integrated_gradients(quadratic, batch, Feature(1), "x2", n_steps=4)
    quad = ((x2 @ A) * x2).sum(1)
    np.testing.assert_allclose(ig.sum(1), quad.numpy(), rtol=1e-4, atol=1e-5)


def test_gradient_x_input_and_ig_equal_w_times_x_on_a_linear_model(linear):
    x1, x2 = vectors(4)
    batch = linear.make_batch(x1, x2)
    expected = (W1 * x1).numpy()
    np.testing.assert_allclose(gradient_x_input(linear, batch, "pos", "x1"), expected, rtol=1e-5, atol=1e-6)
    for method in ("gausslegendre", "trapezoid"):
        ig = integrated_gradients(linear, batch, Label("pos"), "x1", n_steps=5, method=method, batch_size=3)
        np.testing.assert_allclose(ig, expected, rtol=1e-5, atol=1e-6)


def test_gradient_x_input_measures_from_the_batch_baseline(linear):
    x1, x2 = vectors(2)
    batch = linear.make_batch(x1, x2)
    base = torch.full_like(x1, 0.5)
    batch = Batch(inputs=batch.inputs, atoms=batch.atoms, baselines={"x1": base})
    np.testing.assert_allclose(
        gradient_x_input(linear, batch, 0, "x1"), (W1 * (x1 - base)).numpy(), rtol=1e-5, atol=1e-6
    )


def test_integrated_gradients_satisfies_completeness_on_a_nonlinear_model(quadratic):
    x1, x2 = vectors(5, seed=1)
    batch = quadratic.make_batch(x1, x2)
    for target in (0, LogitSum(), torch.tensor([0, 1, 1, 0, 1])):
        ig = integrated_gradients(quadratic, batch, target, "x2", n_steps=32, batch_size=50)
        with torch.no_grad():
            gap = target_scalars(quadratic, batch, target) - target_scalars(
                quadratic, batch.with_inputs(x2=torch.zeros_like(x2)), target
            )
        np.testing.assert_allclose(ig.sum(1), gap.numpy(), rtol=1e-4, atol=1e-5)


def test_integrated_gradients_chunking_does_not_change_the_result(quadratic):
    batch = quadratic.make_batch(*vectors(3))
    one = integrated_gradients(quadratic, batch, 0, "x1", n_steps=8, batch_size=1)
    many = integrated_gradients(quadratic, batch, 0, "x1", n_steps=8, batch_size=1000)
    np.testing.assert_allclose(one, many, rtol=1e-6, atol=1e-7)


def test_gauss_legendre_weights_integrate_to_one():
    for method in ("gausslegendre", "trapezoid"):
        alphas, weights = path_points(7, method)
        assert weights.sum() == pytest.approx(1.0)
        assert ((alphas >= 0) & (alphas <= 1)).all()


def test_gradient_methods_leave_the_batch_and_the_model_untouched(quadratic):
    batch = quadratic.make_batch(*vectors())
    before = {k: v.clone() for k, v in batch.inputs.items()}
    flags = [p.requires_grad for p in quadratic.module.parameters()]
    for method in (gradient, gradient_x_input, integrated_gradients):
        method(quadratic, batch, 0, "x1")
    for k in before:
        assert torch.equal(batch.inputs[k], before[k])
        assert not batch.inputs[k].requires_grad
    assert [p.requires_grad for p in quadratic.module.parameters()] == flags
    assert all(p.grad is None for p in quadratic.module.parameters())


# -- LIME ---------------------------------------------------------------------------------
def test_lime_ranks_atoms_like_the_true_weights_of_a_linear_model(linear):
    batch = linear.make_batch(torch.ones(2, 4), torch.ones(2, 3))
    weights = lime(linear, batch, "pos", "x1", n_samples=500)
    assert weights.shape == (2, 4)
    for row in weights:
        assert list(np.argsort(row)) == list(np.argsort(W1.numpy()))


def test_lime_with_a_wide_kernel_recovers_linear_weights(linear):
    batch = linear.make_batch(torch.ones(1, 4), 2 * torch.ones(1, 3))
    weights, fit = lime(linear, batch, 0, "x2", n_samples=1000, kernel_width=100.0, return_fit=True)
    # Ridge(alpha=1) on 1000 samples shrinks by well under 1 %
    np.testing.assert_allclose(weights[0], 2 * W2.numpy(), rtol=0.01)
    assert fit.score[0] > 0.999
    assert fit.intercept.shape == (1,)


def test_lime_is_deterministic_for_a_seed(quadratic):
    batch = quadratic.make_batch(*vectors(2))
    a = lime(quadratic, batch, 0, "x2", n_samples=200, seed=3)
    b = lime(quadratic, batch, 0, "x2", n_samples=200, seed=3)
    c = lime(quadratic, batch, 0, "x2", n_samples=200, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_batched_lime_equals_lime_with_one_model_call_per_sample(quadratic):
    batch = quadratic.make_batch(*vectors(2))
    batched = lime(quadratic, batch, 1, "x1", n_samples=300, batch_size=256)
    single = lime(quadratic, batch, 1, "x1", n_samples=300, batch_size=1)
    np.testing.assert_allclose(batched, single, rtol=1e-6, atol=1e-8)


def test_lime_from_scorer_calls_the_scorer_in_chunks_and_recovers_weights():
    w = np.array([0.5, -1.0, 2.0, 0.0, 1.0])
    sizes = []

    def score(keep):
        assert keep.dtype == torch.bool
        sizes.append(len(keep))
        return keep.double() @ torch.as_tensor(w)

    weights = lime_from_scorer(score, 5, n_samples=1000, batch_size=300, kernel_width=100.0)
    assert sizes == [300, 300, 300, 100]
    np.testing.assert_allclose(weights, w, atol=0.01)


def test_lime_from_scorer_rejects_a_scorer_with_the_wrong_shape():
    with pytest.raises(AdapterError, match="score_fn"):
        lime_from_scorer(lambda keep: torch.zeros(len(keep), 2), 3, n_samples=10)


# -- KernelSHAP ---------------------------------------------------------------------------
def test_kernel_shap_equals_exact_shapley_values_of_a_linear_model(linear):
    x1, x2 = vectors(2)
    batch = linear.make_batch(x1, x2)
    base = torch.full_like(x2, -0.5)
    batch = Batch(inputs=batch.inputs, atoms=batch.atoms, baselines={"x2": base})
    values = kernel_shap(linear, batch, "pos", "x2", n_samples=64)
    np.testing.assert_allclose(values, (W2 * (x2 - base)).numpy(), rtol=1e-4, atol=1e-4)


def test_kernel_shap_is_reproducible_and_leaves_the_global_rng_alone(quadratic):
    batch = quadratic.make_batch(*vectors(1))
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = kernel_shap(quadratic, batch, 0, "x1", n_samples=40, seed=1)
    assert torch.equal(torch.rand(1), expected_next)
    b = kernel_shap(quadratic, batch, 0, "x1", n_samples=40, seed=1)
    np.testing.assert_array_equal(a, b)


# -- padding atoms, sequences, Feature targets ------------------------------------------------
class SeqModel(nn.Module):
    """Tokens (B, T, 2) and a vector (B, 3): logit0 = Σ_t u·tok_t + v·vec; a ReLU layer in between."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(5, 4)
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.eye(4, 5) + 0.1)
            self.hidden.bias.fill_(5.0)  # keeps the ReLU active on these inputs: a linear model
            self.head.weight.copy_(torch.tensor([[1.0, -1.0, 0.5, 2.0], [0.0, 1.0, 1.0, 0.0]]))
            self.head.bias.zero_()

    def forward(self, tokens, vec):
        h = torch.cat([tokens.sum(dim=1), vec], dim=1)
        return self.head(torch.relu(self.hidden(h)))


@pytest.fixture
def seq():
    mods = [Modality("tokens", "token", (None, 2), "token_highlight"), Modality("vec", "field", (3,), "bar")]
    return TorchModuleAdapter(SeqModel(), mods, ["p", "q"], atom_fns={"tokens": atoms_per_position})


def padded_batch(seq_adapter):
    g = torch.Generator().manual_seed(5)
    tokens, vec = torch.rand(2, 5, 2, generator=g), torch.rand(2, 3, generator=g)
    tokens[1, 3:] = 0.0  # row 1 has 3 real tokens
    batch = seq_adapter.make_batch(tokens, vec)
    atoms = batch.atoms["tokens"].clone()
    atoms[1, 3:] = -1
    return Batch(inputs=batch.inputs, atoms={**batch.atoms, "tokens": atoms})


def token_contributions(seq_adapter, batch, target_index):
    """Exact per-token contribution: the model is linear, f = c·Σ_t tok_t + const."""
    lin = seq_adapter.module
    coef = (lin.head.weight[target_index] @ lin.hidden.weight)[:2]
    return (batch.inputs["tokens"] @ coef).detach().numpy()


@pytest.mark.parametrize(
    "method, kwargs",
    [
        (gradient_x_input, {}),
        (integrated_gradients, {"n_steps": 4}),
        (lime, {"n_samples": 400, "kernel_width": 100.0}),
        (kernel_shap, {"n_samples": 100}),
    ],
)
def test_padding_atoms_are_nan_and_real_atoms_are_exact(seq, method, kwargs):
    batch = padded_batch(seq)
    scores = method(seq, batch, 0, "tokens", **kwargs)
    assert scores.shape == (2, 5)
    assert np.isnan(scores[1, 3:]).all() and not np.isnan(scores[0]).any() and not np.isnan(scores[1, :3]).any()
    expected = token_contributions(seq, batch, 0)
    tol = 0.02 if method is lime else 1e-4
    np.testing.assert_allclose(scores[0], expected[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(scores[1, :3], expected[1, :3], rtol=tol, atol=tol)


@pytest.mark.parametrize("method", [gradient, gradient_x_input, integrated_gradients, lime, kernel_shap])
def test_feature_targets_explain_a_penultimate_feature(seq, method):
    batch = padded_batch(seq)
    j = 3  # penultimate feature 3 = relu(hidden_3): 0.1·Σtok + … ; the token part is 0.1·(tok_a + tok_b)
    kwargs = {"n_samples": 200, "kernel_width": 100.0} if method is lime else {}
    scores = method(seq, batch, Feature(j), "tokens", **kwargs)
    coef = seq.module.hidden.weight[j, :2].detach()
    per_token = (batch.inputs["tokens"] @ coef).numpy()
    if method is gradient:
        per_token = np.broadcast_to(coef.sum().numpy(), per_token.shape).copy()
        per_token[1, 3:] = np.nan
    else:
        per_token[1, 3:] = np.nan
    np.testing.assert_allclose(scores, per_token, rtol=0.02, atol=1e-3)


# -- bad input ---------------------------------------------------------------------------
ALL_METHODS = [gradient, gradient_x_input, integrated_gradients, lime, kernel_shap]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_unknown_modality_is_an_adapter_error_naming_it(linear, method):
    batch = linear.make_batch(*vectors(1))
    with pytest.raises(AdapterError, match="modality='image'"):
        method(linear, batch, 0, "image")


@pytest.mark.parametrize("method", ALL_METHODS)
def test_nan_input_is_an_adapter_error_naming_the_input(linear, method):
    batch = linear.make_batch(*vectors(2))
    bad = batch.inputs["x2"].clone()
    bad[1, 0] = float("nan")
    batch = Batch(inputs={**batch.inputs, "x2": bad}, atoms=batch.atoms)
    with pytest.raises(AdapterError, match=r"batch.inputs\['x2'\]"):
        method(linear, batch, 0, "x1")


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("target", [7, "nope", Feature(99), torch.tensor([0]), 1.5])
def test_wrong_target_is_an_adapter_error_naming_target(linear, method, target):
    batch = linear.make_batch(*vectors(2))
    with pytest.raises(AdapterError, match="target"):
        method(linear, batch, target, "x1")


@pytest.mark.parametrize("method", ALL_METHODS)
def test_non_positive_batch_size_is_an_adapter_error(linear, method):
    batch = linear.make_batch(*vectors(1))
    with pytest.raises(AdapterError, match="batch_size"):
        method(linear, batch, 0, "x1", batch_size=0)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_per_row_label_targets_explain_each_rows_own_label(quadratic, method):
    batch = quadratic.make_batch(*vectors(2))
    kwargs = {"n_samples": 100} if method in (lime, kernel_shap) else {}
    mixed = method(quadratic, batch, torch.tensor([1, 0]), "x2", **kwargs)
    np.testing.assert_allclose(mixed[0], method(quadratic, batch, 1, "x2", **kwargs)[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mixed[1], method(quadratic, batch, 0, "x2", **kwargs)[1], rtol=1e-6, atol=1e-7)


class IgnoresX2(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 2)

    def forward(self, x1, x2):
        return self.head(x1)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_a_modality_the_target_ignores_gets_zero_scores(method):
    adapter = TorchModuleAdapter(IgnoresX2(), vector_modalities(), ["a", "b"])
    batch = adapter.make_batch(*vectors(2))
    kwargs = {"n_samples": 50} if method in (lime, kernel_shap) else {}
    np.testing.assert_allclose(method(adapter, batch, 0, "x2", **kwargs), np.zeros((2, 3)), atol=1e-6)
