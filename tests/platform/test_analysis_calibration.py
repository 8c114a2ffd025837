"""The accuracy test's false-positive rate at the paper's size (issue 16): 400 seeded null
studies of 5 conditions × 3 annotators × 20 items, every condition at 60 %, annotators and
items varying (SD 0.5 and 1.0 on the logit scale). At the 5 % level, the omnibus test and a
pairwise contrast must each reject in 2.5–7.5 % of them. Marked slow: about 10–30 s on one
core (each study is one GLM fit of 15 annotators)."""

import numpy as np
import pytest

from annotations.analysis import accuracy_model, simulate_accuracy_answers

STUDIES, CONDITIONS, ANNOTATORS, ITEMS = 400, 5, 3, 20


def _null_p_values(seed: int, annotator_sd: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    names = [f"c{k}" for k in range(CONDITIONS)]
    out = []
    for _ in range(STUDIES):
        correct, cond, ann = simulate_accuracy_answers([0.6] * CONDITIONS, ANNOTATORS, ITEMS,
                                                       annotator_sd=annotator_sd, item_sd=1.0, rng=rng)
        result = accuracy_model(correct, [names[c] for c in cond], ann, conditions=names)
        assert "undefined_because" not in result
        first = result["contrasts"][0]
        assert (first["condition"], first["versus"]) == ("c1", "c0")
        out.append((result["omnibus"]["p_value"], first["p_value"]))
    return np.array(out)


@pytest.mark.slow
@pytest.mark.parametrize("annotator_sd", [0.5, 1.0])
def test_accuracy_tests_reject_5_percent_of_400_null_studies_at_the_papers_size(annotator_sd):
    p = _null_p_values(seed=16, annotator_sd=annotator_sd)
    omnibus, contrast = (p < 0.05).mean(axis=0)
    assert 0.025 <= omnibus <= 0.075, omnibus
    assert 0.025 <= contrast <= 0.075, contrast
