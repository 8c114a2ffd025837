"""The two importers (a study document, a bundle folder) refuse nonsense with a message
naming the field and write nothing; a bundle's files are its own (no symbolic links), at
import and when its assets are served."""

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.models import Response
from annotations.selectors import condition_metrics
from annotations.annotate import asset_signature
from studies.models import Bundle, BundleItem, Condition, Enrolment, Study, StudyItem
from studies.selectors import asset_name
from studies.services import StudyError, create_study, enrol, import_bundle
from annotations.transfer import export_study, import_study
from tests.platform.study_helpers import answer_all, make_study
from viz_engine.bundles.format import FORMAT, FORMAT_VERSION, BundleError, bundle_files, sha256_file

pytestmark = pytest.mark.django_db

MODELS = (Bundle, BundleItem, Study, Condition, StudyItem, Enrolment, Response)


def row_counts() -> dict:
    return {m.__name__: m.objects.count() for m in MODELS}


# -- a study document ------------------------------------------------------------------------------------
@pytest.fixture
def document():
    """The export of a small answered study, deleted here so that it imports as it is."""
    study = make_study(n_items=3, practice=1, conditions=[("U", ["U"], 5), ("U+C", ["U", "C"], 5)])
    for k in range(2):
        answer_all(enrol(study, pseudonym=f"PID-{k}"),
                   lambda item, k=k: {"choice": item.choices[k], "confidence": 3, "seconds_on_item": 4.5})
    exported = json.loads(json.dumps(export_study(study)))
    Response.objects.filter(enrolment__study=study).delete()
    Enrolment.objects.filter(study=study).delete()
    study.delete()
    User.objects.create_user("importer")
    return exported


def refused(document, match):
    counts = row_counts()
    with pytest.raises(StudyError, match=match):
        import_study(document, User.objects.get(username="importer"))
    assert row_counts() == counts


@pytest.mark.parametrize("change, match", [
    # json.loads reads these from a file: one such time made every figure of the study a 500
    (lambda d: d["enrolments"][0]["responses"][1].update(seconds_on_item=float("inf")),
     r"enrolments\[0\]\.responses\[1\]\.seconds_on_item: A valid number is required"),
    (lambda d: d["enrolments"][0]["responses"][1].update(seconds_on_item=float("nan")),
     r"enrolments\[0\]\.responses\[1\]\.seconds_on_item: A valid number is required"),
    (lambda d: d["enrolments"][1]["responses"][0].update(seconds_on_item=1e308),
     r"enrolments\[1\]\.responses\[0\]\.seconds_on_item: Ensure this value is less than or equal to 604800"),
    (lambda d: d["enrolments"][0]["responses"][2].update(choice="purple"),
     r"enrolments\[0\]\.responses\[2\]\.choice: 'purple' is not one of the item's choices"),
    (lambda d: d["enrolments"][0].update(item_order=d["enrolments"][0]["item_order"] * 30_000),
     r"enrolments\[0\]\.item_order: Ensure this field has no "
     r"more than 10000 elements"),
    (lambda d: d["enrolments"][0].update(item_order=d["enrolments"][0]["item_order"] * 2),
     r"enrolments\[0\]\.item_order\[4\]: item 'i\d' appears twice"),
    (lambda d: d["conditions"][1].update(name="U\x00C"), r"conditions\[1\]\.name: Null characters are not allowed"),
    (lambda d: d["enrolments"][1].update(pseudonym="PID\x001"),
     r"enrolments\[1\]\.pseudonym: Null characters are not allowed"),
    (lambda d: d["enrolments"][1]["closing_answers"].update({"comm\x00ents": "x"}),
     r"enrolments\[1\]\.closing_answers: 'comm\\x00ents' is not a question name"),
    (lambda d: d["study"].update(title="t" * 300), r"study\.title: Ensure this field has no more than 200 characters"),
    (lambda d: d["items"][0].pop("item_id"), r"items\[0\]\.item_id: missing"),
    (lambda d: d["items"][1].update(choices="red"), r"items\[1\]\.choices: Expected a list of items"),
    (lambda d: d["items"][1].update(choices=["red", "mauve"]),
     r"items\[1\]\.choices: \['mauve'\] are not classes of the bundle's model"),
    (lambda d: d.update(items={"i0": {}}), r"items: Expected a list of items but got type \"dict\""),
    (lambda d: d["enrolments"][0]["responses"][0].update(is_practice=1),
     r"enrolments\[0\]\.responses\[0\]\.is_practice: must be true or false; got int"),
    (lambda d: d["enrolments"][0].update(position="2"), r"enrolments\[0\]\.position: must be a whole number; got str"),
])
def test_a_study_document_with_nonsense_is_refused_naming_the_field(document, change, match):
    change(document)
    refused(document, match)


def test_the_unchanged_document_imports(document):
    study = import_study(document, User.objects.get(username="importer"))
    assert study.enrolments.count() == 2 and Response.objects.filter(enrolment__study=study).count() == 8


def _paths(value, here=()):
    """Every place in a JSON value: a key of an object or an index of a list."""
    yield here
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*here, key))
    elif isinstance(value, list):
        for k, sub in enumerate(value):
            yield from _paths(sub, (*here, k))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.text(max_size=30)
    | st.sampled_from(["", "\x00", "i1", "red", "U", "simulation", "2026-03-01T09:30:00", "9" * 400]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _extreme(value):
    """Values of the same kind as ``value`` (or nearly) at and past its edges."""
    if isinstance(value, bool):
        return st.sampled_from([0, 1, "true", None])
    if isinstance(value, (int, float)):
        return st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -1, 2**63, 0.5, "3"])
    if isinstance(value, str):
        return st.sampled_from(["", "\x00", value + "\x00", " " + value, (value or "x") * 300, "x" * 100_000])
    if isinstance(value, list):
        return st.sampled_from([value * 3, value + value[:1], value[:1], [], [None], "a, b"])
    return st.sampled_from([{}, [value], {"": None}])


def _kind(value) -> str:
    return "flag" if isinstance(value, bool) else type(value).__name__


def mutate(target, data) -> None:
    """Change one place of the JSON value ``target``: a value of the same kind at its edges,
    any JSON, or the key or entry removed. The place is drawn by the kind of its value first,
    so the few numbers are changed as often as the many texts."""
    places: dict[str, list] = {}
    for place in _paths(target):
        if place:
            value = target
            for step in place:
                value = value[step]
            places.setdefault(_kind(value), []).append(place)
    *parents, last = data.draw(st.sampled_from(places[data.draw(st.sampled_from(sorted(places)))]))
    for step in parents:
        target = target[step]
    how = data.draw(st.sampled_from(["edge", "edge", "any", "remove"]))
    if how == "remove":
        target.pop(last)
    else:
        target[last] = data.draw(_extreme(target[last]) if how == "edge" else JSON)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_a_study_document_is_imported_whole_or_refused_with_nothing_written(document, data):
    changed = copy.deepcopy(document)
    mutate(changed, data)
    owner = User.objects.get(username="importer")
    counts = row_counts()
    with transaction.atomic():  # each example's import is undone, so the next one imports again
        try:
            study = import_study(changed, owner)
        except StudyError as exc:
            assert str(exc) and row_counts() == counts
        else:  # what was accepted can be shown: the figures and the export of the study work
            for condition in study.conditions.all():
                json.dumps(condition_metrics(condition), allow_nan=False)
            export_study(study)
        transaction.set_rollback(True)


# -- a bundle folder ----------------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n not really an image"


def write_bundle(root: Path, change=lambda manifest, records: None, raw: dict | None = None) -> Path:
    """A finished bundle of two items (stage U), written by hand: no model needed.
    ``change(manifest, records)`` edits it before the hashes are taken; ``raw`` writes
    files as they are (``{relative path: text}``)."""
    ids = ["q-0", "q-1"]
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": "test",
                "request": {"stages": ["U"]}, "dataset": {"name": "shapes_vqa", "split": "test"},
                "model": {"name": "shapes_vqa_early"}, "class_names": ["red", "blue", "green"], "task": "simulation",
                "stages": {"U": {"image": "lime"}}, "items": [{"id": i, "index": k} for k, i in enumerate(ids)]}
    records = {i: {"id": i, "split": "test", "index": k, "label": "red", "prediction": "blue", "correct": False,
                   "datapoint": {"question": "what color is it?", "tokens": ["what", "color", "is", "it", "?"],
                                 "image": f"items/{i}/assets/image.png"},
                   "probabilities": [["blue", 0.6], ["red", 0.4]], "feature": None} for k, i in enumerate(ids)}
    change(manifest, records)
    for i, record in records.items():
        (root / "items" / i / "assets").mkdir(parents=True, exist_ok=True)
        (root / "items" / i / "assets" / "image.png").write_bytes(PNG)
        (root / "items" / i / "assets" / "U-image.png").write_bytes(PNG)
        (root / "items" / i / "item.json").write_text(json.dumps(record))
        (root / "items" / i / "U.json").write_text(json.dumps({"image": {"overlay": f"items/{i}/assets/U-image.png"}}))
    for rel, text in (raw or {}).items():
        (root / rel).write_text(text)
    manifest.setdefault("files", {name: sha256_file(root / name) for name in bundle_files(root)})
    manifest.setdefault("complete", True)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def bundle_refused(root, match, name=None):
    counts = row_counts()
    with pytest.raises(BundleError, match=match):
        import_bundle(root, name=name)
    assert row_counts() == counts


def test_a_bundle_written_by_hand_imports(tmp_path):
    bundle = import_bundle(write_bundle(tmp_path / "b"))
    assert [i.item_id for i in bundle.items.all()] == ["q-0", "q-1"] and bundle.items.first().label == "red"


@pytest.mark.parametrize("change, match", [
    (lambda m, r: m["items"][1].pop("id"), r"manifest\.json: items\[1\]\.id: missing"),
    (lambda m, r: m.update(items={"q-0": {"index": 0}}), r"manifest\.json: items: must be a list"),
    (lambda m, r: m["request"].pop("stages"), r"manifest\.json: request\.stages: missing"),
    (lambda m, r: m.update(class_names="red blue"), r"manifest\.json: class_names: must be a list"),
    (lambda m, r: m["dataset"].update(name="d" * 300),
     r"manifest\.json: dataset\.name: at most 200 characters; got 300"),
    (lambda m, r: m["model"].update(name="early\x00fusion"),
     r"manifest\.json: model\.name: 'early\\x00fusion' must not contain a NUL character"),
    (lambda m, r: m["items"][0].update(id="../../etc"), r"manifest\.json: items\[0\]\.id: '\.\./\.\./etc' is not a valid"),
    (lambda m, r: r["q-1"].pop("label"), r"items/q-1/item\.json: label: missing"),
    (lambda m, r: r["q-0"]["datapoint"].update(tokens=["w"] * 2_000_000),
     r"items/q-0/item\.json: datapoint\.tokens: at most 1024 entries; got 2000000"),
    (lambda m, r: r["q-0"].update(correct="yes"), r"items/q-0/item\.json: correct: must be true or false"),
    (lambda m, r: r["q-0"].update(probabilities=[["red", float("nan")]]),
     r"items/q-0/item\.json is not valid JSON: NaN is not a JSON number"),
    (lambda m, r: r["q-1"].update(label="\x00"), r"items/q-1/item\.json: label: '\\x00' must not contain a NUL"),
    (lambda m, r: r["q-1"].update(id="q-0"), r"items/q-1/item\.json names item 'q-0'"),
])
def test_a_bundle_with_nonsense_is_refused_naming_the_field(tmp_path, change, match):
    bundle_refused(write_bundle(tmp_path / "b", change), match)


def test_an_item_record_that_is_a_list_is_refused(tmp_path):
    root = write_bundle(tmp_path / "b", raw={"items/q-0/item.json": '["q-0", "red"]'})
    bundle_refused(root, r"items/q-0/item\.json: must be an object")


def test_a_bundle_name_with_nul_or_too_long_is_refused(tmp_path):
    root = write_bundle(tmp_path / "b")
    bundle_refused(root, r"bundle name: Null characters are not allowed", name="mine\x00")
    bundle_refused(root, r"bundle name: Ensure this field has no more than 200 characters", name="n" * 201)


def test_an_asset_path_outside_the_bundle_is_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(PNG)
    root = write_bundle(tmp_path / "b", lambda m, r: m.update(files={"../secret.png": sha256_file(tmp_path / "secret.png")}))
    bundle_refused(root, r"manifest\.json: files: '\.\./secret\.png' is not a valid name or path here")
    absolute = write_bundle(tmp_path / "c", lambda m, r: m.update(files={"/etc/passwd": "0" * 64}))
    bundle_refused(absolute, r"manifest\.json: files: '/etc/passwd' is not a valid name or path here")


@pytest.mark.parametrize("where", ["items/q-0/assets/image.png", "items/q-1/assets", "manifest.json"])
def test_a_bundle_holding_a_symbolic_link_is_refused(tmp_path, where):
    outside = tmp_path / "outside"
    shutil.copytree(write_bundle(tmp_path / "elsewhere"), outside)
    root = write_bundle(tmp_path / "b")
    target = outside / where
    (root / where).unlink() if (root / where).is_file() else shutil.rmtree(root / where)
    (root / where).symlink_to(target)
    if where != "manifest.json":  # hashes taken through the link: only the link gives it away
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["files"] = {name: sha256_file(root / name) for name in bundle_files(root)}
        (root / "manifest.json").write_text(json.dumps(manifest))
    bundle_refused(root, rf"{where} is a symbolic link")


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_a_bundle_is_imported_whole_or_refused_with_nothing_written(data):
    which = data.draw(st.sampled_from(["manifest", "q-0", "q-1"]))

    def change(manifest, records):
        mutate(manifest if which == "manifest" else records[which], data)

    counts = row_counts()
    with tempfile.TemporaryDirectory() as folder, transaction.atomic():
        root = write_bundle(Path(folder) / "b", change)
        try:
            bundle = import_bundle(root)
        except BundleError as exc:
            assert str(exc) and row_counts() == counts
        else:
            assert bundle.items.count() == len(bundle.manifest["items"])
        transaction.set_rollback(True)


# -- serving a bundle's assets ------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path, client):
    """An imported bundle, an annotator in a study over it, and a secret file beside it."""
    root = write_bundle(tmp_path / "b")
    bundle = import_bundle(root)
    owner = User.objects.create_superuser("root-researcher", password="a-long-passphrase")
    study = create_study(owner, bundle, title="assets", presets=["U"], practice=0, open_now=True)
    enrolment = enrol(study, pseudonym="p")
    item = study.items.get(bundle_item__item_id="q-0")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    client.force_login(owner)
    return root, bundle, enrolment, item, secret


def _annotator_asset_url(enrolment, item, path):
    """The URL the item page gives the bundle's file ``path``: its opaque per-item name, keyed."""
    name = asset_name(item.pk, path)
    return f"/a/{enrolment.token}/items/{item.pk}/assets/{name}?key={asset_signature(enrolment.token, item.pk, name)}"


def test_an_asset_is_served_to_the_annotator_and_the_researcher(served, client):
    root, bundle, enrolment, item, _secret = served
    path = "items/q-0/assets/image.png"
    for url in (_annotator_asset_url(enrolment, item, path), f"/bundles/{bundle.pk}/assets/{path}"):
        response = client.get(url)
        assert response.status_code == 200 and b"".join(response.streaming_content) == PNG


@pytest.mark.parametrize("link", ["items/q-0/assets/image.png", "items/q-0/assets", "items/q-0"])
def test_an_asset_replaced_by_a_link_after_import_is_not_followed(served, client, link):
    root, bundle, enrolment, item, secret = served
    path = "items/q-0/assets/image.png"
    if link.endswith(".png"):
        (root / link).unlink()
        (root / link).symlink_to(secret)
    else:  # a folder on the way, moved away and linked back: the file is there, but through a link
        os.rename(root / link, root.parent / "moved")
        (root / link).symlink_to(root.parent / "moved")
    for url in (_annotator_asset_url(enrolment, item, path), f"/bundles/{bundle.pk}/assets/{path}"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"root:x:0:0" not in response.content
