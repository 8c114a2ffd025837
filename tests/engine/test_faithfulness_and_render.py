"""What people see of the numbers (render) and the SOG faithfulness check (paper D.2)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from benchmarks import engine as engine_benchmarks
from viz_engine.adapters import AdapterError
from viz_engine.data import shapes_vqa as data
from viz_engine.faithfulness import alignment_pairs, format_table, sog_alignment
from viz_engine.faithfulness_controls import bootstrap_interval, control_pairs, control_table, format_controls
from viz_engine.models import shapes_vqa as models
from viz_engine.render import heatmap_overlay_png, normalise_scores, token_highlights, top_regions


def _png_size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


def test_top_regions_ranks_boxes_by_mean_absolute_score_per_pixel():
    heat = np.zeros((8, 8))
    heat[0:2, 0:2] = -3.0   # box 0: small, strong (negative counts by magnitude)
    heat[4:8, 4:8] = 1.0    # box 1: large, weaker
    heat[0:4, 4:8] = 0.5    # box 2
    boxes = [(0, 0, 2, 2), (4, 4, 8, 8), (4, 0, 8, 4)]
    assert top_regions(heat, boxes, k=2) == [0, 1]
    assert top_regions(heat, boxes, k=3) == [0, 1, 2]


def test_top_regions_breaks_ties_by_box_order_and_rejects_non_images():
    assert top_regions(np.ones((4, 4)), [(0, 0, 2, 2), (2, 2, 4, 4)], k=1) == [0]
    with pytest.raises(AdapterError, match="pixel_scores"):
        top_regions(np.ones(16), [(0, 0, 2, 2)])


def test_heatmap_overlay_tiles_a_coarse_grid_over_the_image():
    image = np.random.default_rng(0).random((48, 48, 3))
    assert _png_size(heatmap_overlay_png(image, np.arange(9.0), scale=2)) == (96, 96)
    assert _png_size(heatmap_overlay_png(image, np.ones((48, 48)), scale=1, signed=True)) == (48, 48)
    with pytest.raises(AdapterError, match="square grid"):
        heatmap_overlay_png(image, np.arange(10.0))
    with pytest.raises(AdapterError, match="does not tile"):
        heatmap_overlay_png(image, np.ones((5, 5)))


def test_token_highlights_keep_sign_and_scale_by_the_largest_magnitude():
    out = token_highlights(["a", "red", "cube"], np.array([1.0, -4.0, np.nan]))
    assert [t["token"] for t in out] == ["a", "red", "cube"]
    assert [t["weight"] for t in out] == [0.25, -1.0, 0.0]
    with pytest.raises(AdapterError, match="3 tokens but 2 scores"):
        token_highlights(["a", "red", "cube"], np.ones(2))
    assert normalise_scores(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_alignment_pairs_keep_only_phrases_that_refer_to_one_object():
    examples = data.load_split("test", 200)
    pairs = alignment_pairs(examples)
    assert pairs
    for p in pairs:
        ex = examples[p.example]
        objs = {obj for tokens, obj in ex.references if tuple(tokens) == p.tokens}
        assert objs == {p.obj}
        assert 1 <= len(p.tokens) <= 4 and len(ex.objects) >= 2


def test_sog_of_the_early_fusion_model_finds_the_referred_object_above_chance():
    adapter = models.load_pretrained("early")
    result = sog_alignment(adapter, data.load_split("test", 200), max_pairs=80)
    assert result["n"] == 80
    assert result["chance_top1"] < result["chance_top2"] <= 1
    assert result["top2"] > result["chance_top2"] + 0.1
    table = format_table({"shapes_vqa_early": result})
    assert "top-1" in table and "shapes_vqa_early" in table and "80" in table


@pytest.mark.slow
def test_quick_benchmark_writes_every_figure_it_names(tmp_path):
    out = tmp_path / "figures.json"
    assert engine_benchmarks.main(["--quick", "--only", "sog", "emap", "lime", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    for key in ("sog_speedup", "emap_speedup", "lime_speedup"):
        assert figures[key] > 0
    assert set(figures["wall_seconds"]) == {"sog", "emap", "lime"}
    assert figures["peak_rss_mb"]["lime"] > 0


def test_control_pairs_name_another_object_of_the_same_scene():
    examples = data.load_split("test", 200)
    cps = control_pairs(examples, seed=0)
    assert {c.source for c in cps} == {"in_question", "substituted"}
    for c in cps:
        ex = examples[c.pair.example]
        assert c.other_obj != c.pair.obj
        assert c.other_example.image is ex.image
        assert (c.other_tokens, c.other_obj) in [(tuple(t), o) for t, o in c.other_example.references]
        if c.source == "substituted":
            words = [c.other_example.tokens[i] for i in c.other_tokens]
            named = [i for i, o in enumerate(ex.objects) if all(w in (o.size, o.colour, o.shape, o.shape + "s", "thing", "things") for w in words)]
            assert named == [c.other_obj]
    def key(cs):
        return [(c.pair, c.other_tokens, c.other_obj, tuple(c.other_example.tokens)) for c in cs]

    assert key(control_pairs(examples, seed=0)) == key(cps)


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_pairs():
    rng = np.random.default_rng(0)
    small, large = rng.random(40) < 0.5, rng.random(4000) < 0.5
    a = bootstrap_interval(small.astype(float), rng.integers(0, 40, (1000, 40)))
    b = bootstrap_interval(large.astype(float), rng.integers(0, 4000, (1000, 4000)))
    assert a["lo"] <= a["value"] <= a["hi"] and b["lo"] <= b["value"] <= b["hi"]
    assert b["hi"] - b["lo"] < (a["hi"] - a["lo"]) / 3


@pytest.mark.slow
def test_c_map_specificity_on_the_shipped_early_model(capsys):
    adapter = models.load_pretrained("early")
    r = control_table(adapter, data.load_split("test", 200), max_pairs=60, n_boot=1000)
    with capsys.disabled():
        print("\n" + format_controls({"shapes_vqa_early": r}))
    spec = r["specificity"]["top1"]
    assert r["n"] == 60 and spec["lo"] <= spec["value"] <= spec["hi"]
    assert r["methods"]["attention"] is not None and "pixel" not in r["methods"]["attention"]
    # Measured on this sample (seeded): the map moves when the question names another
    # object (+), but a first-order map with no word moves as much, and within one question
    # the phrase's map does no better than the map from "?" (issue 20).
    assert spec["lo"] > 0
    assert r["first_order_specificity"]["top1"]["lo"] > 0
    within = r["specificity_vs_non_referring"]["top1"]
    assert within["lo"] <= 0 <= within["hi"]
