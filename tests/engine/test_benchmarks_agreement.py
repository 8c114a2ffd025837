"""Every benchmark checks that its two sides agree before it reports a ratio (issue 18): each
check runs here on a small size, and a benchmark whose sides disagree raises."""

import numpy as np
import pytest

from benchmarks._harness import Disagreement, compare


def test_compare_raises_before_any_ratio_when_the_two_sides_disagree():
    with pytest.raises(Disagreement):
        compare("x", lambda: np.ones(3), lambda: np.ones(3) * 1.1, rtol=1e-3, atol=1e-6, repeat=1)


def test_compare_reports_a_ratio_when_the_two_sides_agree():
    out = compare("x", lambda: np.ones(3), lambda: np.ones(3), rtol=1e-3, atol=1e-6, repeat=1)
    assert out["speedup"] > 0 and out["max_abs_diff"] == 0.0


@pytest.fixture(scope="module")
def early_and_question():
    from viz_engine.data import shapes_vqa as vqa_data
    from viz_engine.models import shapes_vqa as vqa_models

    test = vqa_data.load_split("test")
    return vqa_models.load_pretrained("early"), next(ex for ex in test if len(ex.tokens) >= 8), test


def test_sog_benchmark_one_call_agrees_with_the_shared_graph_and_recompute_loops(early_and_question):
    from benchmarks.engine import bench_sog

    adapter, question, _ = early_and_question
    out = bench_sog(adapter, question, repeat=1)
    assert set(out["sog_comparisons"]) == {"shared_graph_loop", "recompute_loop"}


def test_sog_benchmark_raises_when_its_baseline_computes_something_else(early_and_question, monkeypatch):
    import benchmarks.engine as engine

    adapter, question, _ = early_and_question
    monkeypatch.setattr(engine, "_sog_shared_loop", lambda a, b: engine._sog_recompute_loop(a, b) * 2)
    with pytest.raises(Disagreement):
        engine.bench_sog(adapter, question, repeat=1)


def test_emap_benchmark_agrees_with_the_unreused_batched_path_and_one_forward_per_pair(early_and_question):
    from benchmarks.engine import bench_emap
    from viz_engine.models import shapes_vqa as vqa_models

    adapter, _, test = early_and_question
    out = bench_emap({"early": adapter, "late": vqa_models.load_pretrained("late")}, test[:5], repeat=1)
    assert out["emap_n"] == 5 and set(out["emap_comparisons"]) == {"early", "late"}


def test_lime_benchmark_agrees_with_lime_image_and_captum_lime_on_the_same_samples(early_and_question):
    from benchmarks.engine import bench_lime

    adapter, question, _ = early_and_question
    out = bench_lime(adapter, question, 40, repeat=1)
    assert set(out["lime_comparisons"]["image"]) == {"engine_batch_size_1", "lime_package_default_batch_10",
                                                     "lime_package_tuned", "captum_tuned"}
    assert set(out["lime_comparisons"]["question"]) == {"engine_batch_size_1", "captum_tuned"}


def test_sparse_linear_path_objectives_agree_with_saga_at_every_lambda():
    from benchmarks.sparse_linear import benchmark_path

    out = benchmark_path(n=300, d=10, c=3, n_lambdas=6, eps=1e-1)
    assert out["max_relative_objective_gap"] <= 1e-4 and len(out["per_lambda"]) == 6


def test_sparse_linear_path_raises_when_objectives_differ_beyond_the_tolerance():
    from benchmarks.sparse_linear import benchmark_path

    with pytest.raises(Disagreement):
        benchmark_path(n=300, d=10, c=3, n_lambdas=4, eps=1e-1, tol=1e-2, sklearn_tol=1e-2,
                       rel_objective_tol=1e-12)


def test_bundle_benchmark_refuses_bundles_that_differ():
    from benchmarks.bundle_precompute import check_identical

    assert check_identical({"a": "1"}, {"a": "1"})
    with pytest.raises(Disagreement):
        check_identical({"a": "1", "b": "2"}, {"a": "1", "b": "3"})


@pytest.mark.slow
def test_bundle_benchmark_one_and_two_processes_write_identical_bundles(tmp_path):
    from benchmarks.bundle_precompute import run

    out = run(3, workdir=tmp_path)
    assert out["identical_bundles"] and out["speedup_2_over_1"] > 0


@pytest.mark.parametrize("arch", ["vilt", "lxmert"])
def test_real_size_benchmark_sides_agree_on_tiny_random_models(arch):
    from benchmarks.real_size import measure

    out = measure(arch, 4, 2, 1, tiny=True)
    assert out["sog"]["measured_words"] == 2 and out["per_item"]["speedup"] > 0
    assert out["dime"]["projected"] is True
