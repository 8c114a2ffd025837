"""Rg (top-activating datapoints), model debugging (D.5), sanity checks, the feature cache."""

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import AdapterError, Modality, TorchModuleAdapter
from viz_engine.methods.debugging import (
    error_features,
    random_selection,
    targeted_selection,
    uncertainty_selection,
)
from viz_engine.methods.features import feature_matrix
from viz_engine.methods.global_representation import top_activating
from viz_engine.methods.sanity_checks import cascading_randomization, data_randomization, rank_correlation


# -- Rg ---------------------------------------------------------------------------------------
def test_top_activating_returns_most_and_least_activating_rows_with_ties_by_index():
    f = np.array([[0.0, 5.0], [3.0, 1.0], [3.0, 2.0], [-1.0, 0.0], [2.0, 9.0]])
    out = top_activating(f, feature_index=0, k=2)
    np.testing.assert_array_equal(out["max_indices"], [1, 2])
    np.testing.assert_array_equal(out["max_values"], [3.0, 3.0])
    np.testing.assert_array_equal(out["min_indices"], [3, 0])
    np.testing.assert_array_equal(out["min_values"], [-1.0, 0.0])
    out1 = top_activating(f, 1, k=3)
    np.testing.assert_array_equal(out1["max_indices"], [4, 0, 2])


def test_top_activating_rejects_bad_feature_index_and_k():
    f = np.zeros((4, 3))
    with pytest.raises(AdapterError, match="feature_index"):
        top_activating(f, 3)
    with pytest.raises(AdapterError, match="feature_index"):
        top_activating(f, -1)
    with pytest.raises(AdapterError, match="k"):
        top_activating(f, 0, k=5)
    with pytest.raises(AdapterError, match="features"):
        top_activating(np.zeros(4), 0)


# -- debugging ----------------------------------------------------------------------------------
def test_error_features_finds_the_planted_error_feature():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(800, 12))
    # the model errs when |feature 7| is large
    wrong = np.abs(f[:, 7]) + 0.3 * rng.normal(size=800) > 1.2
    for penalty in ("l1", "l2"):
        out = error_features(f, ~wrong, k=3, penalty=penalty)
        assert out["feature_indices"][0] == 7
        assert out["weights"][0] > 0
        assert out["feature_indices"].shape == (3,)
        assert out["error_rate"] == pytest.approx(wrong.mean())


def test_error_features_rejects_bad_inputs():
    f = np.zeros((10, 6))
    with pytest.raises(AdapterError, match="correct"):
        error_features(f, np.ones(10))  # not bool
    with pytest.raises(AdapterError, match="correct"):
        error_features(f, np.ones(10, dtype=bool))  # no errors at all
    with pytest.raises(AdapterError, match="penalty"):
        error_features(f, np.arange(10) % 2 == 0, penalty="l3")
    with pytest.raises(AdapterError, match="k"):
        error_features(f, np.arange(10) % 2 == 0, k=7)


def test_targeted_selection_picks_the_points_that_activate_the_features():
    rng = np.random.default_rng(1)
    u = rng.normal(scale=0.1, size=(50, 6))
    u[[4, 9, 30], 2] = [5.0, -6.0, 4.0]  # |activation| counts, sign does not
    u[[11, 17], 5] = [7.0, 3.0]
    per_feature = targeted_selection(u, [2, 5], budget=4)
    assert set(per_feature) == {9, 4, 11, 17}
    summed = targeted_selection(u, [2, 5], budget=5, strategy="sum")
    assert set(summed) == {4, 9, 30, 11, 17}
    with pytest.raises(AdapterError, match="feature_indices"):
        targeted_selection(u, [6], budget=2)
    with pytest.raises(AdapterError, match="budget"):
        targeted_selection(u, [2], budget=51)


def test_random_and_uncertainty_selection():
    r = random_selection(100, 10, seed=3)
    assert len(set(r)) == 10 and r.max() < 100
    np.testing.assert_array_equal(r, random_selection(100, 10, seed=3))
    probs = np.array([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.5, 0.5, 0.0], [0.7, 0.2, 0.1]])
    np.testing.assert_array_equal(uncertainty_selection(probs, 2), [1, 3])  # entropy 1.10, 0.80
    np.testing.assert_array_equal(uncertainty_selection(probs, 2, measure="margin"), [2, 1])
    with pytest.raises(AdapterError, match="probs"):
        uncertainty_selection(probs * 2, 1)
    with pytest.raises(AdapterError, match="measure"):
        uncertainty_selection(probs, 1, measure="variance")


# -- feature matrix + cache ------------------------------------------------------------------------
class TwoModalNet(nn.Module):
    def __init__(self, d_a=6, d_b=4, hidden=16, classes=3):
        super().__init__()
        self.enc_a = nn.Linear(d_a, hidden)
        self.enc_b = nn.Linear(d_b, hidden)
        self.mix = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, a, b):
        h = torch.tanh(self.enc_a(a)) * torch.tanh(self.enc_b(b))
        return self.head(torch.relu(self.mix(h)))


def _adapter(net):
    mods = [Modality("a", "field", (6,), "bar"), Modality("b", "field", (4,), "bar")]
    return TorchModuleAdapter(net, mods, ["x", "y", "z"])


def test_feature_matrix_chunks_and_caches_keyed_by_weights(tmp_path):
    torch.manual_seed(0)
    net = TwoModalNet()
    adapter = _adapter(net)
    batch = adapter.make_batch(torch.randn(37, 6), torch.randn(37, 4))
    feats, logits = feature_matrix(adapter, batch, batch_size=8, cache_path=tmp_path)
    assert feats.shape == (37, 16) and logits.shape == (37, 3) and feats.dtype == np.float32
    with torch.no_grad():
        np.testing.assert_allclose(logits, net(batch.inputs["a"], batch.inputs["b"]).numpy(), atol=1e-5)
    assert len(list(tmp_path.glob("features_*.npz"))) == 1
    again, _ = feature_matrix(adapter, batch, cache_path=tmp_path)
    np.testing.assert_array_equal(again, feats)
    with torch.no_grad():
        net.head.weight.add_(1.0)
        net.mix.weight.mul_(2.0)
    changed, _ = feature_matrix(adapter, batch, cache_path=tmp_path)
    assert len(list(tmp_path.glob("features_*.npz"))) == 2  # new weights -> new key
    assert not np.allclose(changed, feats)
    mixed, _ = feature_matrix(adapter, batch, layer="enc_a", cache_path=tmp_path)
    assert mixed.shape == (37, 16) and len(list(tmp_path.glob("features_*.npz"))) == 3
    with pytest.raises(AdapterError, match="data_key"):
        feature_matrix(adapter, [batch], cache_path=tmp_path)
    with pytest.raises(AdapterError, match="layer"):
        feature_matrix(adapter, batch, layer="nope")
    chunks, _ = feature_matrix(adapter, [batch.select(range(20)), batch.select(range(20, 37))])
    np.testing.assert_allclose(chunks, changed, atol=1e-6)


# -- sanity checks ------------------------------------------------------------------------------
def _grad_attribute(adapter, batch, target):
    """Tiny inline gradient attribution of modality "a": (B, 6) |∂ logit_target / ∂ a|."""
    a = batch.inputs["a"].clone().requires_grad_(True)
    out = adapter.logits(batch.with_inputs(a=a))[:, target].sum()
    (g,) = torch.autograd.grad(out, a)
    return g.abs().numpy()


def _train(labels, seed=0, steps=200):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(123)
    a, b = torch.randn(256, 6, generator=gen), torch.randn(256, 4, generator=gen)
    net = TwoModalNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    labels = torch.as_tensor(labels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny net: threading only adds overhead on a shared machine
    try:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(net(a, b), labels).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return _adapter(net.eval())


def _task_labels():
    gen = torch.Generator().manual_seed(123)
    a, b = torch.randn(256, 6, generator=gen), torch.randn(256, 4, generator=gen)
    return ((a[:, 0] * 2 + b[:, 1] > 0).long() + (a[:, 3] > 1).long())


def test_rank_correlation_ignores_nan_padding_and_compares_magnitudes():
    a = np.array([[1.0, -2.0, 3.0, np.nan], [1.0, 1.0, 1.0, 1.0]])
    b = np.array([[10.0, 20.0, -30.0, 5.0], [1.0, 2.0, 3.0, 4.0]])
    r = rank_correlation(a, b)
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1])


@pytest.mark.slow
def test_cascading_randomization_lowers_correlation_and_leaves_callers_model_untouched():
    adapter = _train(_task_labels())
    before = {k: v.clone() for k, v in adapter.module.state_dict().items()}
    gen = torch.Generator().manual_seed(7)
    batch = adapter.make_batch(torch.randn(64, 6, generator=gen), torch.randn(64, 4, generator=gen))
    steps = cascading_randomization(adapter, batch, 1, _grad_attribute)
    assert [s["layer"] for s in steps] == ["head", "mix", "enc_b", "enc_a"]
    assert steps[-1]["spearman"] < 0.5
    assert steps[-1]["spearman"] < steps[0]["spearman"] or steps[0]["spearman"] < 0.5
    for k, v in adapter.module.state_dict().items():
        assert torch.equal(v, before[k]), k
    only_head = cascading_randomization(adapter, batch, 1, _grad_attribute, layers=["head"])
    assert len(only_head) == 1
    with pytest.raises(AdapterError, match="layers"):
        cascading_randomization(adapter, batch, 1, _grad_attribute, layers=["decoder"])
    with pytest.raises(AdapterError, match="attribute"):
        cascading_randomization(adapter, batch, 1, lambda *_: np.zeros(3))


@pytest.mark.slow
def test_data_randomization_retrains_on_permuted_labels():
    labels = _task_labels()
    seen = []

    def train_fn(y):
        seen.append(torch.as_tensor(y).clone())
        return _train(y, steps=100)

    gen = torch.Generator().manual_seed(7)
    batch = _adapter(TwoModalNet()).make_batch(torch.randn(32, 6, generator=gen), torch.randn(32, 4, generator=gen))
    out = data_randomization(train_fn, _grad_attribute, batch, 1, labels)
    assert len(seen) == 2 and torch.equal(seen[0], labels)
    assert not torch.equal(seen[1], labels) and torch.equal(seen[1].sort().values, labels.sort().values)
    assert out["spearman_per_row"].shape == (32,)
    assert -1.0 <= out["spearman"] < 0.9
