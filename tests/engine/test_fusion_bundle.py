"""A small bundle of the fusion dataset (time series + static fields): every section as
views over the item's modalities, shaped like their atoms, and accepted by import's checks."""

import json

import numpy as np
import pytest

from viz_engine.bundles.format import BundleError, read_json
from viz_engine.bundles.precompute import build_bundle, plan_bundle, validate_bundle

pytestmark = pytest.mark.slow  # about 10 s: the train split is generated for P


@pytest.fixture(scope="module")
def fusion_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("fusion") / "b"
    build_bundle(out, dataset="fusion", model="fusion_interaction", n_items=3, seed=0,
                 params={"P": {"points": 400}})
    return out


def _items(root):
    return [e["id"] for e in read_json(root / "manifest.json")["items"]]


def test_fusion_bundle_passes_the_import_validation_with_items_as_timeseries_and_tabular(fusion_bundle):
    manifest = validate_bundle(fusion_bundle)
    assert manifest["dataset"]["name"] == "fusion" and manifest["class_names"] == ["stable", "deteriorating"]
    assert manifest["stages"]["U"] == {"method": "gradient"}  # no image parameters for a series
    for item_id in _items(fusion_bundle):
        record = read_json(fusion_bundle / "items" / item_id / "item.json")
        assert "datapoint" not in record
        assert [(m["name"], m["kind"]) for m in record["modalities"]] == [("series", "timeseries"),
                                                                          ("static", "tabular")]


def test_fusion_sections_hold_views_shaped_like_the_atoms_of_their_modality(fusion_bundle):
    shapes = {"series": (24, 5), "static": (8,)}
    for item_id in _items(fusion_bundle):
        folder = fusion_bundle / "items" / item_id
        u, c, rl, rg = (read_json(folder / f"{s}.json") for s in ("U", "C", "Rl", "Rg"))
        assert [v["modality"] for v in u["views"]] == ["series", "static"]
        views = [*u["views"], *c["views"], *[v for f in rl["features"] for v in f["views"]],
                 *[v for f in rg["features"] for side in ("max", "min") for d in f[side] for v in d["views"]]]
        for v in views:
            assert np.array(v["scores"]).shape == shapes[v["modality"]] and v["title"]
        assert len(c["views"]) == 3 and {v["query_modality"] for v in c["views"]} == {"static"}
        assert all(v["modality"] == "series" for v in c["views"])
        assert len(rl["features"]) == 3 and all(len(f["max"]) == 3 for f in rg["features"])
        assert all(d["modalities"][0]["kind"] == "timeseries" for f in rg["features"] for d in f["max"])
        text = json.dumps([u, c, rl, rg]).lower()
        assert "stable" not in text and "deteriorating" not in text  # no view names a class


def test_interaction_model_queries_the_ventilator_field_it_learnt_to_combine_with_spo2(fusion_bundle):
    queried = [read_json(fusion_bundle / "items" / i / "C.json")["queries"] for i in _items(fusion_bundle)]
    assert sum(7 in q for q in queried) >= 2  # on_ventilator: the planted XOR's field


def test_late_fusion_bundle_has_exactly_zero_cross_modal_views(tmp_path):
    out = tmp_path / "late"
    build_bundle(out, dataset="fusion", model="fusion_late", n_items=2, seed=0, stages=["C"],
                 params={"P": {"points": 200}})
    for item_id in _items(out):
        for view in read_json(out / "items" / item_id / "C.json")["views"]:
            assert np.all(np.array(view["scores"]) == 0)  # linear after concatenation: ∂²f/∂x₁∂x₂ = 0


def test_fusion_models_refuse_the_other_dataset_and_transformer_views(tmp_path):
    with pytest.raises(BundleError, match="trained on 'fusion'"):
        plan_bundle(tmp_path / "x", dataset="shapes_vqa", model="fusion_late")
    with pytest.raises(BundleError, match="transformer"):
        plan_bundle(tmp_path / "y", dataset="fusion", model="fusion_late", stages=["U", "T"])
