"""Attention statistics per layer × head, on hand-built attention tensors."""

import numpy as np
import pytest
import torch

from viz_engine.adapters import AdapterError
from viz_engine.methods.attention_statistics import IMAGE, TEXT, attention_statistics, neighbour_mask

SEG = np.array([[0, IMAGE, IMAGE, TEXT, TEXT]])  # [CLS], 2 image tokens, 2 words


def layer(*heads):
    return np.stack(heads)[None]  # (1, heads, T, T)


UNIFORM = np.full((5, 5), 0.2)
SELF = np.eye(5)


def test_uniform_and_self_attention_give_their_closed_form_masses():
    stats = attention_statistics([layer(UNIFORM, SELF)], SEG)
    assert stats["text_to_image"].shape == (1, 2)
    np.testing.assert_allclose(stats["text_to_image"][0], [0.4, 0.0])
    np.testing.assert_allclose(stats["image_to_text"][0], [0.4, 0.0])
    np.testing.assert_allclose(stats["image_to_image"][0], [0.4, 1.0])
    np.testing.assert_allclose(stats["text_to_text"][0], [0.4, 1.0])
    np.testing.assert_allclose(stats["cross_modal"][0], [0.4, 0.0])
    np.testing.assert_allclose(stats["intra_modal"][0], [0.4, 1.0])


def test_words_looking_at_one_patch_count_as_text_to_image():
    a = np.zeros((5, 5))
    a[:, 0] = 1.0          # everyone looks at [CLS] …
    a[3] = [0, 0.75, 0, 0.25, 0]  # … but word 1 looks mostly at patch 1
    a[4] = [0, 0, 0.5, 0, 0.5]    # and word 2 half at patch 2
    stats = attention_statistics([layer(a)], SEG)
    assert stats["text_to_image"][0, 0] == pytest.approx((0.75 + 0.5) / 2)
    assert stats["text_to_text"][0, 0] == pytest.approx((0.25 + 0.5) / 2)
    assert stats["image_to_text"][0, 0] == 0.0


def test_padding_queries_do_not_count():
    a = np.zeros((5, 5))
    a[:, 1] = 1.0
    a[4] = [0, 0, 0, 1.0, 0]  # a padded word with junk attention
    valid = np.array([[True, True, True, True, False]])
    stats = attention_statistics([layer(a)], SEG, valid)
    assert stats["text_to_image"][0, 0] == 1.0  # only the real word counts


def test_image_to_image_without_self_and_neighbours_on_a_grid():
    seg = np.array([[0, IMAGE, IMAGE, IMAGE, IMAGE]])  # a 1 × 4 strip of patches
    a = np.zeros((5, 5))
    a[1] = [0, 0.5, 0.25, 0, 0.25]  # patch 0: self .5, neighbour .25, far patch 3 .25
    a[[0, 2, 3, 4]] = np.eye(5)[[0, 2, 3, 4]]
    stats = attention_statistics([layer(a)], seg, image_grid=(1, 4))
    assert stats["image_to_image"][0, 0] == pytest.approx(1.0)
    assert stats["image_to_image_other"][0, 0] == pytest.approx(0.25 / 4)


def test_neighbours_are_within_the_chebyshev_distance():
    pos = np.array([-1, 0, 1, 2, 3, 4, 5, 6, 7, 8])  # [CLS] + a 3 × 3 grid
    m = neighbour_mask(pos, (3, 3))
    assert m[5, 1:].sum() == 9  # the centre touches every cell
    assert m[1, 1:].sum() == 4  # a corner touches itself and 3 others
    assert not m[0].any()


def test_z_scores_are_over_all_layer_head_cells():
    stats = attention_statistics([layer(UNIFORM, SELF), layer(SELF, SELF)], SEG)
    x = stats["text_to_image"]
    np.testing.assert_allclose(stats["text_to_image_z"], (x - x.mean()) / x.std())


def test_the_built_in_transformer_has_statistics_for_every_layer_and_head():
    from viz_engine.data import shapes_vqa as data
    from viz_engine.models import shapes_vqa as models

    adapter = models.load_pretrained("early")
    batch = adapter.make_batch(data.load_split("test", 8))
    attn = adapter.attentions(batch)
    n_words = batch.inputs["question"].shape[1]
    seg = torch.tensor([0] + [IMAGE] * 9 + [TEXT] * n_words).expand(8, -1)
    valid = torch.cat([torch.ones(8, 10, dtype=torch.bool), batch.extras["question"]["mask"]], 1)
    stats = attention_statistics(attn, seg, valid, image_grid=(3, 3))
    assert stats["text_to_image"].shape == (3, 4)
    total = stats["text_to_image"] + stats["text_to_text"]
    assert np.all(total <= 1 + 1e-6) and np.all(total > 0)


@pytest.mark.parametrize("args, message", [
    (([], SEG), "at least one layer"),
    (([np.ones((1, 2, 4, 4))], SEG), "expected"),
    (([layer(UNIFORM * np.nan)], SEG), "NaN"),
])
def test_bad_attention_input_is_an_error_that_names_it(args, message):
    with pytest.raises(AdapterError, match=message):
        attention_statistics(*args)
