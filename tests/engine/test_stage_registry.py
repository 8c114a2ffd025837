"""The engine's stage registry: a stage registered there alone is known to the format's
checks, the manifest schema and planning's defaults, and its writer is what writes its section."""

from types import SimpleNamespace

import numpy as np
import pytest

from viz_engine.bundles.format import BundleError, check_stages, read_json, section_path, write_json
from viz_engine.bundles.registry import (StageSpec, default_stage_names, get_stage, register_stage, stage_names,
                                         unregister_stage)
from viz_engine.bundles.schema import check_manifest


@pytest.fixture
def toy_stage():
    seen = []

    def write_toy(ctx, entry, ex, batch, pred):
        seen.append((entry["id"], ex, pred))
        return {"note": f"toy of {entry['id']}", "k": ctx.params["Toy"]["k"]}

    register_stage(StageSpec("Toy", "Toy", methods=("gradient",), needs=("forward",), params={"k": 2},
                             writer=write_toy))
    yield seen
    unregister_stage("Toy")


def test_the_built_in_stages_are_registered_in_the_papers_order():
    assert stage_names() == ("U", "C", "Rl", "Rg", "P", "T")
    assert default_stage_names() == ("U", "C", "Rl", "Rg", "P")
    assert get_stage("Rl").label == "Rℓ" and get_stage("T").needs == ("attentions", "hidden_states", "token_segments")


def test_a_registered_stage_is_checked_written_and_listed_like_a_built_in_one(tmp_path, toy_stage):
    from viz_engine.bundles.stages import compute_item

    assert check_stages(["Toy", "U"]) == ("U", "Toy")
    entry = {"id": "test-00000", "index": 0}
    write_json(tmp_path / "items" / entry["id"] / "item.json", {"id": entry["id"]})  # the record exists already
    ctx = SimpleNamespace(root=tmp_path, plan={"stages": {"Toy": {"k": 2}}}, params={"Toy": {"k": 2}},
                          examples=["the datapoint"], probs=np.array([[0.1, 0.9]]),
                          source=SimpleNamespace(make_batch=lambda adapter, exs: ("batch", exs)), adapter=None)
    assert compute_item(ctx, entry) == ["Toy"]
    assert read_json(section_path(tmp_path, entry["id"], "Toy")) == {"note": "toy of test-00000", "k": 2}
    assert toy_stage == [("test-00000", "the datapoint", 1)]
    manifest = {"files": {}, "items": [{"id": "a"}], "stages": {}, "class_names": ["x"], "dataset": {"name": "d"},
                "model": {"name": "m"}, "task": "simulation", "request": {"stages": ["U", "Toy"]}}
    check_manifest(manifest)


def test_an_unregistered_stage_is_refused_by_name():
    with pytest.raises(BundleError, match="unknown stage.*'Toy'"):
        check_stages(["U", "Toy"])
    with pytest.raises(ValueError, match="registered already"):
        register_stage(StageSpec("U", "U"))


def test_planning_refuses_an_attribution_method_that_is_not_registered(tmp_path):
    from viz_engine.bundles.precompute import plan_bundle

    with pytest.raises(BundleError, match="U.text: 'nope' is not a method of stage U; methods: gradient"):
        plan_bundle(tmp_path / "x", dataset="shapes_vqa", model="shapes_vqa_early", n_items=1, stages=["U"],
                    params={"U": {"text": "nope"}})
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_registered_attribution_method_computes_a_bundles_u_over_words(tmp_path):
    from viz_engine.bundles.precompute import build_bundle
    from viz_engine.methods.attributions import AttributionMethod, register_attribution, unregister_attribution

    def first_word_only(adapter, batch, target, modality, *, weight=1.0):
        scores = np.zeros((1, batch.inputs[modality].shape[1]))
        scores[0, 0] = weight
        return scores

    register_attribution(AttributionMethod("first_word_only", first_word_only, options=("weight",)))
    try:
        build_bundle(tmp_path / "b", dataset="shapes_vqa", model="shapes_vqa_early", n_items=1, stages=["U"],
                     params={"U": {"text": "first_word_only", "weight": 0.5, "n_samples": 50},
                             "P": {"points": 200, "n_lambdas": 3}})
    finally:
        unregister_attribution("first_word_only")
    (item,) = (tmp_path / "b" / "items").iterdir()
    text = read_json(item / "U.json")["text"]
    assert text["method"] == "first_word_only" and text["weight"] == 0.5
    assert [h["score"] for h in text["highlights"]][:2] == [0.5, 0.0]
