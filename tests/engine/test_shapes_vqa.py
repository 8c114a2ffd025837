"""Shapes-VQA: the generated dataset, the two reference models, their adapters and weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from viz_engine.adapters import AdapterError, Batch
from viz_engine.data import shapes_vqa as data
from viz_engine.models import shapes_vqa as models
from viz_engine.training.shapes_vqa import evaluate


@pytest.fixture(scope="module")
def examples():
    return data.generate(120, seed=7)


@pytest.fixture(scope="module")
def early():
    return models.load_pretrained("early")


@pytest.fixture(scope="module")
def late():
    return models.load_pretrained("late")


# -- dataset ---------------------------------------------------------------------------------


def _same(a: data.Example, b: data.Example) -> bool:
    return (
        np.array_equal(a.image, b.image) and a.tokens == b.tokens and a.answer == b.answer
        and a.objects == b.objects and a.references == b.references
    )


def test_generation_is_deterministic_per_seed_and_prefix_stable():
    a, b = data.generate(30, seed=3), data.generate(30, seed=3)
    assert all(_same(x, y) for x, y in zip(a, b))
    assert all(_same(x, y) for x, y in zip(data.generate(10, seed=3), a[:10]))
    assert not all(_same(x, y) for x, y in zip(a, data.generate(30, seed=4)))


def test_splits_are_fixed_and_distinct():
    test_a, test_b = data.load_split("test", 12), data.load_split("test", 12)
    assert all(_same(x, y) for x, y in zip(test_a, test_b))
    assert not all(_same(x, y) for x, y in zip(test_a, data.load_split("train", 12)))
    with pytest.raises(ValueError, match="split"):
        data.load_split("dev")


def test_example_fields_have_documented_types(examples):
    for e in examples:
        assert e.image.shape == (48, 48, 3) and e.image.dtype == np.uint8
        assert e.question_type in data.QUESTION_TYPES
        assert e.answer in data.CLASS_NAMES
        assert e.tokens[-1] == "?" and all(t in data.VOCAB for t in e.tokens)
        assert e.question == " ".join(e.tokens[:-1]) + "?"
        assert 2 <= len(e.objects) <= data.MAX_OBJECTS


def test_answers_are_correct_by_construction(examples):
    for e in examples:
        assert data.compute_answer(e.question_type, e.tokens, e.objects) == e.answer, e.question


def test_question_types_are_balanced_and_answers_not_degenerate():
    exs = data.generate(600, seed=11)
    types = [e.question_type for e in exs]
    assert all(types.count(t) == 100 for t in data.QUESTION_TYPES)
    answers = [e.answer for e in exs]
    top_share = max(answers.count(a) for a in set(answers)) / len(answers)
    assert top_share < 0.15
    exists = [e.answer for e in exs if e.question_type == "exists"]
    assert 35 <= exists.count("yes") <= 65


def test_boxes_contain_exactly_the_object_pixels(examples):
    background = np.array(data.BACKGROUND_RGB)
    for e in examples[:30]:
        painted = np.any(e.image != background, axis=-1)
        union = np.zeros_like(painted)
        for o in e.objects:
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
            region = e.image[y0:y1, x0:x1]
            assert np.all(region[painted[y0:y1, x0:x1]] == data.COLOUR_RGB[o.colour])
            # the box is tight: every border row/column holds a painted pixel
            sub = painted[y0:y1, x0:x1]
            assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()
            row, col = o.cell
            assert col * data.CELL <= x0 and x1 <= (col + 1) * data.CELL
            assert row * data.CELL <= y0 and y1 <= (row + 1) * data.CELL
            union |= data.box_mask(o.box)
        assert not (painted & ~union).any()


def _desc_of(words):
    desc = {}
    for w in words:
        if w in data.SIZES:
            desc["size"] = w
        elif w in data.COLOURS:
            desc["colour"] = w
        elif w in data.SHAPES or w.rstrip("s") in data.SHAPES:
            desc["shape"] = w.rstrip("s")
    return desc


def test_references_point_at_the_objects_their_words_describe(examples):
    for e in examples:
        for span, obj in e.references:
            assert list(span) == sorted(span) and all(0 <= p < len(e.tokens) - 1 for p in span)
            words = [e.tokens[p] for p in span]
            o = e.objects[obj]
            if words[:3] in (["thing", "left", "of"], ["thing", "right", "of"]):
                continue  # the relate target: checked below
            for k, v in _desc_of(words).items():
                assert o.attr(k) == v, (e.question, words, o)
            assert words[-1] in ("thing", "things", *data.SHAPES, *(s + "s" for s in data.SHAPES))


def test_unique_referents_for_attribute_and_relate_questions(examples):
    for e in examples:
        if e.question_type in ("colour", "shape", "size"):
            (span, obj), = e.references
            desc = _desc_of(e.tokens[p] for p in span)
            assert e.question_type not in desc
            assert [i for i, o in enumerate(e.objects) if all(o.attr(k) == v for k, v in desc.items())] == [obj]
            assert e.answer == e.objects[obj].attr(e.question_type)
        elif e.question_type == "relate":
            (t_span, target), (a_span, anchor) = e.references
            assert t_span == (4, 5, 6)
            t, a = e.objects[target], e.objects[anchor]
            assert t.cell[0] == a.cell[0]
            assert (t.cell[1] < a.cell[1]) == (e.tokens[5] == "left")
            between = [o for o in e.objects if o.cell[0] == a.cell[0]
                       and min(t.cell[1], a.cell[1]) < o.cell[1] < max(t.cell[1], a.cell[1])]
            assert not between
        elif e.question_type in ("count", "exists"):
            desc = _desc_of(e.tokens[p] for p in e.references[0][0]) if e.references else None
            matching = {i for i, o in enumerate(e.objects)
                        if desc is not None and all(o.attr(k) == v for k, v in desc.items())}
            assert {obj for _, obj in e.references} == matching


def test_reference_mask_covers_the_referred_boxes():
    e = next(x for x in data.generate(30, seed=1) if x.question_type == "relate")
    (t_span, target), (a_span, anchor) = e.references
    assert np.array_equal(data.reference_mask(e, a_span[0]), data.box_mask(e.objects[anchor].box))
    assert not data.reference_mask(e, 0).any()
    assert data.referenced_phrase(e, target) == [e.tokens[p] for p in t_span]
    with pytest.raises(ValueError, match="token_position"):
        data.reference_mask(e, 99)


# -- adapters ----------------------------------------------------------------------------------


def test_make_batch_shapes_padding_atoms_and_baselines(examples):
    adapter = models.build_adapter("early")
    exs = examples[:6]
    batch = adapter.make_batch(exs)
    longest = max(len(e.tokens) for e in exs)
    assert batch.inputs["image"].shape == (6, 3, 48, 48)
    assert batch.inputs["question"].shape == (6, longest, 64)
    mask = batch.extras["question"]["mask"]
    assert mask.dtype == torch.bool and mask.sum(1).tolist() == [len(e.tokens) for e in exs]
    qa = batch.atoms["question"]
    for i, e in enumerate(exs):
        n = len(e.tokens)
        assert qa[i, :n, 0].tolist() == list(range(n))
        assert (qa[i, n:] == -1).all()
        assert batch.atom_labels["question"][i] == e.tokens
    assert batch.n_atoms("image").tolist() == [48 * 48] * 6
    assert batch.n_atoms("question").tolist() == [len(e.tokens) for e in exs]
    pad = adapter.module.word_embedding.weight[data.VOCAB.index(data.PAD)]
    assert torch.allclose(batch.baselines["question"][2, 0], pad)
    bg = torch.tensor(data.BACKGROUND_RGB) / 255.0
    assert torch.allclose(batch.baselines["image"][0, :, 5, 5], bg)
    assert not batch.inputs["question"].requires_grad
    with pytest.raises(AdapterError, match="examples"):
        adapter.make_batch([])


def test_padding_does_not_change_the_logits(early, examples):
    short = min(examples, key=lambda e: len(e.tokens))
    long = max(examples, key=lambda e: len(e.tokens))
    with torch.no_grad():
        alone = early.logits(early.make_batch([short]))
        padded = early.logits(early.make_batch([short, long]))[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_logits_need_the_padding_mask(early, examples):
    batch = early.make_batch(examples[:2])
    broken = Batch(inputs=batch.inputs, atoms=batch.atoms)
    with pytest.raises(AdapterError, match="mask"):
        early.logits(broken)


@pytest.mark.parametrize("kind", ["early", "late"])
def test_logits_equal_fuse_of_per_modality_encodings(kind, early, late, examples):
    adapter = {"early": early, "late": late}[kind]
    batch = adapter.make_batch(examples[:8])  # questions of different lengths: padding travels
    assert adapter.supports_late_fusion
    with torch.no_grad():
        enc = {m: adapter.encode(m, batch) for m in adapter.modality_names}
        assert torch.allclose(adapter.fuse(enc), adapter.logits(batch), atol=1e-5)
        # pairing image i with question j through encodings is the model on that pair
        swapped = {"image": enc["image"].flip(0), "question": enc["question"]}
        paired = Batch.combine({"image": batch.select(list(range(7, -1, -1))), "question": batch})
        assert torch.allclose(adapter.fuse(swapped), adapter.logits(paired), atol=1e-5)
    with pytest.raises(AdapterError, match="modality"):
        adapter.encode("audio", batch)
    with pytest.raises(AdapterError, match="encodings lack"):
        adapter.fuse({"image": enc["image"]})


def test_final_linear_and_layers_give_representations(early, late, examples):
    batch = early.make_batch(examples[:3])
    for adapter in (early, late):
        b = adapter.make_batch(examples[:3])
        assert adapter.final_linear.out_features == len(data.CLASS_NAMES)
        for layer in adapter.layer_names():
            assert adapter.representation(b, layer).shape[0] == 3
        assert adapter.representation(b).shape == (3, adapter.final_linear.in_features)
    attns = early.attentions(batch)
    t = 1 + 9 + batch.inputs["question"].shape[1]
    assert len(attns) == 3 and attns[0].shape == (3, 4, t, t)
    assert torch.allclose(attns[0].sum(-1), torch.ones(3, 4, t))


@pytest.mark.parametrize("kind", ["early", "late"])
def test_logits_are_twice_differentiable_word_through_image(kind, examples):
    """∂/∂image of Σ_d ∂f/∂word[d] (the paper's summed SOG) is non-zero, and so is the
    reverse direction: the question embedding is not a LayerNorm-invariant input."""
    adapter = models.load_pretrained(kind)
    batch = adapter.make_batch(examples[:2])
    image = batch.inputs["image"].clone().requires_grad_(True)
    words = batch.inputs["question"].clone().requires_grad_(True)
    with adapter.frozen():
        logits = adapter.logits(batch.with_inputs(image=image, question=words))
        out = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
        (g_words,) = torch.autograd.grad(out, words, create_graph=True)
        (sog,) = torch.autograd.grad(g_words[:, 4].sum(), image)
        logits = adapter.logits(batch.with_inputs(image=image, question=words))
        (g_image,) = torch.autograd.grad(logits.sum(), image, create_graph=True)
        (sog_back,) = torch.autograd.grad(g_image.sum(), words)
    assert torch.isfinite(sog).all() and sog.abs().sum() > 1e-2
    assert sog_back.abs().sum() > 1e-2


def test_load_pretrained_rejects_unknown_kind():
    with pytest.raises(AdapterError, match="kind"):
        models.load_pretrained("middle")


# -- shipped weights ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["early", "late"])
def test_shipped_weights_are_small_and_have_metrics(kind):
    assert models.weights_path(kind).stat().st_size < 2_000_000
    metrics = json.loads(models.metrics_path(kind).read_text())
    for key in ("test_accuracy", "n_params", "train_time_seconds", "seed", "command"):
        assert key in metrics
    assert metrics["train_time_seconds"] <= 600


@pytest.mark.slow
def test_shipped_models_reach_their_recorded_accuracy(early, late):
    test = data.load_split("test", 300)
    for kind, adapter in (("early", early), ("late", late)):
        metrics = json.loads(models.metrics_path(kind).read_text())
        acc = evaluate(adapter, test)
        assert acc == pytest.approx(metrics["test_accuracy_first_300"], abs=2 / 300), kind
    early_metrics = json.loads(models.metrics_path("early").read_text())
    late_metrics = json.loads(models.metrics_path("late").read_text())
    assert early_metrics["test_accuracy"] >= 0.90
    assert late_metrics["test_accuracy"] < early_metrics["test_accuracy"] - 0.05


def test_perturbing_one_row_equals_masking_its_repeats(early, examples):
    from viz_engine.adapters import mask_atoms, perturb_one_row

    row = early.make_batch(examples[:3]).select([1])
    keep = torch.rand(5, row.max_atoms("question")) > 0.5
    keep[0] = True
    reference = mask_atoms(row.repeat(5), "question", keep)
    perturbed = perturb_one_row(row, "question", keep)
    for name in ("image", "question"):
        assert torch.equal(perturbed.inputs[name], reference.inputs[name])
    assert torch.equal(perturbed.extras["question"]["mask"], reference.extras["question"]["mask"])
    with torch.no_grad():
        assert torch.allclose(early.logits(perturbed), early.logits(reference), atol=1e-6)
    assert perturbed.atoms == {}  # forward-only: no atom maps copied
    with pytest.raises(AdapterError, match="one row"):
        perturb_one_row(early.make_batch(examples[:2]), "question", keep)
    with pytest.raises(AdapterError, match="one row"):
        early.make_batch(examples[:2]).expand(3)


def test_model_inputs_view_scores_like_the_full_batch(late, examples):
    batch = late.make_batch(examples[:6])
    lean = batch.model_inputs()
    assert lean.atoms == {} and lean.baselines == {}
    with torch.no_grad():
        assert torch.equal(late.logits(lean.select([4, 0])), late.logits(batch.select([4, 0])))


def test_scoring_without_gradients_gives_the_logits_of_the_differentiable_path(early, examples):
    batch = early.make_batch(examples[:16])  # padded questions: the key mask matters
    with torch.no_grad():
        fast = early.logits(batch)
    slow = early.logits(batch).detach()
    assert torch.allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("modality", ["image", "question"])
def test_lime_through_encodings_equals_lime_through_the_whole_model(early, examples, modality):
    from dataclasses import replace

    from viz_engine.adapters import atoms_per_patch
    from viz_engine.methods.lime import lime

    whole = models.ShapesVQAAdapter(early.module)  # same weights, no encode/fuse
    assert not whole.supports_late_fusion
    batch = early.make_batch(examples[:2])
    batch = replace(batch, atoms={**batch.atoms, "image": atoms_per_patch(batch.inputs["image"], 8)})
    for target in (3, [0, 5]):
        ours = lime(early, batch, target, modality, n_samples=120)
        reference = lime(whole, batch, target, modality, n_samples=120)
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_training_one_epoch_on_a_few_examples_gives_a_model_and_its_metrics():
    from viz_engine.training.shapes_vqa import train

    adapter, metrics = train("late", n_train=64, epochs=1, threads=1, log=lambda _msg: None)
    assert isinstance(adapter, models.LateFusionShapesVQAAdapter) and not adapter.module.training
    assert metrics["n_train"] == 64 and metrics["settings"]["epochs"] == 1 and len(metrics["history"]) == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert set(metrics["test_accuracy_by_question_type"]) == set(data.QUESTION_TYPES)
