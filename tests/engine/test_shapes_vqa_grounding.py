"""Shapes-VQA version 2 (questions that need each phrase grounded) and the model trained on it."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from viz_engine.bundles.sources import MODELS, load_dataset
from viz_engine.data import shapes_vqa as data
from viz_engine.faithfulness import alignment_pairs
from viz_engine.faithfulness_controls import control_pairs, control_table, format_controls
from viz_engine.models import shapes_vqa as models


@pytest.fixture(scope="module")
def v2():
    return data.generate(270, seed=7, version=2)


def _digest(examples) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(e.image.tobytes())
        h.update(" ".join(e.tokens).encode())
        h.update(e.answer.encode())
        h.update(repr(e.references).encode())
    return h.hexdigest()


def test_version_1_is_the_default_and_its_examples_are_unchanged():
    # digest of the first 60 test examples as generated before version 2 existed
    assert _digest(data.generate(60, 3003)) == "515154c2db6caa0d4b3d1f0bc508ab8ff6c62ea259bc2acb81aa3f7fcf1946cd"
    assert _digest(data.load_split("test", 60)) == _digest(data.load_split("test", 60, version=1))


def test_version_2_is_deterministic_prefix_stable_and_distinct_from_version_1():
    a, b = data.generate(20, seed=3, version=2), data.generate(20, seed=3, version=2)
    assert _digest(a) == _digest(b) == _digest(data.generate(30, seed=3, version=2)[:20])
    assert _digest(a) != _digest(data.generate(20, seed=3))
    with pytest.raises(ValueError, match="version"):
        data.generate(3, seed=3, version=3)
    with pytest.raises(ValueError, match="version"):
        data.load_split("test", 3, version=0)


def test_version_2_answers_are_correct_and_use_the_version_1_words_and_answers(v2):
    for e in v2:
        assert data.compute_answer(e.question_type, e.tokens, e.objects) == e.answer
        assert all(t in data.VOCAB for t in e.tokens) and e.answer in data.CLASS_NAMES
        assert len(e.tokens) <= models.MAX_TOKENS


def test_version_2_cycles_its_types_with_a_third_position_questions_balanced_yes_no(v2):
    assert [e.question_type for e in v2[:9]] == list(data.QUESTION_TYPES_V2)
    types = Counter(e.question_type for e in v2)
    assert types["position"] == len(v2) // 3
    answers = Counter(e.answer for e in v2 if e.question_type == "position")
    assert abs(answers["yes"] - answers["no"]) <= 0.2 * types["position"]


def test_position_questions_name_two_objects_in_different_columns_each_by_its_own_phrase(v2):
    for e in (e for e in v2 if e.question_type == "position"):
        (span_a, a), (span_b, b) = e.references
        assert a != b and e.objects[a].cell[1] != e.objects[b].cell[1]
        assert set(span_a).isdisjoint(span_b)
        assert e.tokens[span_a[-1] + 1] in ("left", "right")


def test_version_2_scenes_make_objects_compete_for_a_phrase(v2):
    for e in v2:
        assert 3 <= len(e.objects) <= data.MAX_OBJECTS
        assert len({o.colour for o in e.objects}) <= 2 and len({o.shape for o in e.objects}) <= 2
    # a single word rarely singles an object out, so most phrases combine two or three
    lengths = Counter(len(p.tokens) for p in alignment_pairs(v2))
    assert (lengths[2] + lengths[3]) > 0.9 * sum(lengths.values())


def test_most_version_2_control_pairs_are_two_phrases_of_one_question(v2):
    sources = Counter(c.source for c in control_pairs(v2))
    assert sources["in_question"] > sources["substituted"]


def test_grounded_dataset_and_model_are_built_in_names():
    source = load_dataset("shapes_vqa_grounded")
    assert _digest(source.examples("test", 5)) == _digest(data.load_split("test", 5, version=2))
    assert MODELS["shapes_vqa_grounded"][0] == "shapes_vqa_grounded"
    assert MODELS["shapes_vqa_early"][0] == "shapes_vqa"


def test_grounded_weights_are_small_and_record_their_question_set():
    assert models.weights_path("grounded").stat().st_size < 2_000_000
    metrics = json.loads(models.metrics_path("grounded").read_text())
    assert metrics["data_version"] == 2 and metrics["model"] == "grounded"
    assert metrics["command"].startswith("python -m viz_engine.training.shapes_vqa grounded")
    for key in ("test_accuracy", "n_params", "train_time_seconds", "seed", "test_accuracy_by_question_type"):
        assert key in metrics


@pytest.mark.slow
def test_grounded_model_reaches_its_recorded_accuracy():
    from viz_engine.training.shapes_vqa import evaluate

    metrics = json.loads(models.metrics_path("grounded").read_text())
    acc = evaluate(models.load_pretrained("grounded"), data.load_split("test", 300, version=2))
    assert acc == pytest.approx(metrics["test_accuracy_first_300"], abs=2 / 300)


@pytest.mark.slow
def test_grounded_model_c_map_moves_with_the_word_but_not_past_the_map_with_no_word(capsys):
    adapter = models.load_pretrained("grounded")
    r = control_table(adapter, data.load_split("test", 160, version=2), max_pairs=120, n_boot=1000,
                      methods=("phrase", "other_phrase", "first_order"))
    with capsys.disabled():
        print("\n" + format_controls({"shapes_vqa_grounded": r}))
    assert r["n"] >= 115  # a pair without another describable object has no control
    # Signs measured on this seeded sample (+17.2 [6.9, 27.6] and +2.6 [−6.9, 12.1]), as on
    # the full table (benchmarks/results/faithfulness_grounded.json, 1,221 pairs: specificity
    # +12.2 [9.3, 15.2], phrase − first-order +0.2 [−2.8, 3.0]): the map moves when another
    # object's phrase is queried, but it does not beat the first-order gradient — issue 20's
    # target is not met by this model (it answers position questions at chance).
    assert r["specificity"]["top1"]["lo"] > 0
    assert r["phrase_vs_first_order"]["top1"]["lo"] < 0 < r["phrase_vs_first_order"]["top1"]["hi"]
