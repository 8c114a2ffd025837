"""Recipes: a bundle chooses each stage's method from the engine; the named recipes, the
overrides, what the plan records, and that every section holds the engine method's own
numbers (nothing re-implemented)."""

import numpy as np
import pytest

from viz_engine.bundles.format import BundleError, read_json
from viz_engine.bundles.precompute import DEFAULT_PARAMS, build_bundle, load_context, random_datapoint
from viz_engine.bundles.recipes import (
    RECIPES,
    parse_method_overrides,
    parse_param_overrides,
    recipe_record,
    resolve_params,
)

STAGES = ("U", "C", "Rl", "Rg", "P")
# the test bundles' overrides: few LIME samples and a small DIME reference, for speed (the
# recipes' own defaults are 1000 samples and 50 reference datapoints)
FAST = {"U": {"n_samples": 60}, "C": {"n_samples": 60, "reference": 8}, "Rl": {"n_samples": 60, "features": 2},
        "Rg": {"n_samples": 60, "k": 2}, "P": {"points": 300}}


# -- recipes and overrides (fast) ---------------------------------------------------------------
def test_paper_vqa_uses_lime_dime_and_sog_lime_toward_features_and_five_features():
    params = resolve_params(DEFAULT_PARAMS, STAGES, "paper-vqa")
    assert (params["U"]["image"], params["U"]["text"]) == ("lime", "lime")
    assert params["C"]["method"] == "dime+second_order_gradient"
    assert params["Rl"]["method"] == params["Rg"]["method"] == "lime"
    assert params["Rg"]["k"] == 3 and params["Rl"]["features"] == 5 and params["P"]["top_k"] == 5
    assert params["U"]["n_samples"] == 1000 and params["C"]["reference"] == 50  # the documented defaults


def test_paper_fusion_uses_first_order_gradients_and_sog_for_the_ten_largest_gradient_words():
    params = resolve_params(DEFAULT_PARAMS, STAGES, "paper-fusion")
    assert (params["U"]["image"], params["U"]["text"]) == ("gradient", "gradient")
    assert params["C"]["method"] == "second_order_gradient" and params["C"]["words"] == 10
    assert params["Rl"]["method"] == params["Rg"]["method"] == "gradient"


def test_the_default_recipe_keeps_the_parameters_bundles_had_before_recipes():
    assert RECIPES["default"] == {}
    params = resolve_params(DEFAULT_PARAMS, STAGES, "default")
    assert params == {s: DEFAULT_PARAMS[s] for s in STAGES}


def test_a_stage_override_replaces_the_recipes_method_and_keeps_its_other_parameters():
    over = parse_method_overrides(["U=gradient", "U.text=lime", "C=emap"])
    assert over == {"U": {"image": "gradient", "text": "lime"}, "C": {"method": "emap"}}
    params = resolve_params(DEFAULT_PARAMS, STAGES, "paper-vqa", over)
    assert params["U"] == {**params["U"], "image": "gradient", "text": "lime", "n_samples": 1000}
    assert params["C"]["method"] == "emap" and params["C"]["reference"] == 50


def test_parameter_overrides_read_json_values():
    assert parse_param_overrides(["U.n_samples=200", "C.words=null", "Rl.method=gradient"]) == {
        "U": {"n_samples": 200}, "C": {"words": None}, "Rl": {"method": "gradient"}}


@pytest.mark.parametrize("bad", ["U=saliency", "C=lime", "Rl=dime", "X=lime", "U.audio=lime", "U", "C=dime+dime"])
def test_a_method_the_engine_does_not_have_for_that_stage_is_refused(bad):
    with pytest.raises(BundleError):
        parse_method_overrides([bad])


@pytest.mark.parametrize("over", [{"Rl": {"features": 0}}, {"P": {"top_k": "5"}}, {"C": {"words": 0}},
                                  {"Rg": {"method": "emap"}}, {"Q": {"k": 1}}])
def test_bad_recipe_parameters_are_refused_before_any_work(over):
    with pytest.raises(BundleError):
        resolve_params(DEFAULT_PARAMS, STAGES, "paper-vqa", over)


def test_an_unknown_recipe_is_refused_with_the_known_ones():
    with pytest.raises(BundleError, match="paper-vqa"):
        resolve_params(DEFAULT_PARAMS, STAGES, "paper-imdb")


def test_the_recipe_record_names_each_stages_method():
    params = resolve_params(DEFAULT_PARAMS, STAGES, "paper-vqa", {"Rl": {"method": "gradient"}})
    record = recipe_record("paper-vqa", {"Rl": {"method": "gradient"}}, params)
    assert record["methods"] == {"U": {"image": "lime", "text": "lime"}, "C": ["dime", "second_order_gradient"],
                                 "Rl": "gradient", "Rg": "lime", "P": "sparse_linear"}
    assert record["name"] == "paper-vqa" and record["overrides"] == {"Rl": {"method": "gradient"}}


def test_a_concept_items_datapoint_is_seeded_and_never_one_rg_shows():
    feats = np.random.default_rng(0).normal(size=(40, 4))
    picks = {random_datapoint(feats, 2, k=3, seed=s) for s in range(20)}
    shown = set(np.argsort(feats[:, 2])[:3]) | set(np.argsort(-feats[:, 2])[:3])
    assert not picks & shown and len(picks) > 5
    assert random_datapoint(feats, 2, k=3, seed=7) == random_datapoint(feats, 2, k=3, seed=7)


def test_the_precompute_command_refuses_an_unknown_method_before_any_work(tmp_path):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="not a method of stage U"):
        call_command("precompute", "--recipe", "paper-fusion", "--method", "U=saliency", "--out", str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


# -- bundles built with a recipe (slow) ---------------------------------------------------------
@pytest.fixture(scope="module")
def paper_vqa(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipes") / "paper-vqa"
    build_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", n_items=2, seed=4, recipe="paper-vqa",
                 params=FAST)
    return out


def _entry_batch(ctx, entry):
    ex = ctx.examples[entry["index"]]
    return ex, ctx.source.make_batch(ctx.adapter, [ex]), int(ctx.probs[entry["index"]].argmax())


def _patched(ctx, batch):
    from dataclasses import replace

    from viz_engine.adapters import atoms_per_patch

    return replace(batch, atoms={**batch.atoms, "image": atoms_per_patch(batch.inputs["image"], 8)})


@pytest.mark.slow
def test_the_plan_and_manifest_record_the_recipe_and_each_stages_method(paper_vqa):
    plan, manifest = read_json(paper_vqa / "plan.json"), read_json(paper_vqa / "manifest.json")
    assert manifest["recipe"] == plan["recipe"]
    assert plan["recipe"]["name"] == "paper-vqa" and plan["request"]["recipe"] == "paper-vqa"
    assert plan["recipe"]["methods"]["C"] == ["dime", "second_order_gradient"]
    assert plan["stages"]["U"]["n_samples"] == 60 and plan["recipe"]["overrides"]["U"] == {"n_samples": 60}
    for entry in plan["items"]:
        assert read_json(paper_vqa / "items" / entry["id"] / "U.json")["image"]["method"] == "lime"
        assert read_json(paper_vqa / "items" / entry["id"] / "C.json")["methods"] == ["dime", "second_order_gradient"]


@pytest.mark.slow
def test_u_and_c_sections_hold_the_engine_methods_own_numbers(paper_vqa):
    from viz_engine.methods.dime import dime
    from viz_engine.methods.lime import lime
    from viz_engine.methods.second_order_gradient import second_order_gradient_per_atom

    ctx = load_context(paper_vqa)
    entry = ctx.plan["items"][0]
    ex, batch, pred = _entry_batch(ctx, entry)
    u = read_json(paper_vqa / "items" / entry["id"] / "U.json")
    img = lime(ctx.adapter, _patched(ctx, batch), pred, "image", n_samples=60, seed=0)[0]
    words = lime(ctx.adapter, batch, pred, "question", n_samples=60, seed=0)[0]
    assert np.allclose(u["image"]["scores"], img, rtol=1e-3, atol=1e-6)
    text_view = next(v for v in u["views"] if v["modality"] == "question")
    assert np.allclose(text_view["scores"], words[: len(ex.tokens)], rtol=1e-3, atol=1e-5)

    c = read_json(paper_vqa / "items" / entry["id"] / "C.json")
    from viz_engine.bundles.stages import _reference_sample

    reference = ctx.source.make_batch(ctx.adapter, _reference_sample(ctx, entry["index"]))
    assert reference.size == 8
    for modality, point in (("image", _patched(ctx, batch)), ("question", batch)):
        exp = dime(ctx.adapter, point, reference, pred, modality, n_samples=60, seed=0)
        assert np.allclose(c["dime"]["parts"][modality]["uc"], exp.uc, rtol=1e-3, atol=1e-5)
        assert np.allclose(c["dime"]["parts"][modality]["mi"], exp.mi, rtol=1e-3, atol=1e-5)
        parts = [v["part"] for v in c["views"] if v["method"] == "dime" and v["modality"] == modality]
        assert parts == ["uc", "mi"]
    per_word = second_order_gradient_per_atom(ctx.adapter, batch, pred, "question", "image", magnitude=True)[0]
    sog = [v for v in c["views"] if v["method"] == "second_order_gradient"]
    assert [v["query"] for v in sog] == [[p] for p in range(len(ex.tokens))]  # one view per word
    boxes = ctx.source.boxes(ex)
    for v in sog:
        heat = np.abs(per_word[v["query"][0]].reshape(48, 48))
        expect = [heat[y0:y1, x0:x1].mean() for x0, y0, x1, y1 in boxes]
        assert np.allclose(v["scores"]["boxes"], expect, rtol=1e-3, atol=1e-7)
        assert v["asset"].endswith(".png") and (paper_vqa / v["asset"]).exists()
    record = read_json(paper_vqa / "items" / entry["id"] / "item.json")
    assert [m["kind"] for m in record["modalities"]] == ["image", "text"]
    assert len(record["modalities"][0]["boxes"]) == len(boxes)


@pytest.mark.slow
def test_rl_and_rg_hold_the_engine_local_representations_lime_toward_the_feature(paper_vqa):
    from viz_engine.methods.lime import lime
    from viz_engine.methods.local_representation import local_representation

    ctx = load_context(paper_vqa)
    entry = ctx.plan["items"][0]
    ex, batch, _ = _entry_batch(ctx, entry)
    rl = read_json(paper_vqa / "items" / entry["id"] / "Rl.json")
    assert rl["method"] == "lime" and len(rl["features"]) == 2
    f = rl["features"][0]
    local = local_representation(ctx.adapter, _patched(ctx, batch), f["feature"], method="lime",
                                 modalities=("image",), n_samples=60, seed=0)
    grid = next(v for v in f["views"] if v["modality"] == "image")["scores"]["grid"]
    assert np.allclose(np.ravel(grid), local.unimodal["image"][0], rtol=2e-3, atol=1e-5)

    rg = read_json(paper_vqa / "items" / entry["id"] / "Rg.json")
    block = rg["features"][0]
    assert rg["method"] == "lime" and len(block["max"]) == len(block["min"]) == 2
    top = block["max"][0]
    top_ex = ctx.examples[top["index"]]
    from viz_engine.adapters import Feature

    words = lime(ctx.adapter, ctx.source.make_batch(ctx.adapter, [top_ex]), Feature(block["feature"]), "question",
                 n_samples=60, seed=0)[0]
    text_view = next(v for v in top["views"] if v["modality"] == "question")
    assert np.allclose(text_view["scores"], words[: len(top_ex.tokens)], rtol=2e-3, atol=1e-5)


@pytest.mark.slow
def test_paper_fusion_draws_sog_for_the_words_with_the_largest_first_order_gradient(tmp_path):
    from viz_engine.methods.gradient import gradient

    out = tmp_path / "fusion"
    build_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", n_items=1, seed=4, recipe="paper-fusion",
                 params={"C": {"words": 3}, "Rl": {"features": 1}, "Rg": {"k": 1}, "P": {"points": 300}},
                 stages=["U", "C", "Rl", "P"])
    ctx = load_context(out)
    entry = ctx.plan["items"][0]
    ex, batch, pred = _entry_batch(ctx, entry)
    first = np.abs(gradient(ctx.adapter, batch, pred, "question")[0][: len(ex.tokens)])
    c = read_json(out / "items" / entry["id"] / "C.json")
    queried = [v["query"][0] for v in c["views"]]
    assert sorted(queried) == sorted(np.argsort(-first, kind="stable")[:3].tolist())
    assert c["sog_ranked_by"] == "first-order gradient"
    u = read_json(out / "items" / entry["id"] / "U.json")
    assert u["image"]["method"] == u["text"]["method"] == "gradient"
    assert np.allclose(u["image"]["scores"], gradient(ctx.adapter, batch, pred, "image")[0], rtol=1e-3, atol=1e-7)
    assert ctx.plan["recipe"]["methods"]["Rl"] == "gradient"
