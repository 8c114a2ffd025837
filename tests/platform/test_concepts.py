"""The concept clustering workspace: suggestions from sentence embeddings, then the
researcher merges, splits and renames, with alpha recomputed."""

import pytest

from annotations.clustering import suggest_clusters
from annotations.models import Response
from studies.services import enrol
from tests.platform.study_helpers import answer_all, make_study

pytestmark = pytest.mark.django_db

TEXTS = {"a": ["colour red", "triangles"], "b": ["redness", "three corners"], "c": ["red things", "triangle shapes"]}


def concept_study():
    study = make_study(task="concept", n_items=2, practice=0)
    for name, answers in TEXTS.items():
        answer_all(enrol(study, pseudonym=name),
                   lambda item, answers=answers: {"free_text": answers[item.bundle_item.position], "confidence": 4})
    return study


@pytest.mark.slow
def test_suggested_clusters_group_paraphrases_and_keep_unrelated_texts_apart():
    names = suggest_clusters(["colour red", "redness", "red things", "triangles", "triangle shapes", "how many"])
    assert names[0] == names[1] == names[2]
    assert names[3] == names[4] != names[0]
    assert names[5] not in (names[0], names[3])


@pytest.mark.slow
def test_the_workspace_suggests_then_merges_splits_and_renames(client):
    study = concept_study()
    client.force_login(study.owner)
    url = f"/studies/{study.pk}/concepts/"
    assert "Not clustered yet" in client.get(url).content.decode()
    client.post(url, {"action": "suggest", "keep": "yes"})
    clusters = set(Response.objects.values_list("concept_cluster", flat=True))
    assert "" not in clusters and len(clusters) >= 2
    # whatever the suggestion, the researcher can make it exactly what they mean
    red = list(Response.objects.filter(free_text__in=["colour red", "redness", "red things"]).values_list("pk", flat=True))
    client.post(url, {"action": "move", "response": red, "to": "red"})
    tri = list(Response.objects.exclude(pk__in=red).values_list("pk", flat=True))
    client.post(url, {"action": "move", "response": tri, "to": "triangle"})
    page = client.get(url).content.decode()
    assert "<td>1.00" in page  # alpha: every feature in one cluster
    client.post(url, {"action": "move", "response": [tri[0]], "to": "corners"})  # split one off
    assert Response.objects.get(pk=tri[0]).concept_cluster == "corners"
    client.post(url, {"action": "rename", "old": "corners", "new": "triangle"})  # merge back
    assert set(Response.objects.values_list("concept_cluster", flat=True)) == {"red", "triangle"}
    client.post(url, {"action": "rename", "old": "red", "new": "the colour red"})
    assert Response.objects.filter(concept_cluster="the colour red").count() == 3


def test_workspace_errors_are_shown_and_change_nothing(client):
    study = concept_study()
    client.force_login(study.owner)
    url = f"/studies/{study.pk}/concepts/"
    response = client.post(url, {"action": "move", "to": "x"})
    assert response.status_code == 400 and "Select the answers to move" in response.content.decode()
    response = client.post(url, {"action": "rename", "old": "nothing", "new": "y"})
    assert response.status_code == 400 and "no cluster named" in response.content.decode()
    assert set(Response.objects.values_list("concept_cluster", flat=True)) == {""}


def test_only_concept_studies_have_a_workspace_to_change(client):
    study = make_study()
    client.force_login(study.owner)
    response = client.post(f"/studies/{study.pk}/concepts/", {"action": "suggest"})
    assert response.status_code == 400 and "Only concept-assignment studies" in response.content.decode()
