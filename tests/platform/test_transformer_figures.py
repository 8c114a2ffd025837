"""The hidden-state map's word labels stay readable where the words clump together."""

import re

from studies.transformer_figures import place_labels, state_map

CHAR_W, LINE_H = 5.6, 11.0


def _boxes(spots, texts):
    return [(x, y - LINE_H + 2, x + CHAR_W * len(t) + 2, y + 2) for (x, y), t in zip(spots, texts)]


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_of_words_on_one_spot_do_not_overlap_and_stay_inside():
    texts = ["what", "colour", "is", "the", "large", "circle", "?", "left"]
    spots = place_labels([(180.0, 130.0)] * len(texts), texts, 360, 260)
    boxes = _boxes(spots, texts)
    assert not [(i, j) for i in range(len(boxes)) for j in range(i) if _overlap(boxes[i], boxes[j])]
    assert all(b[0] >= 1 and b[1] >= 1 and b[2] <= 359 and b[3] <= 259 for b in boxes)


def test_a_label_with_room_stays_beside_its_point():
    (x, y), = place_labels([(100.0, 100.0)], ["circle"], 360, 260)
    assert abs(x - 100) <= 8 and abs(y - 100) <= 16


def test_the_map_names_each_word_once_and_draws_every_token():
    points = [[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [1.0, 1.0], [0.02, 0.02]]
    svg = state_map(points, ["p0", "what", "colour", "p1", "is"], [1, 2, 2, 1, 2])
    assert svg.count("<circle") == 5
    assert sorted(re.findall(r'font-size="10">([^<]+)</text>', svg)) == ["colour", "is", "what"]
