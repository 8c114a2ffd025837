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
