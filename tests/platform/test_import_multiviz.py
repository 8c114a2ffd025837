"""``import_multiviz``: MultiViz's own website results become one bundle of one dataset, or
are refused whole (a message naming the file and the problem, no row, no folder left).

vqa554 and mimic_10 are vendored in fixtures/multiviz/; 1029, mosei3 and 100 are read from
``MULTIVIZ_RESULTS_DIR`` (default ``../shared/multiviz-results``) and skipped when absent.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from studies.models import Bundle, BundleItem
from studies.services import create_study, multiviz_results_dir
from viz_engine.bundles.precompute import validate_bundle

pytestmark = pytest.mark.django_db

VENDORED = Path(settings.BASE_DIR) / "fixtures" / "multiviz"


def shared(name: str) -> Path:
    folder = multiviz_results_dir() / name
    if not folder.is_dir():
        pytest.skip(f"MultiViz sample {name!r} is not at {folder} (set MULTIVIZ_RESULTS_DIR to the folder of "
                    f"MultiViz's shared samples, ../shared/multiviz-results)")
    return folder


@pytest.fixture(autouse=True)
def data_dir(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


@pytest.fixture
def researcher(client):
    user = User.objects.create_user("ada", password="a-long-passphrase")
    client.force_login(user)
    return user


@pytest.fixture
def mimic(tmp_path) -> Path:
    """A copy of the vendored mimic_10 folder to break."""
    return Path(shutil.copytree(VENDORED / "mimic_10", tmp_path / "src" / "mimic_10"))


def run(*args, name="imported", owner="ada"):
    return call_command("import_multiviz", *map(str, args), "--name", name, *(["--owner", owner] if owner else []))


def nothing_recorded(data_dir):
    assert Bundle.objects.count() == 0 and BundleItem.objects.count() == 0
    left = list((data_dir / "bundles").iterdir()) if (data_dir / "bundles").exists() else []
    assert left == [], f"a refused import left {left}"


def texts(obj):
    """Every title and caption of a section."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("title", "caption") and isinstance(v, str):
                yield v
            else:
                yield from texts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from texts(v)


def assets(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("asset", "poster") and isinstance(v, str):
                yield v
            else:
                yield from assets(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from assets(v)


def check_imported(client, name, stages):
    bundle = Bundle.objects.get(name=name)
    validate_bundle(bundle.path)  # the bundle an import_bundle would accept, as it stands
    assert bundle.stages == stages
    rows = client.get("/api/bundles/").json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert name in [r["name"] for r in rows]
    for item in bundle.items.all():
        assert item.record["modalities"], "the datapoint has modalities"
        for stage, section in item.sections.items():
            for text in texts(section):  # views toward the prediction never name it (nor any class)
                for cls in bundle.class_names:
                    assert not re.search(rf"(?<!\w){re.escape(cls.lower())}(?!\w)", text.lower()), (stage, text)
            for path in assets(section):
                assert not re.search(r"pred|correct", path) and item.prediction not in path, path
                assert (Path(bundle.path) / path).is_file()
    return bundle


def test_vendored_vqa554_imports_as_a_bundle_with_every_stage_listed_by_the_api(client, researcher):
    out = run(VENDORED / "vqa554", "--class-names", "wood,metal,plastic", name="MultiViz VQA")
    bundle = check_imported(client, "MultiViz VQA", ["U", "C", "Rl", "Rg", "P"])
    assert (bundle.dataset, bundle.model, bundle.task) == ("VQA", "LXMERT", "simulation")
    assert bundle.class_names == ["glass", "wood", "metal", "plastic"]
    item = bundle.items.get()
    assert (item.prediction, item.label, item.correct) == ("glass", "glass", True)
    kinds = [(m["name"], m["kind"]) for m in item.record["modalities"]]
    assert kinds == [("image", "image"), ("text", "text")]
    assert item.record["modalities"][1]["tokens"] == ["What", "is", "the", "table", "made", "of?"]
    assert [v["method"] for v in item.section("U")["views"]] == ["LIME", "LIME"]
    assert len(item.section("C")["views"]) == 4  # DIME: unimodal and multimodal, image and text
    assert [f["feature"] for f in item.section("P")["features"]] == [83, 569, 1134, 1278, 1535]
    assert all(len(f["max"]) == 3 for f in item.section("Rg")["features"])
    assert out is None or "imported" in str(out)


def test_a_simulation_study_over_an_import_offers_four_seeded_choices_with_the_prediction(researcher):
    run(VENDORED / "vqa554", "--class-names", "wood,metal,plastic,stone,paper", name="vqa")
    bundle = Bundle.objects.get(name="vqa")
    study = create_study(researcher, bundle, title="VQA", practice=0)
    choices = study.items.get().choices
    assert len(choices) == 4 and "glass" in choices
    again = create_study(researcher, bundle, title="VQA again", practice=0)
    assert again.items.get().choices == choices


def test_vendored_mimic_imports_with_the_class_names_it_lacks(client, researcher):
    run(VENDORED / "mimic_10", "--class-names", "disease", name="mimic")
    bundle = check_imported(client, "mimic", ["U"])
    assert [m["name"] for m in bundle.items.get().record["modalities"]] == ["static", "timeseries"]


def test_a_single_class_is_refused_for_a_simulation_with_a_hint(mimic, data_dir):
    with pytest.raises(CommandError, match=r"mimic_10/mimic_10.json: the files name only the class 'no disease'.*"
                                           r"--class-names"):
        run(mimic, owner=None)
    nothing_recorded(data_dir)


def test_shared_mmimdb_1029_imports_with_its_second_order_words_marked(client, researcher):
    run(shared("1029"), "--class-names", "Drama,Comedy,Horror", name="MM-IMDb")
    bundle = check_imported(client, "MM-IMDb", ["U", "C", "Rl", "Rg", "P"])
    assert bundle.model == "LRTF"
    item = bundle.items.get()
    (view,) = item.section("C")["views"]
    tokens = item.record["modalities"][1]["tokens"]
    assert view["query_modality"] == "text" and {tokens[i].lower().strip(".,") for i in view["query"]} >= {"gordon"}


def test_shared_mosei3_imports_with_allow_missing_and_records_what_is_missing(client, researcher):
    out = run(shared("mosei3"), "--allow-missing", name="MOSEI")
    bundle = check_imported(client, "MOSEI", ["U", "C", "Rl", "Rg", "P"])
    item = bundle.items.get()
    assert (item.prediction, item.label, item.correct) == ("positive", "negative", False)
    missing = bundle.manifest["multiviz"]["missing_assets"]
    assert {m["asset"] for m in missing} == {"qmMSumMloAs.mp4", "125344.mp4", "mosei_grad_3_feat_66_sample_171.mp4",
                                             "mosei_grad_3_feat_132_sample_171.mp4",
                                             "mosei_grad_3_feat_151_sample_279.mp4",
                                             "mosei_grad_3_feat_147_sample_224.mp4"}
    assert all(m["file"] == "mosei3/mosei3.json" and m["left_out"] for m in missing)
    rg = {f["feature"]: f for f in item.section("Rg")["features"]}
    first = rg[66]["max"][0]
    assert [m["kind"] for m in first["modalities"]] == ["text"]  # the clip is missing, the script is not
    assert "video" not in [v["title"].split(" · ")[-1] for v in first["views"]]
    assert [m["kind"] for m in item.record["modalities"]] == ["video", "text"]
    assert out is None


def test_shared_mosei3_without_allow_missing_is_refused_naming_the_file_and_asset(data_dir):
    with pytest.raises(CommandError, match=r"missing: mosei3/mosei3.json: labels.0.features\[0\].backward\[0\]."
                                           r"orig_video names 'qmMSumMloAs.mp4'.*--allow-missing"):
        run(shared("mosei3"), owner=None)
    nothing_recorded(data_dir)


def test_shared_flickr_100_is_refused_for_having_no_classes(data_dir):
    with pytest.raises(CommandError, match=r"100/100.json: has no classes to simulate"):
        run(shared("100"), owner=None)
    nothing_recorded(data_dir)


def test_an_instance_without_classes_is_refused(mimic, data_dir):
    path = mimic / "mimic_10.json"
    doc = json.loads(path.read_text())
    doc["metadata"]["labels"] = None
    doc["instance"] = {k: v for k, v in doc["instance"].items() if not k.startswith(("pred", "correct"))}
    doc["instance"]["pred-logit"] = 1.5
    path.write_text(json.dumps(doc))
    with pytest.raises(CommandError, match=r"mimic_10/mimic_10.json: has no classes to simulate"):
        run(mimic, owner=None)
    nothing_recorded(data_dir)


def test_malformed_json_is_refused_naming_the_file(mimic, data_dir):
    (mimic / "mimic_10.json").write_text('{"metadata": {"dataset": "MIMIC",')
    with pytest.raises(CommandError, match=r"mimic_10/mimic_10.json: is not valid JSON: Expecting"):
        run(mimic, "--class-names", "disease", owner=None)
    nothing_recorded(data_dir)


def test_a_missing_asset_is_refused_without_allow_missing(mimic, data_dir):
    (mimic / "tsgrad.png").unlink()
    with pytest.raises(CommandError, match=r"1 referenced asset\(s\) are missing: mimic_10/mimic_10.json: "
                                           r"labels.0.overviews.First Order Gradient.timeseries names 'tsgrad.png'"):
        run(mimic, "--class-names", "disease", owner=None)
    nothing_recorded(data_dir)


def test_with_allow_missing_the_views_needing_a_missing_asset_are_left_out_and_recorded(mimic):
    (mimic / "tsgrad.png").unlink()
    run(mimic, "--class-names", "disease", "--allow-missing", owner=None)
    bundle = Bundle.objects.get()
    assert [v["modality"] for v in bundle.items.get().section("U")["views"]] == ["static"]
    (missing,) = bundle.manifest["multiviz"]["missing_assets"]
    assert missing["asset"] == "tsgrad.png" and "First Order Gradient" in missing["left_out"]


def test_folders_of_different_datasets_are_refused(data_dir, mimic):
    with pytest.raises(CommandError, match=r"folders of different datasets: vqa554/vqa554.json is 'VQA', "
                                           r"mimic_10/mimic_10.json is 'MIMIC'"):
        run(VENDORED / "vqa554", mimic, "--class-names", "wood,disease", owner=None)
    nothing_recorded(data_dir)


def test_an_asset_that_is_a_symbolic_link_is_refused(mimic, data_dir, tmp_path):
    secret = tmp_path / "secret.png"
    shutil.copy(mimic / "tsgrad.png", secret)
    (mimic / "tsgrad.png").unlink()
    (mimic / "tsgrad.png").symlink_to(secret)
    with pytest.raises(CommandError, match=r"mimic_10/mimic_10.json: .*timeseries: asset 'tsgrad.png' is a "
                                           r"symbolic link"):
        run(mimic, "--class-names", "disease", "--allow-missing", owner=None)
    nothing_recorded(data_dir)


@pytest.mark.parametrize("ref", ["../secret.png", "/etc/secret.png", "sub/../../secret.png"])
def test_an_asset_outside_its_folder_is_refused(mimic, data_dir, tmp_path, ref):
    shutil.copy(mimic / "tsgrad.png", tmp_path / "src" / "secret.png")
    path = mimic / "mimic_10.json"
    doc = json.loads(path.read_text())
    doc["labels"]["0"]["overviews"]["First Order Gradient"]["timeseries"] = ref
    path.write_text(json.dumps(doc))
    with pytest.raises(CommandError, match=rf"mimic_10/mimic_10.json: .*timeseries: asset {re.escape(repr(ref))} "
                                           rf"lies outside its folder"):
        run(mimic, "--class-names", "disease", "--allow-missing", owner=None)
    nothing_recorded(data_dir)


def test_an_existing_bundle_name_is_refused_before_anything_is_written(researcher, data_dir):
    run(VENDORED / "mimic_10", "--class-names", "disease", name="taken")
    before = sorted(p.name for p in (data_dir / "bundles").iterdir())
    with pytest.raises(CommandError, match="a bundle named 'taken' already exists"):
        run(VENDORED / "vqa554", "--class-names", "wood", name="taken")
    assert sorted(p.name for p in (data_dir / "bundles").iterdir()) == before and Bundle.objects.count() == 1


def test_concept_task_makes_one_item_per_feature_and_error_task_needs_misclassified_items(data_dir):
    run(VENDORED / "vqa554", "--task", "concept", name="concepts", owner=None)
    bundle = Bundle.objects.get(name="concepts")
    assert [(i.item_id, i.feature) for i in bundle.items.all()] == [
        ("554-f83", 83), ("554-f569", 569), ("554-f1134", 1134), ("554-f1278", 1278)]  # 1535 has weight 0
    assert all([f["feature"] for f in i.section("Rl")["features"]] == [i.feature] for i in bundle.items.all())
    with pytest.raises(CommandError, match=r"vqa554/vqa554.json: the model's prediction is correct"):
        run(VENDORED / "vqa554", "--task", "error", name="errors", owner=None)
    assert not Bundle.objects.filter(name="errors").exists()


def test_the_demo_adds_one_open_simulation_study_per_multiviz_sample_here_and_reuses_them(researcher):
    import io

    from studies.management.commands.demo_study import MULTIVIZ_DEMO, Command

    command = Command(stdout=io.StringIO())
    studies = command._multiviz_studies(researcher)
    here = [f for f, _t, _c in MULTIVIZ_DEMO
            if (VENDORED / f).is_dir() or (multiviz_results_dir() / f).is_dir()]
    assert "vqa554" in here and [s.bundle.name for s in studies] == [f"multiviz-{f}" for f in here]
    for study in studies:
        assert study.status == "open" and study.task == "simulation" and study.conditions.count() == 7
        (item,) = study.items.all()
        assert not item.is_practice and item.bundle_item.prediction in item.choices and len(item.choices) >= 2
    assert [s.pk for s in command._multiviz_studies(researcher)] == [s.pk for s in studies]


def test_the_builder_builds_a_study_over_an_imported_bundle(client, researcher):
    from studies.models import Study

    run(VENDORED / "vqa554", "--class-names", "wood,metal,plastic", name="vqa")
    bundle = Bundle.objects.get(name="vqa")
    assert str(bundle.pk) in client.get("/studies/new/").content.decode()
    created = client.post("/studies/new/", {"title": "Built on MultiViz", "bundle": bundle.pk, "task": "simulation",
                                            "preset": ["U", "MultiViz (U+C+Rℓ+Rg+P)"], "practice": "0"})
    study = Study.objects.get(title="Built on MultiViz")
    assert created.status_code == 302 and client.get(f"/studies/{study.pk}/edit/").status_code == 200
    assert sorted(study.items.get().choices) == ["glass", "metal", "plastic", "wood"]


def test_a_debugging_report_of_an_imported_bundle_is_refused_there_being_no_model(client, researcher):
    from studies.models import DebuggingReport

    run(VENDORED / "mimic_10", "--class-names", "disease", name="mimic")
    bundle = Bundle.objects.get(name="mimic")
    response = client.post(f"/bundles/{bundle.pk}/debugging/", {})
    assert response.status_code == 400 and "no model here to debug" in response.content.decode()
    assert DebuggingReport.objects.count() == 0
