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
def test_the_workspace_suggests_then_merges_splits_and_renames(client, eager_tasks):
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


def two_condition_concept_study():
    """Six annotators alternating between two distinctively named conditions."""
    study = make_study(task="concept", n_items=2, practice=0,
                       conditions=(("Ventriloquist", ["Rl"], 0), ("Xylophonist", ["Rl", "Rg"], 0)))
    for k in range(6):
        answer_all(enrol(study, pseudonym=f"p{k}"),
                   lambda item, k=k: {"free_text": f"answer {k}-{item.bundle_item.position}", "confidence": 3})
    return study


def test_the_workspace_hides_conditions_until_the_researcher_reveals_them(client):
    study = two_condition_concept_study()
    client.force_login(study.owner)
    url = f"/studies/{study.pk}/concepts/"
    page = client.get(url).content.decode()
    assert "answer 0-0" in page and "Ventriloquist" not in page and "Xylophonist" not in page
    assert "group A" in page and "group B" in page
    client.post(url, {"action": "reveal"})
    page = client.get(url).content.decode()  # remembered in the session
    assert "Ventriloquist" in page and "Xylophonist" in page
    client.post(url, {"action": "hide"})
    assert "Ventriloquist" not in client.get(url).content.decode()


def test_blinding_is_per_study_and_off_for_a_new_session(client):
    study, other = two_condition_concept_study(), two_condition_concept_study()
    other.owner = study.owner
    other.save()
    client.force_login(study.owner)
    client.post(f"/studies/{study.pk}/concepts/", {"action": "reveal"})
    assert "Ventriloquist" not in client.get(f"/studies/{other.pk}/concepts/").content.decode()
    client.logout()
    client.force_login(study.owner)
    assert "Ventriloquist" not in client.get(f"/studies/{study.pk}/concepts/").content.decode()


def test_blinded_answers_are_in_a_stable_order_that_does_not_group_conditions(client):
    import re

    study = two_condition_concept_study()
    client.force_login(study.owner)
    url = f"/studies/{study.pk}/concepts/"
    shown = re.findall(r"“answer (\d)-(\d)”", client.get(url).content.decode())
    assert shown == re.findall(r"“answer (\d)-(\d)”", client.get(url).content.decode())  # stable across reloads
    assert len(shown) == 12
    condition = dict(Response.objects.values_list("free_text", "enrolment__condition__name"))
    by_condition = [condition[f"answer {a}-{i}"] for a, i in shown]
    assert 1 + sum(a != b for a, b in zip(by_condition, by_condition[1:])) > 2  # not one condition, then the other
    assert len({i for _, i in shown[:6]}) == 2  # not item by item either (annotators alternate conditions)
    assert shown != sorted(shown, key=lambda s: (s[1], s[0]))
