"""Bundles are owned and shared like studies: a researcher sees (pages, debugging report,
API, the builder's choices) and builds studies on their own bundles, those shared with
them and those of the studies they may see; anyone else gets a 404."""

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from studies.models import Bundle, Study
from studies.selectors import accessible_bundles
from studies.services import StudyError, create_study

from .study_helpers import make_study

pytestmark = pytest.mark.django_db


def hand_bundle(name, owner=None):
    """A bundle row (no folder): what the pages and the API list."""
    return Bundle.objects.create(name=name, owner=owner, path=f"/nowhere/{name}", manifest_sha256=name.ljust(64, "0"),
                                 dataset="shapes_vqa", model="shapes_vqa_early", task="simulation", stages=["U"],
                                 class_names=["red", "blue"], manifest={"files": {"a.png": "0" * 64}, "items": []})


@pytest.fixture
def people():
    return {name: User.objects.create_user(name) for name in ("ada", "friend", "mallory")}


def bundle_urls(bundle):
    return [f"/bundles/{bundle.pk}/debugging/", f"/bundles/{bundle.pk}/debugging/f0-0.png",
            f"/bundles/{bundle.pk}/assets/a.png", f"/bundles/{bundle.pk}/items/i0/live-sog?positions=0"]


def test_another_researchers_bundle_is_a_404_on_every_page_and_in_the_api(client, people):
    bundle = hand_bundle("adas-secret-model", owner=people["ada"])
    client.force_login(people["mallory"])
    assert "adas-secret-model" not in client.get("/bundles/").content.decode()
    assert "adas-secret-model" not in client.get("/studies/new/").content.decode()
    for url in bundle_urls(bundle):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/bundles/{bundle.pk}/debugging/").status_code == 404  # no report computed for them
    api = APIClient()
    api.force_authenticate(people["mallory"])
    assert api.get("/api/bundles/").json() == []
    assert api.get(f"/api/bundles/{bundle.pk}/").status_code == 404


def test_a_bundle_is_seen_by_its_owner_and_those_it_is_shared_with(client, people):
    bundle = hand_bundle("shared-model", owner=people["ada"])
    bundle.shared_with.add(people["friend"])
    api = APIClient()
    for name in ("ada", "friend"):
        client.force_login(people[name])
        assert "shared-model" in client.get("/bundles/").content.decode()
        assert f'<option value="{bundle.pk}"' in client.get("/studies/new/").content.decode()
        assert client.get(f"/bundles/{bundle.pk}/debugging/").status_code == 200
        api.force_authenticate(people[name])
        assert [b["id"] for b in api.get("/api/bundles/").json()] == [bundle.pk]
    assert set(accessible_bundles(people["mallory"])) == set()


def test_a_bundle_without_an_owner_is_seen_by_superusers_only(client, people):
    bundle = hand_bundle("legacy")
    assert list(accessible_bundles(people["ada"])) == []
    root = User.objects.create_superuser("root")
    client.force_login(root)
    assert "legacy" in client.get("/bundles/").content.decode()
    assert client.get(f"/bundles/{bundle.pk}/debugging/").status_code == 200
    client.force_login(people["ada"])
    assert client.get(f"/bundles/{bundle.pk}/debugging/").status_code == 404


def test_who_may_see_a_study_may_see_its_bundle_but_no_other(client, people):
    study = make_study()  # its bundle has no owner
    study.shared_with.add(people["friend"])
    other = hand_bundle("other", owner=people["ada"])
    assert list(accessible_bundles(study.owner)) == [study.bundle]
    assert list(accessible_bundles(people["friend"])) == [study.bundle]
    assert other not in accessible_bundles(people["friend"]) and not accessible_bundles(people["mallory"]).exists()
    study.shared_with.add(people["ada"])  # seen through two routes: still listed once
    assert list(accessible_bundles(people["ada"]).order_by("pk")) == [study.bundle, other]


def test_a_study_is_created_only_over_a_bundle_its_creator_may_see(client, people):
    bundle = hand_bundle("adas", owner=people["ada"])
    with pytest.raises(StudyError, match="not yours nor shared with you"):
        create_study(people["mallory"], bundle, title="x", presets=["U"], practice=0)
    client.force_login(people["mallory"])
    form = {"title": "x", "bundle": bundle.pk, "task": "simulation", "preset": ["U"], "practice": "0"}
    assert client.post("/studies/new/", form).status_code == 404
    api = APIClient()
    api.force_authenticate(people["mallory"])
    refused = api.post("/api/studies/", {"bundle": bundle.pk, "title": "x", "presets": ["U"], "practice": 0},
                       format="json")
    assert refused.status_code == 400 and "bundle" in refused.json()
    assert Study.objects.count() == 0


def test_import_bundle_gives_the_bundle_to_the_owner_it_names(bundle_copy, people):
    with pytest.raises(CommandError, match="--owner: there is no user 'nobody'"):
        call_command("import_bundle", str(bundle_copy), "--owner", "nobody")
    assert Bundle.objects.count() == 0
    call_command("import_bundle", str(bundle_copy), "--owner", "ada")
    assert Bundle.objects.get().owner == people["ada"]


def test_precompute_refuses_an_unknown_owner_before_computing(tmp_path, people):
    with pytest.raises(CommandError, match="--owner: there is no user 'nobody'"):
        call_command("precompute", "--items", "2", "--out", str(tmp_path / "b"), "--import", "--owner", "nobody")
    with pytest.raises(CommandError, match="add --import"):
        call_command("precompute", "--items", "2", "--out", str(tmp_path / "b"), "--owner", "ada")
    assert not (tmp_path / "b").exists() and Bundle.objects.count() == 0
