"""Attention heatmaps and per-layer hidden-state maps (VL-InterpreT's views, our way)."""

import numpy as np
import pytest

from viz_engine.adapters import AdapterError
from viz_engine.methods.attention_heatmap import attention_heatmap
from viz_engine.methods.hidden_state_projection import fit_layer_projections, nearest_other_modality


def test_a_words_heatmap_is_renormalised_over_the_other_modality_with_its_share_kept():
    a = np.zeros((1, 2, 4, 4))
    a[0, 0, 3] = [0.5, 0.3, 0.1, 0.1]   # head 0: word 3 gives .4 to patches 1, 2
    a[0, 1, 3] = [0.0, 0.0, 0.0, 1.0]   # head 1: only itself
    out = attention_heatmap([a], query=3, keys=[1, 2])
    np.testing.assert_allclose(out["per_head"][0, 0], [0.75, 0.25])
    np.testing.assert_allclose(out["per_head"][0, 1], [0.0, 0.0])
    np.testing.assert_allclose(out["share"][0], [0.4, 0.0])
    np.testing.assert_allclose(out["mean"][0], [0.375, 0.125])
    with pytest.raises(AdapterError, match="must not be one of the keys"):
        attention_heatmap([a], query=1, keys=[1, 2])
    with pytest.raises(AdapterError, match="outside"):
        attention_heatmap([a], query=9, keys=[1])


def test_one_projection_per_layer_maps_every_example_on_the_same_axes():
    rng = np.random.default_rng(0)
    direction = np.zeros(8)
    direction[2] = 1.0
    sample = rng.normal(size=(50, 6, 8)) * 0.1 + rng.normal(size=(50, 6, 1)) * direction * 5
    proj = fit_layer_projections([sample, sample * 2])
    assert proj.n_layers == 2 and proj.explained[0][0] > 0.9
    np.testing.assert_allclose(np.abs(proj.components[0][0]), direction, atol=0.05)
    mapped = proj.transform(0, sample[0])
    assert mapped.shape == (6, 2)
    # the same point maps to the same place whichever example it comes with
    np.testing.assert_allclose(proj.transform(0, sample[0][:1]), mapped[:1])
    with pytest.raises(AdapterError, match="states must be"):
        proj.transform(0, np.ones((3, 5)))


def test_padding_is_left_out_of_the_fit():
    x = np.zeros((2, 3, 4))
    x[:, :2] = np.random.default_rng(1).normal(size=(2, 2, 4))
    x[:, 2] = 1000.0  # padded junk
    valid = np.array([[True, True, False], [True, True, False]])
    proj = fit_layer_projections([x], valid, n_components=2)
    assert np.abs(proj.means[0]).max() < 10


def test_nearest_tokens_of_the_other_modality_by_cosine():
    states = np.array([[1.0, 0], [1, 0.1], [0, 1], [1, 0.05], [0.1, 1]])
    segments = np.array([0, 1, 1, 2, 2])  # [CLS], 2 patches, 2 words
    near = nearest_other_modality(states, segments, k=1)
    assert near[:, 0].tolist() == [-1, 3, 4, 1, 2]


def test_the_built_in_transformer_exposes_states_segments_and_attention():
    from viz_engine.data import shapes_vqa as data
    from viz_engine.models import shapes_vqa as models

    adapter = models.load_pretrained("early")
    batch = adapter.make_batch(data.load_split("test", 6))
    states = adapter.hidden_states(batch)
    seg, valid = adapter.token_segments(batch)
    assert len(states) == 4 and states[0].shape == (6, seg.shape[1], 64)
    proj = fit_layer_projections(states, valid)
    assert proj.transform(3, states[3][0]).shape == (seg.shape[1], 2)
    attn = adapter.attentions(batch)
    word = 10  # the first word, after [CLS] and 9 patches
    heat = attention_heatmap(attn, query=word, keys=list(range(1, 10)))
    np.testing.assert_allclose(heat["per_head"].sum(-1), 1.0, atol=1e-6)
    with pytest.raises(AdapterError, match="no joint token states"):
        models.load_pretrained("late").hidden_states(batch)


@pytest.mark.slow
def test_the_projection_benchmark_measures_both_ways_on_the_same_items():
    from benchmarks.transformer_views import run

    report = run(n_items=20, tsne_items=2, sample=10)
    assert report["maps"] == 80 and report["ours_seconds"] > 0
    assert report["per_example_pca_seconds"] > 0 and report["tsne_seconds_per_item"] > 0
