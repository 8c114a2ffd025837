"""Hugging Face adapters, exercised end to end on tiny random-weight configurations saved to
and loaded from a local directory (nothing is downloaded)."""

import numpy as np
import pytest
import torch

from viz_engine.adapters import AdapterError, Feature, LogitSum
from viz_engine.methods.attention_statistics import attention_statistics
from viz_engine.methods.gradient_x_input import gradient_x_input
from viz_engine.methods.lime import lime
from viz_engine.methods.second_order_gradient import second_order_gradient_per_atom


@pytest.fixture(scope="module")
def vilt(tmp_path_factory):
    from transformers import ViltConfig, ViltForQuestionAnswering

    from viz_engine.hf.vilt import ViltAdapter

    torch.manual_seed(0)
    cfg = ViltConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                     image_size=32, patch_size=8, num_labels=4, vocab_size=100, max_position_embeddings=40,
                     id2label={0: "red", 1: "blue", 2: "green", 3: "yellow"},
                     label2id={"red": 0, "blue": 1, "green": 2, "yellow": 3})
    directory = tmp_path_factory.mktemp("vilt")
    ViltForQuestionAnswering(cfg).save_pretrained(directory)
    return ViltAdapter.from_pretrained(str(directory))


@pytest.fixture
def batch(vilt):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (2, 6), generator=g)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    return vilt.make_batch(torch.rand(2, 3, 32, 32, generator=g), ids, mask)


def test_vilt_is_deterministic_with_its_patch_draw_pinned(vilt, batch):
    first, second = vilt.attentions(batch), vilt.attentions(batch)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert torch.equal(vilt.logits(batch), vilt.logits(batch))
    assert torch.multinomial.__name__ == "multinomial"  # the pinned draw is undone after each forward


def test_vilt_runs_every_stage(vilt, batch):
    assert vilt.class_names == ("red", "blue", "green", "yellow")
    u_words = gradient_x_input(vilt, batch, "red", "question")
    assert u_words.shape == (2, 6) and np.isnan(u_words[1, 4:]).all() and np.isfinite(u_words[1, :4]).all()
    assert lime(vilt, batch, 0, "image", n_samples=60).shape == (2, 16)
    sog = second_order_gradient_per_atom(vilt, batch, LogitSum(), "question", "image")
    assert sog.shape == (2, 6, 16) and np.abs(np.nan_to_num(sog)).sum() > 0
    r_local = gradient_x_input(vilt, batch, Feature(3), "image")
    assert r_local.shape == (2, 16)


def test_vilt_transformer_views_line_up_with_its_tokens(vilt, batch):
    seg, valid = vilt.token_segments(batch)
    attn = vilt.attentions(batch)
    assert attn[0].shape == (2, 2, 6 + 1 + 16, 6 + 1 + 16)
    stats = attention_statistics(attn, seg, valid, image_grid=(4, 4))
    assert stats["text_to_image"].shape == (2, 2)
    assert len(vilt.hidden_states(batch)) == 3


def test_vilt_loading_from_a_missing_directory_is_a_clear_error(tmp_path):
    from viz_engine.hf.vilt import ViltAdapter

    with pytest.raises(AdapterError, match="no ViLT model could be read"):
        ViltAdapter.from_pretrained(str(tmp_path / "nothing"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    from viz_engine.hf.clip import ClipAdapter

    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                         vocab_size=99, max_position_embeddings=16, eos_token_id=98),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    directory = tmp_path_factory.mktemp("clip")
    CLIPModel(cfg).save_pretrained(directory)
    return ClipAdapter.from_pretrained(str(directory))


def clip_batch(clip):
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 90, (2, 5), generator=g)
    ids[:, -1] = 98  # end of text
    return clip.make_batch(torch.rand(2, 3, 32, 32, generator=g), ids)


def test_clip_scores_pairs_like_the_model_itself(clip):
    batch = clip_batch(clip)
    with torch.no_grad():
        ours = clip.logits(batch)[:, 0]
        out = clip.module(input_ids=batch.extras["text"]["ids"], pixel_values=batch.inputs["image"])
    np.testing.assert_allclose(ours.numpy(), torch.diagonal(out.logits_per_image).numpy(), rtol=1e-5)


def test_clip_words_get_gradients_and_second_order_gradients(clip):
    batch = clip_batch(clip)
    u = gradient_x_input(clip, batch, 0, "text")
    assert u.shape == (2, 5) and np.abs(u).sum() > 0
    sog = second_order_gradient_per_atom(clip, batch, 0, "text", "image")
    assert sog.shape == (2, 5, 16) and np.abs(sog).sum() > 0
    assert gradient_x_input(clip, batch, Feature(2), "image").shape == (2, 16)
    with pytest.raises(AdapterError, match="no classifier layer"):
        clip.final_linear


@pytest.fixture(scope="module")
def lxmert(tmp_path_factory):
    from transformers import LxmertConfig, LxmertForQuestionAnswering

    from viz_engine.hf.regions import LxmertAdapter

    torch.manual_seed(0)
    cfg = LxmertConfig(vocab_size=100, hidden_size=32, num_attention_heads=2, intermediate_size=37, l_layers=1,
                       x_layers=1, r_layers=1, visual_feat_dim=12, visual_pos_dim=4, num_qa_labels=3,
                       max_position_embeddings=40)
    directory = tmp_path_factory.mktemp("lxmert")
    LxmertForQuestionAnswering(cfg).save_pretrained(directory)
    return LxmertAdapter.from_pretrained(str(directory))


@pytest.fixture(scope="module")
def visualbert(tmp_path_factory):
    from transformers import VisualBertConfig, VisualBertForQuestionAnswering

    from viz_engine.hf.regions import VisualBertAdapter

    torch.manual_seed(0)
    cfg = VisualBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, visual_embedding_dim=12, num_labels=3, max_position_embeddings=40)
    directory = tmp_path_factory.mktemp("visualbert")
    VisualBertForQuestionAnswering(cfg).save_pretrained(directory)
    return VisualBertAdapter.from_pretrained(str(directory))


def region_inputs():
    g = torch.Generator().manual_seed(3)
    return torch.rand(2, 5, 12, generator=g), torch.randint(5, 100, (2, 6), generator=g), \
        torch.rand(2, 5, 4, generator=g).sort(-1).values


def test_lxmert_needs_boxes_and_they_travel_with_their_regions(lxmert):
    from viz_engine.adapters import Batch
    from viz_engine.methods.emap import pairwise_logits

    feats, ids, boxes = region_inputs()
    with pytest.raises(AdapterError, match="boxes are required"):
        lxmert.make_batch(feats, ids)
    batch = lxmert.make_batch(feats, ids, boxes=boxes)
    m = pairwise_logits(lxmert, batch, ("regions", "question"))
    swapped = Batch.combine({"regions": batch.select([1]), "question": batch.select([0])})
    with torch.no_grad():
        np.testing.assert_allclose(m[1, 0], lxmert.logits(swapped)[0].numpy(), rtol=1e-5, atol=1e-6)
    u = gradient_x_input(lxmert, batch, 0, "regions")
    assert u.shape == (2, 5)
    sog = second_order_gradient_per_atom(lxmert, batch, LogitSum(), "question", "regions")
    assert sog.shape == (2, 6, 5) and np.abs(sog).sum() > 0
    assert lxmert.cross_attentions(batch)[0].shape == (2, 2, 6, 5)


def test_visualbert_runs_every_stage_and_its_single_stream_views(visualbert):
    feats, ids, _ = region_inputs()
    batch = visualbert.make_batch(feats, ids)
    assert lime(visualbert, batch, 1, "regions", n_samples=40).shape == (2, 5)
    assert np.abs(second_order_gradient_per_atom(visualbert, batch, 0, "question", "regions")).sum() > 0
    seg, valid = visualbert.token_segments(batch)
    stats = attention_statistics(visualbert.attentions(batch), seg, valid)
    assert stats["text_to_image"].shape == (2, 2)
    assert gradient_x_input(visualbert, batch, Feature(4), "question").shape == (2, 6)
