"""Bundles: what precompute writes, how it resumes, and what validation refuses."""

import json
import shutil

import numpy as np
import pytest

from viz_engine.bundles.format import MULTIVIZ_STAGES as STAGES
from viz_engine.bundles.format import BundleError, bundle_files, read_json
from viz_engine.bundles.precompute import (
    build_bundle,
    finalize,
    load_context,
    missing_items,
    p_points,
    plan_bundle,
    progress,
    validate_bundle,
)
from viz_engine.bundles.selection import select_items
from viz_engine.bundles.sources import ShapesVQASource, load_dataset, load_model
from viz_engine.bundles.stages import live_second_order_gradient

REQUEST = dict(dataset="shapes_vqa", model="shapes_vqa_early", n_items=2, seed=3)


def broken_loader():
    raise RuntimeError("checkpoint file is corrupt")


def early_model():
    return load_model("shapes_vqa_early")


class LeakySource(ShapesVQASource):
    """A dataset whose 'train' split repeats part of its 'test' split."""

    def examples(self, split):
        test = super().examples("test")
        return test if split == "test" else [*super().examples("train", n=200), *test[:300]]


class NoTrainSource(ShapesVQASource):
    splits = ("val", "test")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "b"
    build_bundle(out, **REQUEST)
    return out


@pytest.fixture
def bundle(built, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(built, copy)
    return copy


def _mtimes(root):
    return {name: (root / name).stat().st_mtime_ns for name in bundle_files(root)}


def test_a_bundle_has_every_stage_of_every_item_and_validates(built):
    manifest = validate_bundle(built)
    assert manifest["format"] == "multiviz-bundle" and manifest["format_version"] == 1
    assert manifest["request"]["stages"] == list(STAGES)
    assert len(manifest["items"]) == 2
    for entry in manifest["items"]:
        item = read_json(built / "items" / entry["id"] / "item.json")
        assert item["label"] and item["prediction"] in manifest["class_names"]
        assert (built / item["datapoint"]["image"]).is_file()
        for stage in STAGES:
            assert f"items/{entry['id']}/{stage}.json" in manifest["files"]
        c = read_json(built / "items" / entry["id"] / "C.json")
        assert len(c["words"]) == len(item["datapoint"]["tokens"])
        rg = read_json(built / "items" / entry["id"] / "Rg.json")
        assert all(len(f["max"]) == 3 and len(f["min"]) == 3 for f in rg["features"])


def test_a_bundle_with_c_records_how_far_its_c_maps_move_with_the_word(built):
    from viz_engine.faithfulness_controls import c_specificity

    check = validate_bundle(built)["c_specificity"]
    assert check["n_pairs"] == 60 and check["seed"] == REQUEST["seed"]
    for key in ("over_other_object", "over_non_referring", "phrase"):
        assert check[key]["lo"] <= check[key]["value"] <= check[key]["hi"]
    again = c_specificity(load_model(REQUEST["model"]), load_context(built).examples[:300], seed=REQUEST["seed"])
    assert again["over_other_object"] == check["over_other_object"]


def test_the_p_section_is_the_predicted_classs_top_features_and_names_no_class(built):
    manifest = validate_bundle(built)
    entry = manifest["items"][0]
    p_text = (built / "items" / entry["id"] / "P.json").read_text()
    assert "prediction" not in p_text and "predicted" not in p_text
    p = json.loads(p_text)
    assert not {v for f in p["features"] for v in f.values() if isinstance(v, str)} & set(manifest["class_names"])
    predicted = read_json(built / "items" / entry["id"] / "item.json")["prediction"]
    top = read_json(built / "shared" / "P.json")["top_features"][predicted]
    shown = [[f["feature"], f["weight"]] for f in p["features"]]
    assert len(shown) == 5 and shown[:len(top)] == top[:5]  # the paper's top 5, largest first
    assert [w for _, w in shown] == sorted((w for _, w in shown), reverse=True)  # padded by the next weights
    assert manifest["answer_types"]["colour"] == ["red", "green", "blue", "yellow", "purple"]


def test_running_again_computes_nothing_and_rewrites_nothing(bundle):
    before = _mtimes(bundle)
    build_bundle(bundle, **REQUEST)
    assert _mtimes(bundle) == before


def test_an_interrupted_bundle_resumes_with_only_the_missing_sections(bundle):
    manifest = read_json(bundle / "manifest.json")
    victim = manifest["items"][1]["id"]
    (bundle / "manifest.json").unlink()
    (bundle / "items" / victim / "C.json").unlink()
    (bundle / "items" / victim / ".C.json.12345.tmp").write_text("{half")  # a killed writer's leftover
    assert missing_items(bundle) == [victim]
    assert progress(bundle) == (1, 2)
    before = _mtimes(bundle)
    build_bundle(bundle, **REQUEST)
    after = _mtimes(bundle)
    changed = {n for n in after if before.get(n) != after[n]}
    # the missing section and its own assets, nothing else
    c_assets = {n for n in after if n.startswith(f"items/{victim}/assets/C-")}  # the phrase's and each word's map
    assert f"items/{victim}/assets/C-phrase.png" in c_assets and len(c_assets) > 1
    assert changed == {f"items/{victim}/C.json", *c_assets}
    assert not list(bundle.rglob("*.tmp"))
    assert validate_bundle(bundle)["files"] == manifest["files"]  # recomputed to the same bytes


@pytest.mark.parametrize("damage, message", [
    (lambda b, i: (b / "items" / i / "U.json").write_text('{"image": {}}'), "does not match its hash"),
    (lambda b, i: (b / "items" / i / "P.json").unlink(), "missing"),
    (lambda b, i: (b / "items" / i / "extra.json").write_text("{}"), "not in the manifest"),
    (lambda b, i: (b / "manifest.json").unlink(), "no manifest.json"),
    (lambda b, i: (b / "manifest.json").write_text("{not json"), "not valid JSON"),
])
def test_a_damaged_bundle_is_refused_naming_the_problem(bundle, damage, message):
    item = read_json(bundle / "manifest.json")["items"][0]["id"]
    damage(bundle, item)
    with pytest.raises(BundleError, match=message):
        validate_bundle(bundle)


def test_a_manifest_of_another_version_is_refused(bundle):
    manifest = read_json(bundle / "manifest.json")
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="version 99 is not supported"):
        validate_bundle(bundle)


def test_p_is_fitted_on_the_training_split_and_never_on_an_item(built):
    manifest = validate_bundle(built)
    fit = manifest["p_fit"]
    assert fit["split"] == "train" != manifest["dataset"]["split"] == fit["heldout_split"]
    assert fit["n_points"] == 3000 and fit["heldout_points"] == 2000
    source = load_dataset("shapes_vqa")
    fitted, _ = p_points(source, fit["split"], fit["n_points"], manifest["request"]["seed"])
    assert len(fitted) == fit["n_points"]
    fitted_keys = {(e.question, e.image.tobytes()) for e in fitted}
    items = source.examples(manifest["dataset"]["split"])
    assert not any((items[e["index"]].question, items[e["index"]].image.tobytes()) in fitted_keys
                   for e in manifest["items"])


def test_p_records_its_held_out_accuracy_on_the_items_split(built):
    fit = validate_bundle(built)["p_fit"]
    ctx = load_context(built)
    z = (ctx.features - np.array(ctx.sparse["mean"])) / np.array(ctx.sparse["std"])
    logits = z @ _dense_weights(ctx.sparse, ctx.features.shape[1]).T + np.array(ctx.sparse["bias"])
    p_pred = np.array(ctx.sparse["classes"])[logits.argmax(axis=1)]
    agree = np.mean(p_pred == np.array(ctx.class_names)[ctx.probs.argmax(axis=1)])
    assert fit["heldout_accuracy"] == pytest.approx(agree, abs=1e-4)
    assert 0.5 < fit["heldout_accuracy"] <= 1


def _dense_weights(sparse, d):
    w = np.zeros((len(sparse["classes"]), d))
    for k, j, v in sparse["weights"]:
        w[k, j] = v
    return w


@pytest.mark.parametrize("kwargs, message", [
    (dict(p_split="test"), "p_split: P cannot be fitted on 'test', the split the items come from"),
    (dict(split="val", p_split="val"), "p_split: P cannot be fitted on 'val'"),
    (dict(split="train"), "p_split: P cannot be fitted on 'train'"),
    (dict(p_split="holdout"), "p_split: 'holdout' is not a split of the dataset"),
    (dict(dataset="tests.engine.test_bundles:NoTrainSource", model="tests.engine.test_bundles:early_model"),
     "p_split: the dataset has no 'train' split"),
    (dict(params={"P": {"points": 0}}), "P.points"),
])
def test_a_p_split_that_is_not_disjoint_from_the_items_is_refused(tmp_path, kwargs, message):
    out = tmp_path / "never"
    with pytest.raises(BundleError, match=message):
        plan_bundle(out, **{**REQUEST, **kwargs})
    assert not (out / "plan.json").exists()


@pytest.mark.slow
def test_a_p_split_holding_an_items_datapoint_is_refused(tmp_path):
    out = tmp_path / "leaky"
    with pytest.raises(BundleError, match=r"p_split: \d+ item\(s\) .* are also among the datapoints of 'train'"):
        plan_bundle(out, **{**REQUEST, "n_items": 20, "dataset": "tests.engine.test_bundles:LeakySource",
                            "model": "tests.engine.test_bundles:early_model"})
    assert not (out / "plan.json").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="cifar"), "dataset 'cifar' is unknown"),
    (dict(model="resnet"), "model 'resnet' is unknown"),
    (dict(stages=["U", "X"]), "unknown stage"),
    (dict(task="ranking"), "task 'ranking' is unknown"),
    (dict(model="tests.engine.test_bundles:broken_loader"), "failed to load: RuntimeError: checkpoint file is corrupt"),
    (dict(model="tests.engine.nowhere:load"), "cannot import"),
    (dict(n_items=5000), "only .* datapoints meet the criteria"),
])
def test_bad_requests_fail_before_any_work(tmp_path, kwargs, message):
    out = tmp_path / "never"
    with pytest.raises(BundleError, match=message):
        plan_bundle(out, **{**REQUEST, **kwargs})
    assert not (out / "plan.json").exists()


def test_an_unwritable_output_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(BundleError, match="not writable"):
        plan_bundle(blocker / "bundle", **REQUEST)


def test_a_different_plan_in_the_same_folder_is_refused_and_nothing_is_lost(bundle):
    before = _mtimes(bundle)
    with pytest.raises(BundleError, match="already holds a different bundle"):
        plan_bundle(bundle, **{**REQUEST, "n_items": 3})
    assert _mtimes(bundle) == before
    validate_bundle(bundle)


def test_finalize_refuses_an_incomplete_bundle(bundle):
    item = read_json(bundle / "manifest.json")["items"][0]["id"]
    (bundle / "items" / item / "Rl.json").unlink()
    with pytest.raises(BundleError, match="1 item\\(s\\) are not computed yet"):
        finalize(bundle)


def test_simulation_items_leave_out_yes_no_and_rare_answers_and_are_seeded():
    labels = np.array(["red"] * 30 + ["yes"] * 30 + ["rare"] * 2)
    yes_no = labels == "yes"
    picks = select_items(labels, labels, yes_no, task="simulation", n=10, seed=1, min_answer_count=5)
    assert all(labels[i] == "red" for i in picks) and len(set(picks)) == 10
    assert picks == select_items(labels, labels, yes_no, task="simulation", n=10, seed=1, min_answer_count=5)
    assert picks != select_items(labels, labels, yes_no, task="simulation", n=10, seed=2, min_answer_count=5)


def test_error_items_are_only_misclassified_points():
    labels = np.array(["red", "blue"] * 20)
    preds = labels.copy()
    preds[:6] = "green"
    picks = select_items(labels, preds, np.zeros(40, bool), task="error", n=6, seed=0, min_answer_count=1)
    assert sorted(picks) == list(range(6))


def test_a_concept_bundle_shows_one_feature_per_item_on_a_seeded_random_datapoint_not_an_rg_example(tmp_path):
    from viz_engine.bundles.precompute import random_datapoint
    from viz_engine.methods.global_representation import top_activating

    plan = plan_bundle(tmp_path / "c", dataset="shapes_vqa", model="shapes_vqa_late", task="concept", n_items=2,
                       stages=["Rl", "Rg"])
    ctx = load_context(tmp_path / "c")
    for entry in plan["items"]:  # the paper's Rℓ example is a random datapoint, not Rg's first max example
        top = top_activating(ctx.features, entry["feature"], k=3)
        assert entry["index"] not in {*top["max_indices"].tolist(), *top["min_indices"].tolist()}
        assert entry["index"] == random_datapoint(ctx.features, entry["feature"], k=3, seed=0)  # seeded
    features = [e["feature"] for e in plan["items"]]
    assert len(set(features)) == 2
    assert plan["c_specificity"] is None  # no C stage: nothing to measure


def test_live_second_order_gradient_finds_the_named_object_more_often_than_chance():
    from viz_engine.bundles.sources import ShapesVQASource

    adapter = load_model("shapes_vqa_early")
    source = ShapesVQASource()
    examples = [e for e in source.examples("test")[:200] if e.question_type in ("colour", "shape")][:20]
    hits, chance = 0, 0.0
    for example in examples:
        phrase, obj = example.references[0]
        result = live_second_order_gradient(adapter, source, example, list(phrase))
        assert result["words"] == [example.tokens[p] for p in phrase]
        assert result["heatmap_png"].startswith(b"\x89PNG")
        hits += obj in result["top_boxes"]
        chance += min(2, len(example.objects)) / len(example.objects)
    assert hits > chance + 2


def test_live_second_order_gradient_rejects_words_the_question_does_not_have():
    from viz_engine.bundles.sources import ShapesVQASource

    adapter = load_model("shapes_vqa_early")
    source = ShapesVQASource()
    example = source.examples("test")[0]
    with pytest.raises(BundleError, match="not words of this question"):
        live_second_order_gradient(adapter, source, example, [99])
    with pytest.raises(BundleError, match="at least one word"):
        live_second_order_gradient(adapter, source, example, [])


def test_transformer_views_hold_heatmaps_both_ways_per_head_and_averaged(tmp_path):
    build_bundle(tmp_path / "t", dataset="shapes_vqa", model="shapes_vqa_early", n_items=1, seed=4, stages=["T"])
    manifest = validate_bundle(tmp_path / "t")
    t = read_json(tmp_path / "t" / "items" / manifest["items"][0]["id"] / "T.json")
    assert np.asarray(t["statistics"]["cross_modal"]).shape == (3, 4)
    word = next(iter(t["word_to_image"].values()))
    assert np.asarray(word["per_head"]).shape == (3, 4, 9)
    np.testing.assert_allclose(np.asarray(word["per_head"]).sum(-1), 1.0, atol=1e-3)
    patch = t["image_to_words"][str(t["image_tokens"][0])]
    assert np.asarray(patch["per_head"]).shape == (3, 4, len(t["word_tokens"]))
    assert len(t["maps"]) == 4 and len(t["maps"][0]["points"]) == len(t["tokens"])
    assert (tmp_path / "t" / "shared" / "T.json").exists()
