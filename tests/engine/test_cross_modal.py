"""C methods on analytic models whose answers are known in closed form."""

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import AdapterError, Feature, Label, LogitSum, Modality, TorchModuleAdapter
from viz_engine.methods.emap import emap, emap_from_matrix, emap_projection, pairwise_logits
from viz_engine.methods.second_order_gradient import (
    second_order_gradient,
    second_order_gradient_per_atom,
)

D1, D2 = 5, 7
MODALITIES = [Modality("x1", "field", (D1,), "bar"), Modality("x2", "field", (D2,), "bar")]


class Additive(nn.Module):
    """f = g1(x1) + g2(x2) with nonlinear g1, g2: no interaction at all."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.g1 = nn.Sequential(nn.Linear(D1, 16), nn.Tanh(), nn.Linear(16, 3))
        self.g2 = nn.Sequential(nn.Linear(D2, 16), nn.GELU(), nn.Linear(16, 3))
        self.head = nn.Linear(3, 3)

    def forward(self, x1, x2):
        return self.head(self.g1(x1) + self.g2(x2))


class Bilinear(nn.Module):
    """logit 0 = x1ᵀ W x2, logit 1 = 0."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)
        self.head = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0], [0.0]]))

    def forward(self, x1, x2):
        return self.head(torch.einsum("bi,ij,bj->b", x1, self.w, x2)[:, None])


class Interacting(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.a = nn.Linear(D1, 8)
        self.b = nn.Linear(D2, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x1, x2):
        return self.head(torch.tanh(self.a(x1) * self.b(x2)))


def _adapter(module, classes=("a", "b", "c")):
    return TorchModuleAdapter(module, MODALITIES, list(classes))


def _batch(adapter, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return adapter.make_batch(torch.randn(n, D1, generator=g), torch.randn(n, D2, generator=g))


def test_second_order_gradient_of_an_additive_model_is_zero():
    ad = _adapter(Additive())
    batch = _batch(ad)
    for target in (Label(1), LogitSum(), Feature(0, layer="g1")):
        sog = second_order_gradient(ad, batch, target, "x1", "x2", [0, 2, 3])
        assert sog.shape == (6, D2)
        assert np.abs(sog).max() == 0.0
    per_atom = second_order_gradient_per_atom(ad, batch, 0, "x1", "x2", aggregate="abs")
    assert per_atom.shape == (6, D1, D2)
    assert np.abs(per_atom).max() == 0.0


def test_second_order_gradient_of_a_bilinear_model_is_the_rows_of_w():
    w = torch.randn(D1, D2, generator=torch.Generator().manual_seed(3))
    ad = _adapter(Bilinear(w), classes=("on", "off"))
    batch = _batch(ad)
    query = [1, 4]
    sog = second_order_gradient(ad, batch, 0, "x1", "x2", query)
    expected = w[query].sum(0).double().numpy()
    np.testing.assert_allclose(sog, np.tile(expected, (6, 1)), rtol=1e-5, atol=1e-6)
    per_atom = second_order_gradient_per_atom(ad, batch, 0, "x1", "x2")
    np.testing.assert_allclose(per_atom, np.tile(w.double().numpy(), (6, 1, 1)), rtol=1e-5, atol=1e-6)
    # the roles can be swapped: over x1 for an atom of x2 it is a column of W
    back = second_order_gradient(ad, batch, 0, "x2", "x1", [2])
    np.testing.assert_allclose(back[0], w[:, 2].double().numpy(), rtol=1e-5, atol=1e-6)


def test_per_atom_second_order_gradient_matches_one_query_at_a_time():
    ad = _adapter(Interacting())
    batch = _batch(ad, n=3)
    all_at_once = second_order_gradient_per_atom(ad, batch, 2, "x1", "x2", magnitude=True)
    for a in range(D1):
        single = second_order_gradient(ad, batch, 2, "x1", "x2", [a], magnitude=True)
        np.testing.assert_allclose(all_at_once[:, a], single, rtol=1e-5, atol=1e-7)
    assert np.abs(all_at_once).max() > 1e-3


def test_per_row_query_sets_and_per_row_labels_follow_their_rows():
    ad = _adapter(Interacting())
    batch = _batch(ad, n=4)
    labels = torch.tensor([0, 1, 2, 0])
    both = second_order_gradient(ad, batch, labels, "x1", "x2", [[0], [1], [2], [3]], batch_size=3)
    for r in range(4):
        one = second_order_gradient(ad, batch.select([r]), int(labels[r]), "x1", "x2", [r])
        np.testing.assert_allclose(both[r], one[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(query="audio", against="x2", query_atoms=[0]), "query='audio'"),
        (dict(query="x1", against="x1", query_atoms=[0]), "different modalities"),
        (dict(query="x1", against="x2", query_atoms=[]), "query_atoms"),
        (dict(query="x1", against="x2", query_atoms=[9]), "query_atoms names atom 9"),
        (dict(query="x1", against="x2", query_atoms=[0], aggregate="max"), "aggregate='max'"),
    ],
)
def test_second_order_gradient_rejects_bad_arguments_by_name(kwargs, fragment):
    ad = _adapter(Interacting())
    with pytest.raises(AdapterError, match=fragment.replace("(", r"\(")):
        second_order_gradient(ad, _batch(ad), 0, **kwargs)


def test_emap_projection_matches_a_hand_computed_three_by_three_example():
    # M[i, j] = f(a_i, b_j) for three points, one logit. Row means: 2, 4, 9; column
    # means: 3, 5, 7; grand mean 5. f̂_i = row_i + col_i − grand = (0, 4, 11).
    m = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [5.0, 9.0, 13.0]])
    np.testing.assert_allclose(emap_projection(m), [0.0, 4.0, 11.0])
    res = emap_from_matrix(m)
    np.testing.assert_allclose(res.logits[:, 0], [1.0, 4.0, 13.0])
    np.testing.assert_allclose(res.interaction[:, 0], [1.0, 0.0, 2.0])
    # an additive table (M[i, j] = r_i + c_j) is reproduced exactly
    additive = np.add.outer([1.0, -2.0, 0.5], [3.0, 0.0, 7.0])
    np.testing.assert_allclose(emap_projection(additive), np.diag(additive))


def test_emap_reproduces_an_additive_model_exactly_and_flags_an_interacting_one():
    add = _adapter(Additive())
    batch = _batch(add, n=12)
    res = emap(add, batch, labels=np.zeros(12, dtype=int))
    np.testing.assert_allclose(res.projection, res.logits, atol=1e-5)
    assert res.interaction_share < 1e-9
    assert res.agreement == 1.0
    inter = _adapter(Interacting())
    res2 = emap(inter, _batch(inter, n=12))
    assert res2.interaction_share > 0.01


def test_pairwise_logits_is_computed_in_batches_and_cached(tmp_path):
    ad = _adapter(Interacting())
    batch = _batch(ad, n=9)
    m = pairwise_logits(ad, batch, batch_size=7, cache_dir=tmp_path)
    assert m.shape == (9, 9, 3)
    for i, j in [(0, 0), (2, 5), (8, 1)]:
        pair = ad.make_batch(batch.inputs["x1"][i : i + 1], batch.inputs["x2"][j : j + 1])
        np.testing.assert_allclose(m[i, j], ad.logits(pair)[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    assert len(list(tmp_path.glob("emap-*.npy"))) == 1
    with torch.no_grad():
        ad.module.head.bias.add_(1.0)  # new weights: a new cache entry, not a stale one
    m2 = pairwise_logits(ad, batch, cache_dir=tmp_path)
    np.testing.assert_allclose(m2, m + 1.0, rtol=1e-5, atol=1e-5)
    assert len(list(tmp_path.glob("emap-*.npy"))) == 2


def test_emap_needs_two_distinct_modalities_and_two_points():
    ad = _adapter(Interacting())
    with pytest.raises(AdapterError, match="modalities"):
        emap(ad, _batch(ad), modalities=("x1", "x1"))
    with pytest.raises(AdapterError, match="at least 2"):
        emap(ad, _batch(ad, n=1))
