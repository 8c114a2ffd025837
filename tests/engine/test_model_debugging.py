"""Model debugging judged by what it is for (paper D.5): fine-tune the last layer on each
selection from the same weights and compare the change of held-out accuracy over seeds."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from viz_engine.adapters import AdapterError
from viz_engine.bundles.debugging_report import build_debugging_report, points, verdict
from viz_engine.methods.debugging import compare_selections, fine_tune_final_layer, mean_interval


def _blind_spot(seed: int = 0, n: int = 600):
    """Three well-separated classes in 2-D; the layer was never taught class 2 (its bias
    shuts it out), so the model errs exactly on the class-2 points."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, -3.0]])
    y = rng.integers(0, 3, size=n)
    x = (centres[y] + rng.normal(scale=0.5, size=(n, 2))).astype(np.float32)
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(centres, dtype=torch.float32) / 3)
        layer.bias.copy_(torch.tensor([0.0, 0.0, -40.0]))
    return layer, x, y


def test_fine_tuning_the_last_layer_learns_its_points_leaves_the_original_and_repeats_per_seed():
    layer, x, y = _blind_spot()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    wrong = (layer(torch.from_numpy(x)).argmax(1).numpy() != y)
    assert wrong.mean() > 0.25  # the class-2 points
    tuned = fine_tune_final_layer(layer, x, y, epochs=30, batch_size=32, lr=0.5, seed=1)
    assert (tuned(torch.from_numpy(x)).argmax(1).numpy() == y).mean() > 0.95
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k])  # the model's own layer is untouched
    again = fine_tune_final_layer(layer, x, y, epochs=2, lr=0.1, seed=1)
    same = fine_tune_final_layer(layer, x, y, epochs=2, lr=0.1, seed=1)
    other = fine_tune_final_layer(layer, x, y, epochs=2, lr=0.1, seed=2)
    assert torch.equal(again.weight, same.weight)
    assert not torch.equal(again.weight, other.weight)  # the seed orders the batches
    with pytest.raises(AdapterError, match="labels"):
        fine_tune_final_layer(layer, x, y[:-1])
    with pytest.raises(AdapterError, match="columns"):
        fine_tune_final_layer(layer, np.zeros((4, 3)), y[:4])


def test_targeted_points_on_the_blind_spot_fix_the_error_slice_and_the_comparison_says_by_how_much():
    layer, pool_x, pool_y = _blind_spot(0)
    test_x, test_y = _blind_spot(1)[1:]
    targeted = np.flatnonzero(pool_y == 2)[:40]
    away = np.flatnonzero(pool_y != 2)[:40]  # points of the classes it already gets right
    out = compare_selections(
        layer, pool_x, pool_y,
        {"targeted": lambda s: targeted, "random": lambda s: np.random.default_rng(s).choice(len(pool_y), 40, replace=False),
         "away": lambda s: away},
        test_x, test_y, {"error_slice": test_y == 2}, seeds=[0, 1, 2, 3], learning_rates=(0.01, 0.3),
        tuning_features=pool_x[300:], tuning_labels=pool_y[300:], epochs=5, batch_size=8)
    assert out["base"]["error_slice"] == 0.0 and out["sizes"]["error_slice"] == int((test_y == 2).sum())
    for name in ("targeted", "random", "away"):
        for where in ("overall", "error_slice"):
            summary = out["runs"][name]["summary"][where]
            assert all(np.isfinite(summary[k]) for k in ("mean", "std", "low", "high"))
            assert summary["low"] <= summary["mean"] <= summary["high"] and summary["n"] == 4
    fixed = out["runs"]["targeted"]["summary"]["error_slice"]
    assert fixed["low"] > 0.5  # most of the blind spot is fixed, in every run
    assert out["runs"]["targeted"]["learning_rate"] == 0.3  # chosen on the tuning points, not the held-out ones
    assert out["runs"]["away"]["summary"]["error_slice"]["high"] <= 0.0  # nothing about class 2: no fix
    assert out["differences"]["away"]["error_slice"]["low"] > 0.5
    assert out["first"] == "targeted"


def test_compare_selections_refuses_what_gives_no_interval_or_no_slice():
    layer, x, y = _blind_spot()
    pick = {"a": lambda s: np.arange(10)}
    with pytest.raises(AdapterError, match="seeds"):
        compare_selections(layer, x, y, pick, x, y, {}, seeds=[0])
    with pytest.raises(AdapterError, match="slice 'empty'"):
        compare_selections(layer, x, y, pick, x, y, {"empty": np.zeros(len(y), dtype=bool)}, seeds=[0, 1])
    with pytest.raises(AdapterError, match="tuning"):
        compare_selections(layer, x, y, pick, x, y, {}, seeds=[0, 1], learning_rates=(0.1, 0.01))
    with pytest.raises(AdapterError, match="selection 'a'"):
        compare_selections(layer, x, y, {"a": lambda s: np.array([len(y)])}, x, y, {}, seeds=[0, 1])


def test_mean_interval_is_the_student_t_interval_over_seeds():
    out = mean_interval([1.0, 2.0, 3.0])
    assert out["mean"] == 2.0 and out["std"] == 1.0
    assert out["high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)  # t(0.975, 2 dof)
    assert mean_interval([0.5, 0.5])["low"] == 0.5


def _report(changes: dict[str, float], spread: float = 0.001, caught: int = 1) -> dict:
    """A report whose fine-tuning changed the error slice by ``changes`` (mean per selection)."""
    def interval(m):
        return {"mean": m, "std": spread, "low": m - 2 * spread, "high": m + 2 * spread, "n": 5}

    runs = {s: {"summary": {"error_slice": interval(m), "overall": interval(0.0)}, "learning_rate": 1e-3}
            for s, m in changes.items()}
    diffs = {o: {"error_slice": interval(changes["targeted"] - m), "overall": interval(0.0)}
             for o, m in changes.items() if o != "targeted"}
    return {"fine_tuning": {"runs": runs, "first": "targeted", "differences": diffs,
                            "base": {"overall": 0.9, "error_slice": 0.4}, "sizes": {"overall": 2000, "error_slice": 300}},
            "selection": {"targeted": {"budget": 100, "model_errors": caught}, "random": {"budget": 100, "model_errors": 6}},
            "pool_error_rate": 0.07, "budget": 100}


def test_the_verdict_says_plainly_which_selection_helped_and_when_targeted_does_not_win():
    wins = verdict(_report({"targeted": 0.05, "random": 0.01, "uncertainty": 0.0}))
    assert wins["targeted_wins"] and wins["headline"].startswith("Targeted selection helped most")
    assert "+4.0 points more than random" in wins["headline"]
    loses = verdict(_report({"targeted": 0.0, "random": 0.03, "uncertainty": 0.0}))
    assert not loses["targeted_wins"]
    assert loses["headline"].startswith("Targeted selection did not win: random selection helped more")
    assert "Targeted did worse than random: -3.0 points" in loses["slices"]["error_slice"][1]
    nobody = verdict(_report({"targeted": 0.0, "random": -0.02, "uncertainty": 0.0}))
    assert nobody["headline"].startswith("No selection improved the error slice beyond seed-to-seed noise")
    assert "Targeted only did less harm than random." in nobody["headline"]
    assert "picked 1 the model gets wrong; a random draw of that size holds about 7" in nobody["selection"]
    assert "mostly points the model already gets right" in nobody["selection"]
    assert (points(-0.0004), points(0.0123), points(-0.02)) == ("+0.0", "+1.2", "-2.0")  # no "-0.0"


@pytest.mark.slow
def test_the_report_on_a_tiny_setting_compares_selections_with_finite_numbers_and_repeats_per_seed(tmp_path):
    seen = []
    kwargs = dict(dataset="shapes_vqa", model="shapes_vqa_late", labelled_size=300, pool_size=200,
                  held_out_size=300, budget=20, k_features=3, k_examples=1, runs=3, seed=7)
    report = build_debugging_report(tmp_path / "a", progress=lambda f, stage: seen.append((f, stage)), **kwargs)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and seen[-1][1] == "done"
    ft = report["fine_tuning"]
    assert set(ft["runs"]) == {"targeted", "random", "uncertainty"} and ft["seeds"] == [7, 8, 9]
    for run in ft["runs"].values():
        assert run["budget"] == 20
        for where, summary in run["summary"].items():
            assert where in ("overall", "error_slice", "feature_slice")
            assert all(np.isfinite(summary[k]) for k in ("mean", "low", "high"))
    assert ft["sizes"]["overall"] == 300 and report["verdict"]["headline"]
    assert json.loads((tmp_path / "a" / "report.json").read_text()) == report
    assert build_debugging_report(tmp_path / "b", **kwargs) == report  # same seed, same report
