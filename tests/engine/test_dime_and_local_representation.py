"""DIME's disentanglement and Rℓ (U and C w.r.t. a representation feature)."""

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import AdapterError, Feature, Modality, TorchModuleAdapter
from viz_engine.methods.dime import dime
from viz_engine.methods.gradient_x_input import gradient_x_input
from viz_engine.methods.lime import lime
from viz_engine.methods.local_representation import local_representation

D1, D2 = 6, 4
MODALITIES = [Modality("x1", "field", (D1,), "bar"), Modality("x2", "field", (D2,), "bar")]


class Additive(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.g1 = nn.Sequential(nn.Linear(D1, 8), nn.Tanh(), nn.Linear(8, 2))
        self.g2 = nn.Sequential(nn.Linear(D2, 8), nn.Tanh(), nn.Linear(8, 2))
        self.head = nn.Linear(2, 2)

    def forward(self, x1, x2):
        return self.head(self.g1(x1) + self.g2(x2))


class Product(nn.Module):
    """logit 0 = x1[0] * x2[0] + x1[1]: atom 0 of x1 acts only through an interaction."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(2))

    def forward(self, x1, x2):
        return self.head(torch.stack([x1[:, 0] * x2[:, 0] + x1[:, 1], torch.zeros_like(x1[:, 0])], 1))


class LateFusionAdditive(TorchModuleAdapter):
    """The additive model exposed through encode/fuse (the late-fusion fast path)."""

    def encode(self, modality, batch):
        net = self.module.g1 if modality == "x1" else self.module.g2
        return net(batch.inputs[modality])

    def fuse(self, encodings):
        return self.module.head(encodings["x1"] + encodings["x2"])


def _data(adapter, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return adapter.make_batch(torch.randn(n, D1, generator=g) + 1.0, torch.randn(n, D2, generator=g) + 1.0)


@pytest.mark.parametrize("adapter_cls", [TorchModuleAdapter, LateFusionAdditive])
def test_dime_of_an_additive_model_puts_everything_in_uc_and_nothing_in_mi(adapter_cls):
    ad = adapter_cls(Additive(), MODALITIES, ["a", "b"])
    ref = _data(ad, 12)
    point = _data(ad, 1, seed=5)
    exp = dime(ad, point, ref, 0, "x1", n_samples=200, seed=1)
    assert exp.uc.shape == exp.mi.shape == (D1,)
    assert np.abs(exp.mi).max() < 1e-5
    assert abs(exp.mi_value) < 1e-5
    f = float(ad.logits(point).detach()[0, 0])
    assert exp.uc_value == pytest.approx(f, abs=1e-5)
    # UC of an additive model is f up to a constant, so its LIME equals LIME of f itself
    direct = lime(ad, point, 0, "x1", n_samples=200, seed=1)[0]
    np.testing.assert_allclose(exp.uc, direct, rtol=1e-4, atol=1e-6)


def test_dime_assigns_a_purely_interacting_atom_to_mi():
    ad = TorchModuleAdapter(Product(), MODALITIES, ["a", "b"])
    ref = _data(ad, 16)
    point = _data(ad, 1, seed=3)
    exp = dime(ad, point, ref, 0, "x1", n_samples=300, seed=0)
    # atom 1 enters additively, atom 0 only through x2[0]: each shows up in its own part
    assert abs(exp.mi[0]) > 10 * abs(exp.mi[1])
    assert abs(exp.uc[1]) > 0.1
    f = float(ad.logits(point).detach()[0, 0])
    assert exp.uc_value + exp.mi_value == pytest.approx(f, abs=1e-5)


def test_dime_reuses_the_cached_reference_matrix_and_agrees_with_feature_targets(tmp_path):
    ad = TorchModuleAdapter(Product(), MODALITIES, ["a", "b"])
    ref = _data(ad, 10)
    first = dime(ad, _data(ad, 1, seed=3), ref, 0, "x1", n_samples=100, cache_dir=tmp_path)
    cached = list(tmp_path.glob("emap-*.npy"))
    assert len(cached) == 1  # the reference's N×N matrix, written once
    stamp = cached[0].stat().st_mtime_ns
    again = dime(ad, _data(ad, 1, seed=3), ref, 0, "x1", n_samples=100, cache_dir=tmp_path)
    assert cached[0].stat().st_mtime_ns == stamp
    np.testing.assert_allclose(again.mi, first.mi)
    # the matrix path (class targets) and the direct path (feature targets) give one grand mean:
    # logit 0 is the penultimate feature 0 here (the head is the identity)
    feature = dime(ad, _data(ad, 1, seed=3), ref, Feature(0), "x1", n_samples=100)
    assert feature.uc_value == pytest.approx(first.uc_value, abs=1e-5)
    np.testing.assert_allclose(feature.mi, first.mi, atol=1e-5)


def test_dime_rejects_a_batch_as_point_and_an_unknown_modality():
    ad = TorchModuleAdapter(Product(), MODALITIES, ["a", "b"])
    ref = _data(ad, 4)
    with pytest.raises(AdapterError, match="point must be one datapoint"):
        dime(ad, ref, ref, 0, "x1")
    with pytest.raises(AdapterError, match="explain='audio'"):
        dime(ad, ref.select([0]), ref, 0, "audio")


def test_local_representation_explains_a_feature_not_a_label():
    ad = TorchModuleAdapter(Additive(), MODALITIES, ["a", "b"])
    batch = _data(ad, 3)
    rl = local_representation(ad, batch, 1, method="gradient_x_input", cross=("x1", "x2"))
    feats = ad.representation(batch).detach().numpy()
    np.testing.assert_allclose(rl.activation, feats[:, 1], rtol=1e-6)
    np.testing.assert_allclose(rl.unimodal["x1"], gradient_x_input(ad, batch, Feature(1), "x1"))
    assert rl.cross["x1->x2"].shape == (3, D1, D2)
    assert np.abs(rl.cross["x1->x2"]).max() == 0.0  # additive: no interaction in any feature
    with pytest.raises(AdapterError, match="feature=9 is out of range"):
        local_representation(ad, batch, 9)
    with pytest.raises(AdapterError, match="method='saliency'"):
        local_representation(ad, batch, 0, method="saliency")
