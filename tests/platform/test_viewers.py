"""The viewers without a browser: every kind drawn from its modality and views, old bundles
converted into the same form, hidden stages' assets never reachable, assets served with
their real type and in byte ranges."""

import json
import re

import pytest
from django.test import Client

from studies.selectors import allowed_assets, asset_name, item_asset_paths, modalities_and_views
from studies.services import enrol
from studies.viewers import VIEWERS, colour, draw_view

from .study_helpers import start
from .viewer_bundle import MODALITIES, SECTIONS, viewer_study

STAGE_ASSETS = {  # the assets only one stage's views name
    "U": {"items/v0/assets/spectrogram.png"},
    "Rg": {"shared/Rg/f3-max0.png", "shared/Rg/f3-max0-map.jpg"},
}
DATAPOINT_ASSETS = {"items/v0/assets/photo.png", "items/v0/assets/voice.wav", "items/v0/assets/clip.mp4",
                    "items/v0/assets/poster.png"}


def test_one_viewer_is_registered_per_kind_with_its_partial():
    assert set(VIEWERS) == {"image", "text", "timeseries", "tabular", "audio", "video"}
    assert all(v.template == f"viewers/{k}.html" for k, v in VIEWERS.items())


def test_the_palette_is_blue_orange_never_red_green():
    assert colour(1.0) == "#e66101" and colour(-1.0) == "#2166ac" and colour(0.0) == "#ffffff"


@pytest.mark.django_db
@pytest.mark.parametrize("stages", [["U"], ["C"], ["Rl", "P"], ["Rg"], ["P"], []])
def test_a_condition_that_hides_a_stage_never_gets_its_assets(tmp_path, stages):
    study = viewer_study(tmp_path / "b", stages=stages)
    e = start(enrol(study, pseudonym="p"))
    item = study.items.get()
    allowed = allowed_assets(e, item)
    every = item_asset_paths(item)
    granted = {every[name] for name in allowed}
    assert DATAPOINT_ASSETS <= granted  # the datapoint is always there
    for stage, paths in STAGE_ASSETS.items():
        assert (paths <= granted) == (stage in stages), stage
    assert granted <= DATAPOINT_ASSETS | {p for s in stages for p in STAGE_ASSETS.get(s, ())}
    client = Client()
    base = f"/a/{e.token}/items/{item.pk}/assets"
    for name, path in every.items():
        assert client.get(f"{base}/{name}").status_code == (200 if name in allowed else 404), path


@pytest.mark.django_db
def test_rg_without_highlights_sends_its_datapoints_but_not_their_maps(tmp_path):
    study = viewer_study(tmp_path / "b", stages=["Rg"], rg_highlights=False)
    e = start(enrol(study, pseudonym="p"))
    item = study.items.get()
    granted = {item_asset_paths(item)[n] for n in allowed_assets(e, item)}
    assert "shared/Rg/f3-max0.png" in granted and "shared/Rg/f3-max0-map.jpg" not in granted


@pytest.mark.django_db
def test_assets_keep_their_type_are_served_with_it_and_in_byte_ranges(tmp_path):
    study = viewer_study(tmp_path / "b")
    e = start(enrol(study, pseudonym="p"))
    item = study.items.get()
    names = {p.rsplit("/", 1)[-1]: n for n, p in item_asset_paths(item).items()}
    assert re.fullmatch(r"[0-9a-f]{24}\.mp4", names["clip.mp4"]) and names["f3-max0-map.jpg"].endswith(".jpg")
    assert asset_name(item.pk, "items/x/a.jpeg").endswith(".jpg")
    client, base = Client(), f"/a/{e.token}/items/{item.pk}/assets"
    for file, kind in (("clip.mp4", "video/mp4"), ("voice.wav", "audio/wav"), ("photo.png", "image/png"),
                       ("f3-max0-map.jpg", "image/jpeg")):
        r = client.get(f"{base}/{names[file]}")
        assert r.status_code == 200 and r["Content-Type"] == kind and r["Accept-Ranges"] == "bytes", file
    whole = b"".join(client.get(f"{base}/{names['clip.mp4']}").streaming_content)
    size = len(whole)
    for header, first, last in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1), ("bytes=-50", size - 50, size - 1),
                                (f"bytes={size - 10}-{size + 500}", size - 10, size - 1)):
        r = client.get(f"{base}/{names['clip.mp4']}", HTTP_RANGE=header)
        assert r.status_code == 206, header
        assert r["Content-Range"] == f"bytes {first}-{last}/{size}" and int(r["Content-Length"]) == last - first + 1
        assert b"".join(r.streaming_content) == whole[first:last + 1], header
        assert names["clip.mp4"] in r["Content-Disposition"] and "clip" not in r["Content-Disposition"]
    r = client.get(f"{base}/{names['clip.mp4']}", HTTP_RANGE=f"bytes={size}-")
    assert r.status_code == 416 and r["Content-Range"] == f"bytes */{size}"
    r = client.get(f"{base}/{names['clip.mp4']}", HTTP_RANGE="bytes=0-1,5-9")  # several: the whole file
    assert r.status_code == 200


@pytest.mark.django_db
def test_the_item_page_draws_every_kind_with_a_legend_on_every_heatmap(tmp_path):
    study = viewer_study(tmp_path / "b")
    e = start(enrol(study, pseudonym="p"))
    html = Client().get(f"/a/{e.token}/").content.decode()
    for kind in VIEWERS:
        assert f"viewer-{kind}" in html, kind
    assert 'type="video/mp4"' in html and "<audio controls" in html and "poster=" in html
    assert html.count('class="legend"') >= 8  # 6 U views + the spectrogram + 2 C + Rl's 2 + Rg's one
    assert "orange: pushes toward the model&#x27;s answer, blue: against" in html
    for label in ("tense", "calm", "happy", "sad"):  # no class is named outside the choices
        assert html.count(label) == html.count(f'value="{label}"') + html.count(f"> {label}</label>")
    assert 'class="word pick"' in html  # two C maps, one per word: a picker
    assert 'style="' not in html


def test_an_old_record_and_old_sections_become_modalities_and_views():
    record = {"datapoint": {"image": "items/q/assets/image.png", "question": "what is left of the cube ?",
                            "tokens": ["what", "is", "left", "of", "the", "cube", "?"]}}
    sections = {
        "U": {"image": {"method": "lime", "grid": [2, 2], "scores": [0.1, -0.2, 0.3, 0.4],
                        "overlay": "items/q/assets/U-image.png"},
              "text": {"method": "gradient_x_input", "highlights": [{"token": "what", "score": 2.0, "weight": 0.5}]}},
        "C": {"method": "second_order_gradient", "phrase": {"positions": [5], "text": "cube",
                                                           "heatmap": "items/q/assets/C-phrase.png"}},
        "Rl": {"features": [{"feature": 7, "image": "items/q/assets/Rl-f7.png", "text": []}]},
        "Rg": {"features": [{"feature": 7, "max": [{"question": "is it red ?", "image": "shared/Rg/f7-max0.png",
                                                    "image_highlights": "shared/Rg/f7-max0-highlights.png"}],
                             "min": []}]},
    }
    modalities, views = modalities_and_views(record, sections)
    assert modalities == [{"name": "image", "kind": "image", "asset": "items/q/assets/image.png"},
                          {"name": "question", "kind": "text", "tokens": record["datapoint"]["tokens"]}]
    u_image, u_text = views["U"]
    assert u_image["scores"] == {"grid": [[0.1, -0.2], [0.3, 0.4]]} and u_image["asset"].endswith("U-image.png")
    assert u_text["scores"] == [0.5] and u_text["normalised"]
    assert views["C"][0]["asset"].endswith("C-phrase.png") and views["C"][0]["query"] == [5]
    assert views["Rl"][0]["views"][0]["asset"].endswith("Rl-f7.png")
    datapoint = views["Rg"][0]["max"][0]
    assert datapoint["modalities"][0]["asset"] == "shared/Rg/f7-max0.png"
    assert datapoint["views"][0]["asset"] == "shared/Rg/f7-max0-highlights.png"
    html = draw_view(u_image, modalities, "U")
    assert 'class="overlay"' in html and "dimmed: matters little" in html and "U-image.png" in html


def test_modalities_carry_only_their_payload():
    from studies.viewers import clean_modalities

    dirty = [{**MODALITIES[1], "label": "calm", "prediction": "tense"}, {"name": "x", "kind": "smell"}]
    assert clean_modalities(dirty) == [MODALITIES[1]]


def test_every_view_of_the_synthetic_bundle_draws_something():
    for stage in ("U", "C"):
        for view in SECTIONS[stage]["views"]:
            assert 'class="viewer' in draw_view(view, MODALITIES, stage), view["title"]


def _write_new_form_bundle(root):
    """The synthetic item as a finished bundle folder (item.json with modalities only)."""
    import json

    from viz_engine.bundles.format import FORMAT, FORMAT_VERSION, bundle_files, sha256_file

    from .viewer_bundle import ALL_STAGES, CLASSES, write_assets

    write_assets(root)
    item = root / "items" / "v0"
    (item / "item.json").write_text(json.dumps({"id": "v0", "label": "calm", "prediction": "tense", "correct": False,
                                                "modalities": MODALITIES}))
    for stage in ALL_STAGES:
        (item / f"{stage}.json").write_text(json.dumps(SECTIONS[stage]))
    plan = {"format": FORMAT, "format_version": FORMAT_VERSION, "dataset": {"name": "synthetic"},
            "model": {"name": "none"}, "task": "simulation", "class_names": CLASSES, "stages": {},
            "request": {"stages": ALL_STAGES}, "items": [{"id": "v0"}]}
    manifest = {**plan, "files": {f: sha256_file(root / f) for f in bundle_files(root)}, "complete": True}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.django_db
def test_a_bundle_of_modalities_and_views_imports_and_a_missing_asset_is_refused(tmp_path):
    from django.contrib.auth.models import User

    from studies.services import create_study, import_bundle
    from viz_engine.bundles.format import BundleError

    owner = User.objects.create_user("ada")
    bundle = import_bundle(_write_new_form_bundle(tmp_path / "new"), owner=owner)
    study = create_study(owner, bundle, title="new form", practice=0, group_size=1, open_now=True,
                         presets=["MultiViz (U+C+Rℓ+Rg+P)"])
    e = start(enrol(study, pseudonym="p"))
    html = Client().get(f"/a/{e.token}/").content.decode()
    assert all(f"viewer-{kind}" in html for kind in VIEWERS)
    broken = _write_new_form_bundle(tmp_path / "broken")
    (broken / "items" / "v0" / "assets" / "clip.mp4").unlink()
    manifest = json.loads((broken / "manifest.json").read_text())
    del manifest["files"]["items/v0/assets/clip.mp4"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"clip\.mp4"):
        import_bundle(broken, owner=owner)


def test_an_image_map_is_one_mask_pixel_a_cell_and_one_outline_around_each_strong_region():
    import base64
    import io

    import numpy as np
    from PIL import Image

    from studies.viewers import _image

    grid = [[0.0, 0.0, 0.0], [0.0, 1.0, 0.8], [0.0, 0.0, -1.0]]
    d = _image({"width": 30, "height": 30}, {"grid": grid}, signed=True, normalised=False)
    mask = Image.open(io.BytesIO(base64.b64decode(d["mask_src"].split(",", 1)[1])))
    assert mask.size == (3, 3) and mask.mode == "RGBA"
    alpha = np.asarray(mask)[..., 3]
    assert alpha[1, 1] == 0 and alpha[0, 0] == round(255 * 0.6)  # clear where it matters, dimmed where not
    orange, blue = d["outlines"]
    # the two orange cells share an edge: the outline goes around both, not between them
    assert orange["d"] == ("M10.00 10.00H30.00M10.00 20.00H30.00M10.00 10.00V20.00M30.00 10.00V20.00")
    assert blue["d"] == "M20.00 20.00H30.00M20.00 30.00H30.00M20.00 20.00V30.00M30.00 20.00V30.00"
