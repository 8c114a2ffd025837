"""The bundle page and the study builder say how far a bundle's C maps move with the word."""

import pytest
from django.contrib.auth.models import User

from studies.models import Bundle

pytestmark = pytest.mark.django_db

CHECK = {"n_pairs": 60, "seed": 0, "game": "object top-1",
         "over_other_object": {"value": 0.367, "lo": 0.25, "hi": 0.5},
         "over_non_referring": {"value": 0.0, "lo": -0.083, "hi": 0.083},
         "phrase": {"value": 0.483, "lo": 0.367, "hi": 0.617}, "chance": 0.274}


def _bundle(name, stages, manifest):
    """A bundle row, owned by the test's researcher when there is one (bundles are seen by their owners)."""
    return Bundle.objects.create(name=name, owner=User.objects.first(), path=f"/nowhere/{name}",
                                 manifest_sha256=name.ljust(64, "0"),
                                 dataset="shapes_vqa", model="shapes_vqa_early", task="simulation",
                                 stages=stages, class_names=["a", "b"], manifest=manifest)


@pytest.fixture
def researcher(client):
    client.force_login(User.objects.create_user("r", password="a-long-passphrase"))


def test_the_note_gives_both_specificity_figures_with_their_intervals():
    note = _bundle("m", ["U", "C"], {"c_specificity": CHECK}).c_specificity_note
    assert note.startswith("C maps move with the word: +37 points [+25, +50] over another object's phrase")
    assert '+0 points [-8, +8] over "?"' in note and "60 pairs" in note
    assert "not measured" in _bundle("n", ["C"], {}).c_specificity_note
    assert _bundle("u", ["U"], {}).c_specificity_note == ""


def test_bundle_page_and_builder_show_each_bundles_measured_specificity(client, researcher):
    _bundle("measured", ["U", "C"], {"c_specificity": CHECK})
    _bundle("plain", ["U"], {})
    bundles = client.get("/bundles/").content.decode()
    assert bundles.count("C maps move with the word: +37 points [+25, +50]") == 1
    builder = client.get("/studies/new/").content.decode()
    assert 'data-c-note="C maps move with the word: +37 points [+25, +50]' in builder
    assert 'data-c-note=""' in builder  # the bundle without C says nothing
