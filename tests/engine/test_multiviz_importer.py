"""viz_engine.importers.multiviz on small synthetic MultiViz results (no Django): the format
is read by its structure (per-phrase second-order entries, DIME parts, features), the
bundle validates, and nothing written for annotators names a class."""

import json
from pathlib import Path

import pytest
from PIL import Image

from viz_engine.bundles.precompute import validate_bundle
from viz_engine.importers.multiviz import MultiVizImportError, read_instance, write_bundle


def picture(path: Path, fmt: str = "PNG", size=(40, 30)) -> str:
    Image.new("RGB", size, (200, 30, 30)).save(path, format=fmt)
    return path.name


def results(folder: Path, **changes) -> Path:
    """A retrieval-like export with classes: per-phrase second-order entries, one feature."""
    folder.mkdir(parents=True)
    doc = {
        "metadata": {"dataset": "toy", "split": "val", "id": 7, "labels": {"1": "cat", "2": "dog"}},
        "instance": {"image": picture(folder / "photo.png", "JPEG"), "text": "A small cat sits on a red mat.",
                     "pred-answer": "cat", "pred-id": 1, "correct-answer": "dog", "correct-id": 2},
        "labels": {"1": {"classname": "cat", "overviews": {
            "UnimodalGradient": {"description": "Gradient on the logit of the class cat",
                                 "image": picture(folder / "u-pred-cat.png"), "text": None},
            "SecondOrderGradient": {
                "7_1": {"description": "Second-order gradient", "image": picture(folder / "sog1.png"),
                        "text": "small cat"},
                "7_2": {"description": "Second-order gradient", "image": picture(folder / "sog2.png"),
                        "text": "red mat"}},
        }, "features": [{"id": 12, "weight": 0.5, "forward": {"image": picture(folder / "f12.png")},
                         "backward": [{"id": 3, "orig": picture(folder / "o3.png"), "origDesc": "a dog runs",
                                       "image": picture(folder / "b3.png")}]}]}},
    }
    doc.update(changes)
    (folder / "7.json").write_text(json.dumps(doc))
    return folder


def test_per_phrase_second_order_entries_become_one_view_each_marking_their_words(tmp_path):
    inst = read_instance(results(tmp_path / "7") / "7.json")
    views = inst.sections["C"]["views"]
    tokens = inst.modalities[1]["tokens"]
    assert [[tokens[i] for i in v["query"]] for v in views] == [["small", "cat"], ["red", "mat."]]
    assert all(v["modality"] == "image" and v["query_modality"] == "text" for v in views)
    assert [v["modality"] for v in inst.sections["U"]["views"]] == ["image"]  # the None text is no view


def test_the_bundle_validates_names_assets_neutrally_and_keeps_the_real_image_type(tmp_path):
    manifest = write_bundle([results(tmp_path / "src" / "7")], tmp_path / "bundle")
    assert validate_bundle(tmp_path / "bundle")["items"] == [{"id": "7", "index": 7}]
    assert not any(word in path for path in manifest["files"] for word in ("pred", "cat", "sog", "photo"))
    item = json.loads((tmp_path / "bundle" / "items" / "7" / "item.json").read_text())
    image = item["modalities"][0]
    assert image["asset"].endswith(".jpg") and (image["width"], image["height"]) == (40, 30)  # a JPEG named .png
    assert (item["prediction"], item["label"], item["correct"]) == ("cat", "dog", False)


def test_a_caption_that_names_a_class_is_dropped(tmp_path):
    write_bundle([results(tmp_path / "src" / "7")], tmp_path / "bundle")
    (u,) = json.loads((tmp_path / "bundle" / "items" / "7" / "U.json").read_text())["views"]
    assert "caption" not in u and "cat" not in u["title"]


def test_an_unknown_shape_is_refused_naming_the_file_not_with_a_traceback(tmp_path):
    folder = results(tmp_path / "7", labels={"1": {"overviews": {"LIME": ["not", "an", "object"]}}})
    with pytest.raises(MultiVizImportError, match=r"^7/7.json: labels.1.overviews.LIME: must be an object"):
        read_instance(folder / "7.json")
    folder = results(tmp_path / "8", labels={"1": {"features": [{"id": 1, "weight": "heavy"}]}})
    with pytest.raises(MultiVizImportError, match=r"^8/7.json: labels.1.features\[0\].weight: must be a number"):
        read_instance(folder / "7.json")


def test_a_failed_write_leaves_no_folder(tmp_path):
    src = results(tmp_path / "src" / "7")
    (src / "b3.png").unlink()
    with pytest.raises(MultiVizImportError, match="missing"):
        write_bundle([src], tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_a_class_name_that_cannot_be_stored_is_refused_before_reading(tmp_path):
    with pytest.raises(MultiVizImportError, match=r"^--class-names: 'xxxx"):
        write_bundle([results(tmp_path / "src" / "7")], tmp_path / "bundle", class_names=["x" * 201])
    assert not (tmp_path / "bundle").exists()


def test_an_image_that_cannot_be_read_is_refused_naming_it(tmp_path):
    src = results(tmp_path / "src" / "7")
    (src / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(MultiVizImportError, match=r"^7/7.json: asset 'photo.png' is not an image"):
        write_bundle([src], tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
