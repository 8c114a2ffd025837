"""Bundles in the platform: import all or nothing, assets, live second-order gradients,
the precompute command."""

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from studies.models import Bundle, BundleItem, LiveSOGResult
from studies.services import import_bundle
from viz_engine.bundles.format import BundleError, read_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(client):
    user = User.objects.create_user("ada", password="a-long-passphrase")
    client.force_login(user)
    return user


def test_importing_records_the_bundle_with_every_items_sections(bundle_copy):
    bundle = import_bundle(bundle_copy)
    manifest = read_json(bundle_copy / "manifest.json")
    assert bundle.model == "shapes_vqa_early" and bundle.stages == ["U", "C", "Rl", "Rg", "P"]
    items = list(bundle.items.all())
    assert [i.item_id for i in items] == [e["id"] for e in manifest["items"]]
    for item in items:
        assert set(item.sections) == {"U", "C", "Rl", "Rg", "P"}
        assert item.section("U")["image"]["method"] == "lime"
        assert item.prediction == item.record["prediction"]


def test_a_tampered_bundle_is_refused_and_the_database_is_unchanged(bundle_copy):
    import_bundle(bundle_copy, name="first")
    counts = (Bundle.objects.count(), BundleItem.objects.count())
    other = bundle_copy.parent / "other"
    bundle_copy.rename(other)
    item = read_json(other / "manifest.json")["items"][1]["id"]
    (other / "items" / item / "Rg.json").write_text('{"features": []}')
    with pytest.raises(BundleError, match="does not match its hash"):
        import_bundle(other, name="second")
    assert (Bundle.objects.count(), BundleItem.objects.count()) == counts


def test_a_partial_bundle_is_refused_with_a_hint(bundle_copy):
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(CommandError, match="precompute did not finish"):
        call_command("import_bundle", str(bundle_copy))
    assert Bundle.objects.count() == 0


def test_importing_the_same_bundle_twice_is_refused(bundle_copy):
    import_bundle(bundle_copy)
    with pytest.raises(BundleError, match="already imported"):
        import_bundle(bundle_copy, name="again")
    assert Bundle.objects.count() == 1


def test_assets_are_served_only_when_the_manifest_lists_them(client, researcher, bundle_copy):
    bundle = import_bundle(bundle_copy, owner=researcher)
    image = bundle.items.first().record["datapoint"]["image"]
    response = client.get(f"/bundles/{bundle.pk}/assets/{image}")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert client.get(f"/bundles/{bundle.pk}/assets/manifest.json").status_code == 404
    assert client.get(f"/bundles/{bundle.pk}/assets/../../etc/passwd").status_code == 404


def test_bundle_pages_need_a_login(client, bundle_copy):
    bundle = import_bundle(bundle_copy)
    assert client.get("/bundles/").status_code == 302
    assert client.get(f"/bundles/{bundle.pk}/assets/x.png").status_code == 302


def test_live_sog_is_computed_once_per_item_and_words(client, researcher, bundle_copy, eager_tasks):
    bundle = import_bundle(bundle_copy, owner=researcher)
    item = bundle.items.first()
    url = f"/bundles/{bundle.pk}/items/{item.item_id}/live-sog"
    first = client.get(url, {"positions": "2,1"})
    assert first.status_code == 200
    body = first.json()
    assert body["positions"] == [1, 2] and len(body["top_boxes"]) == 2
    assert body["heatmap"].startswith("data:image/png;base64,")
    assert client.get(url, {"positions": "1,2,2"}).json() == body
    assert LiveSOGResult.objects.count() == 1
    bad = client.get(url, {"positions": "99"})
    assert bad.status_code == 400 and "not words of this question" in bad.json()["error"]
    assert client.get(url, {"positions": "a"}).status_code == 400


def test_the_progress_page_lists_bundle_folders_with_their_progress(client, researcher, settings, bundle_copy):
    settings.DATA_DIR = bundle_copy.parent.parent
    (bundle_copy.parent.parent / "bundles").mkdir()
    bundle_copy.rename(bundle_copy.parent.parent / "bundles" / "mine")
    data = client.get("/bundles/progress.json").json()
    assert data["folders"] == [{"name": "mine", "done": 2, "total": 2, "finished": True, "imported": None}]
    assert b"mine" in client.get("/bundles/").content


def test_precompute_command_builds_and_imports_in_process(tmp_path, eager_tasks, capsys):
    out = tmp_path / "cmd"
    call_command("precompute", "--items", "2", "--seed", "9", "--stages", "U", "P", "--out", str(out),
                 "--import", "--name", "cmd")
    bundle = Bundle.objects.get(name="cmd")
    assert bundle.stages == ["U", "P"] and bundle.items.count() == 2
    assert "bundle complete" in capsys.readouterr().out
    call_command("precompute", "--items", "2", "--seed", "9", "--stages", "U", "P", "--out", str(out), "--import")
    assert "already imported as bundle 'cmd'" in capsys.readouterr().out and Bundle.objects.count() == 1


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "model 'nope' is unknown"),
    (["--stages", "U", "Z"], "unknown stage"),
    (["--dataset", "nope"], "dataset 'nope' is unknown"),
])
def test_precompute_command_rejects_bad_names_before_any_work(tmp_path, eager_tasks, args, message):
    out = tmp_path / "bad"
    with pytest.raises(CommandError, match=message):
        call_command("precompute", "--out", str(out), *args)
    assert not out.exists()
