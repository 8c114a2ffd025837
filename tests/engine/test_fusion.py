"""The built-in fusion dataset, its two reference models and their shipped weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from viz_engine.adapters import AdapterError, Batch, per_atom_sum
from viz_engine.data import fusion as data
from viz_engine.models import fusion as models


@pytest.fixture(scope="module")
def test_split():
    return data.load_split("test")


@pytest.fixture(scope="module")
def late():
    return models.load_pretrained("late")


@pytest.fixture(scope="module")
def interaction():
    return models.load_pretrained("interaction")


# -- dataset ----------------------------------------------------------------------------------
def test_generate_is_deterministic_for_a_seed_and_differs_between_seeds():
    a, b, c = data.generate(50, seed=7), data.generate(50, seed=7), data.generate(50, seed=8)
    assert np.array_equal(a.series, b.series) and np.array_equal(a.static, b.static)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.series, c.series)
    assert a.series.shape == (50, 24, 5) and a.static.shape == (50, 8) and a.labels.shape == (50,)
    assert a.series.dtype == np.float32 and a.labels.dtype == np.int64


def test_splits_have_fixed_sizes_and_are_disjoint_draws():
    val = data.load_split("val")
    assert len(val) == data.SPLITS["val"][0]
    assert np.array_equal(val.series, data.load_split("val").series)
    assert not np.array_equal(val.series[:10], data.load_split("test").series[:10])
    with pytest.raises(AdapterError, match="split"):
        data.load_split("dev")
    with pytest.raises(AdapterError, match="n must"):
        data.generate(-1, seed=0)


def test_labels_are_recomputed_from_the_recipe_and_the_inputs(test_split):
    d, r = test_split, data.RECIPE
    lactate = d.static[:, data.FIELD_NAMES.index("lactate")].astype(np.float64)
    vent = d.static[:, data.FIELD_NAMES.index("on_ventilator")].astype(np.float64)
    assert set(np.unique(vent)) == {0.0, 1.0}
    logit = (
        r["series_bump"]["weight"] * (2 * d.latents["bump"] - 1)
        + r["static_lactate"]["weight"] * lactate
        + r["interaction"]["weight"] * d.latents["spo2_shift"] * (2 * vent - 1)
        + r["bias"]
        + r["noise_scale"] * d.noise
    )
    # float32 rounding of lactate may only matter on an exact tie
    near_tie = np.abs(logit) < 1e-5
    assert np.array_equal((logit > 0)[~near_tie], d.labels[~near_tie].astype(bool))
    assert near_tie.sum() <= 1
    assert np.allclose(d.contributions[:, 1], r["static_lactate"]["weight"] * lactate, atol=1e-5)


def test_planted_series_patterns_sit_inside_the_ground_truth_masks(test_split):
    d = test_split
    rr, spo2 = data.CHANNEL_NAMES.index("resp_rate"), data.CHANNEL_NAMES.index("spo2")
    bump = d.latents["bump"] == 1
    window = d.series[:, 16:21, rr].mean(1)
    assert window[bump].mean() - window[~bump].mean() > 1.3  # amplitude 2 × mean bump shape 0.74
    level = d.series[:, 4:12, spo2].mean(1)
    shift = d.latents["spo2_shift"]
    assert level[shift > 0].mean() - level[shift < 0].mean() > 1.8  # ±1 shift
    gt = d.ground_truth
    expect_bump = np.zeros((24, 5), bool)
    expect_bump[16:21, rr] = True
    assert (gt["series_bump"]["series"] == expect_bump).all() and not gt["series_bump"]["static"].any()
    assert not gt["static_lactate"]["series"].any()
    assert np.flatnonzero(gt["static_lactate"]["static"][0]).tolist() == [data.FIELD_NAMES.index("lactate")]
    expect_int = np.zeros((24, 5), bool)
    expect_int[4:12, spo2] = True
    assert (gt["interaction"]["series"] == expect_int).all()
    assert np.flatnonzero(gt["interaction"]["static"][3]).tolist() == [data.FIELD_NAMES.index("on_ventilator")]
    ex = d[3]
    assert ex["series"].shape == (24, 5) and ex["label"] == d.labels[3]
    assert len(d[5:9]) == 4


def test_the_interaction_is_needed_for_high_accuracy(test_split):
    d = test_split
    full = ((d.contributions.sum(1) > 0) == d.labels).mean()
    additive = ((d.contributions[:, :2].sum(1) > 0) == d.labels).mean()
    assert full > 0.9 and additive < 0.75


# -- models -----------------------------------------------------------------------------------
def _accuracy(adapter, d):
    return float((adapter.predict_proba(adapter.make_batch(d)).argmax(1).numpy() == d.labels).mean())


def test_shipped_interaction_model_beats_late_fusion_by_a_clear_margin(late, interaction, test_split):
    acc_late, acc_int = _accuracy(late, test_split), _accuracy(interaction, test_split)
    assert acc_int > 0.88
    assert acc_int - acc_late > 0.15
    for kind, acc in (("late", acc_late), ("interaction", acc_int)):
        report = json.loads(models.weights_path(kind).with_suffix(".json").read_text())
        assert report["test_accuracy"] == pytest.approx(acc, abs=1e-3)


def test_interaction_model_learned_the_planted_xor_and_late_fusion_could_not(late, interaction, test_split):
    # toggling on_ventilator moves the "deteriorating" margin in the direction of the spo2 shift
    d = test_split.subset(slice(0, 400))
    vent = data.FIELD_NAMES.index("on_ventilator")
    effects = {}
    for name, adapter in (("late", late), ("interaction", interaction)):
        margins = []
        for v in (0.0, 1.0):
            static = d.static.copy()
            static[:, vent] = v
            p = adapter.logits(adapter.make_batch({"series": d.series, "static": static})).detach()
            margins.append(p[:, 1] - p[:, 0])
        effects[name] = (margins[1] - margins[0]).numpy()
    shift = d.latents["spo2_shift"]
    assert (np.sign(effects["interaction"]) == shift).mean() > 0.9
    assert abs((np.sign(effects["late"]) == shift).mean() - 0.5) < 0.1


def test_late_fusion_encode_then_fuse_equals_logits(late, interaction, test_split):
    batch = late.make_batch(test_split.subset(slice(0, 16)))
    enc = {m: late.encode(m, batch) for m in late.modality_names}
    assert enc["series"].shape == (16, 32) and enc["static"].shape == (16, 32)
    assert torch.allclose(late.fuse(enc), late.logits(batch), atol=1e-6)
    assert late.supports_late_fusion and not interaction.supports_late_fusion
    with pytest.raises(AdapterError, match="modality"):
        late.encode("audio", batch)
    with pytest.raises(AdapterError, match="missing"):
        late.fuse({"series": enc["series"]})


def _second_order(adapter, batch):
    """d/d(static) of sum over all series elements of d logit[deteriorating] / d series."""
    series = batch.inputs["series"].clone().requires_grad_(True)
    static = batch.inputs["static"].clone().requires_grad_(True)
    out = adapter.logits(batch.with_inputs(series=series, static=static))[:, 1].sum()
    (g,) = torch.autograd.grad(out, series, create_graph=True)
    (sog,) = torch.autograd.grad(g.sum(), static, allow_unused=True)
    sog = torch.zeros_like(static) if sog is None else sog
    return g.detach(), sog.detach()


def test_second_order_gradient_is_zero_for_late_fusion_and_not_for_interaction(late, interaction, test_split):
    batch = late.make_batch(test_split.subset(slice(0, 32)))
    with late.frozen():
        g, sog = _second_order(late, batch)
    assert g.abs().max() > 1e-3
    assert sog.norm() / g.norm() < 1e-6
    with interaction.frozen():
        g, sog = _second_order(interaction, batch)
    assert sog.norm() / g.norm() > 1e-2
    vent = data.FIELD_NAMES.index("on_ventilator")
    assert sog.abs().mean(0).argmax().item() == vent  # the planted partner field stands out


def test_interaction_sog_from_on_ventilator_concentrates_in_the_planted_spo2_window(interaction, test_split):
    d = test_split.subset(slice(0, 64))
    batch = interaction.make_batch(d)
    vent = data.FIELD_NAMES.index("on_ventilator")
    with interaction.frozen():
        series = batch.inputs["series"].clone().requires_grad_(True)
        static = batch.inputs["static"].clone().requires_grad_(True)
        out = interaction.logits(batch.with_inputs(series=series, static=static))[:, 1].sum()
        (g,) = torch.autograd.grad(out, static, create_graph=True)
        (sog,) = torch.autograd.grad(g[:, vent].sum(), series)
    mask = torch.from_numpy(d.ground_truth["interaction"]["series"])
    spo2 = data.CHANNEL_NAMES.index("spo2")
    per_step = sog.abs().mean(0)[:, spo2]
    inside = mask[0, :, spo2]
    assert per_step[inside].mean() > 1.8 * per_step[~inside].mean()


def test_representation_is_the_input_of_the_final_linear(late, interaction, test_split):
    batch = late.make_batch(test_split.subset(slice(0, 8)))
    assert late.representation(batch).shape == (8, 64)
    assert interaction.representation(batch).shape == (8, 32)
    assert interaction.final_linear is interaction.module.head
    assert interaction.representation(batch, "static_encoder").shape == (8, 32)
    assert set(interaction.layer_names()) == {"penultimate", "series_encoder", "static_encoder", "fusion"}


# -- make_batch -------------------------------------------------------------------------------
def test_make_batch_gives_time_step_atoms_field_atoms_and_mean_baselines(late, test_split):
    d = test_split.subset(slice(0, 4))
    batch = late.make_batch([d[i] for i in range(4)])
    assert isinstance(batch, Batch) and batch.size == 4
    assert batch.max_atoms("series") == 24 and batch.max_atoms("static") == 8
    assert batch.atoms["series"][0, 5].tolist() == [5] * 5
    assert batch.atom_labels["static"][0] == list(data.FIELD_NAMES)
    assert batch.atom_labels["series"][2][3] == "t=3"
    train = data.load_split("train")
    assert torch.allclose(batch.baselines["series"][1], torch.from_numpy(train.series.mean(0)), atol=1e-4)
    assert torch.allclose(batch.baselines["static"][0], torch.from_numpy(train.static.mean(0)), atol=1e-4)
    elem = late.make_batch(d, series_atoms="element")
    assert elem.max_atoms("series") == 120 and elem.atom_labels["series"][0][7] == "spo2@t=1"
    scores = per_atom_sum(torch.ones(4, 24, 5), batch.atoms["series"])
    assert scores.shape == (4, 24) and (scores == 5).all()


@pytest.mark.parametrize(
    "examples, match",
    [
        ({"series": np.zeros((2, 23, 5)), "static": np.zeros((2, 8))}, "series has shape"),
        ({"series": np.zeros((2, 24, 5)), "static": np.zeros((2, 7))}, "static has shape"),
        ({"series": np.zeros((2, 24, 5)), "static": np.zeros((3, 8))}, "2 series but 3"),
        ({"series": np.full((1, 24, 5), np.nan), "static": np.zeros((1, 8))}, "NaN"),
        ({"series": np.zeros((1, 24, 5)), "static": np.array([[np.inf] * 8])}, "NaN"),
        ({"series": np.zeros((0, 24, 5)), "static": np.zeros((0, 8))}, "empty"),
        ([], "empty"),
        ({"series": np.zeros((1, 24, 5))}, "'static'"),
        ("not examples", "examples must be"),
    ],
)
def test_make_batch_rejects_bad_shapes_nan_and_empty_input(late, examples, match):
    with pytest.raises(AdapterError, match=match):
        late.make_batch(examples)


def test_load_pretrained_rejects_unknown_kinds_and_returns_eval_cpu_models(late):
    with pytest.raises(AdapterError, match="kind"):
        models.load_pretrained("early")
    assert not late.module.training
    assert all(p.device.type == "cpu" for p in late.module.parameters())


@pytest.mark.slow
def test_training_one_epoch_writes_weights_and_a_report(tmp_path):
    from viz_engine.training.fusion import train

    report = train("late", epochs=1, verbose=False, out_dir=tmp_path)
    saved = json.loads((tmp_path / "fusion_late.json").read_text())
    assert saved == report and saved["seed"] == 0 and saved["epochs"] == 1
    module = models.build_model("late")
    module.load_state_dict(torch.load(tmp_path / "fusion_late.pt", weights_only=True))
    assert saved["test_accuracy"] > 0.6
