"""A small synthetic bundle item with one modality of every kind, every stage drawn on it by
views (docs/bundles.md, "Modalities and views"), on hand-built rows over a real folder of
assets: the image and the posters are drawn here with Pillow, the sound is a generated
sine, the clip is MultiViz's own (fixtures/viewers/, MIT)."""

from __future__ import annotations

import io
import math
import shutil
import struct
import wave
from pathlib import Path

from django.contrib.auth.models import User
from PIL import Image, ImageDraw

from studies.models import Bundle, BundleItem, Condition, Study, StudyItem

CLASSES = ["calm", "tense", "happy", "sad"]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "viewers"
ALL_STAGES = ["U", "C", "Rl", "Rg", "P"]


def _png(draw, size=(64, 48)) -> bytes:
    im = Image.new("RGB", size, (236, 232, 220))
    draw(ImageDraw.Draw(im))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _scene(d):
    d.ellipse([4, 6, 28, 30], fill=(40, 90, 220))       # a blue ball
    d.polygon([(36, 40), (60, 40), (48, 12)], fill=(220, 40, 40))  # a red triangle


def _wav(seconds=0.5, rate=8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * t / rate)))
                               for t in range(int(seconds * rate))))
    return buf.getvalue()


def write_assets(root: Path) -> None:
    a = root / "items" / "v0" / "assets"
    a.mkdir(parents=True, exist_ok=True)
    (a / "photo.png").write_bytes(_png(_scene))
    (a / "poster.png").write_bytes(_png(lambda d: d.rectangle([8, 8, 56, 40], fill=(30, 30, 30))))
    (a / "spectrogram.png").write_bytes(_png(lambda d: [d.line([(x, 47), (x, 47 - (x * 7) % 40)], fill=(20, 120, 80))
                                                         for x in range(64)]))
    (a / "voice.wav").write_bytes(_wav())
    shutil.copyfile(FIXTURES / "clip.mp4", a / "clip.mp4")
    g = root / "shared" / "Rg"
    g.mkdir(parents=True, exist_ok=True)
    (g / "f3-max0.png").write_bytes(_png(_scene))
    (g / "f3-max0-map.jpg").write_bytes(_jpg())


def _jpg() -> bytes:
    im = Image.new("RGB", (64, 48), (200, 120, 40))
    buf = io.BytesIO()
    im.save(buf, format="JPEG")
    return buf.getvalue()


MODALITIES = [
    {"name": "photo", "kind": "image", "asset": "items/v0/assets/photo.png", "width": 64, "height": 48,
     "boxes": [{"box": [4, 6, 28, 30], "label": "ball"}, {"box": [36, 12, 60, 40], "label": "triangle"}]},
    {"name": "caption", "kind": "text", "tokens": ["a", "ball", "left", "of", "a", "triangle"]},
    {"name": "vitals", "kind": "timeseries", "feature_names": ["heart rate", "pressure", "oxygen"],
     "values": [[70 + 5 * math.sin(t / 2), 120 - t, 97 + (t % 3)] for t in range(12)],
     "times": [f"{t}h" for t in range(12)]},
    {"name": "record", "kind": "tabular", "fields": [{"name": "age", "value": 63}, {"name": "sex", "value": "F"},
                                                     {"name": "ward", "value": "cardiac"}, {"name": "weight", "value": 71.5}]},
    {"name": "voice", "kind": "audio", "asset": "items/v0/assets/voice.wav", "feature_names": ["pitch", "energy", "jitter", "shimmer"],
     "features": [[math.sin(t / 3 + f) for f in range(4)] for t in range(10)], "times": list(range(10))},
    {"name": "clip", "kind": "video", "asset": "items/v0/assets/clip.mp4", "poster": "items/v0/assets/poster.png"},
]

SECTIONS = {
    "U": {"views": [
        {"modality": "photo", "title": "U · patches that matter", "method": "lime",
         "scores": {"grid": [[0.1, 0.9, -0.2, 0.0], [0.8, 1.0, -0.1, 0.2], [0.0, -0.3, -0.9, -0.6], [0.1, 0.0, -0.7, 0.1]]}},
        {"modality": "caption", "title": "U · words that matter", "method": "gradient", "scores": [0.1, 0.9, 0.3, 0, -0.2, -0.8]},
        {"modality": "vitals", "title": "U · moments that matter", "method": "gradient",
         "scores": [[math.sin(t / 2 + f) for f in range(3)] for t in range(12)]},
        {"modality": "record", "title": "U · fields that matter", "method": "gradient", "scores": [0.6, -0.2, 0.9, -0.7]},
        {"modality": "voice", "title": "U · when the sound matters", "method": "gradient",
         "scores": [[math.cos(t / 2 + f) for f in range(4)] for t in range(10)]},
        {"modality": "clip", "title": "U · frames that matter", "method": "gradient",
         "scores": [math.sin(t / 4) for t in range(24)]},
        {"modality": "voice", "title": "U · the spectrogram", "asset": "items/v0/assets/spectrogram.png", "signed": False},
    ]},
    "C": {"views": [
        {"modality": "photo", "title": "C · where the word acts with the picture", "method": "second_order_gradient",
         "query": [1], "query_modality": "caption", "signed": False,
         "scores": {"boxes": [1.0, 0.2]}},
        {"modality": "photo", "title": "C · where the word acts with the picture", "method": "second_order_gradient",
         "query": [5], "query_modality": "caption", "signed": False,
         "scores": {"grid": [[0, 0, 0.2, 0.5], [0, 0.1, 0.8, 0.9], [0, 0, 1.0, 0.7], [0, 0, 0.3, 0.2]]}},
    ]},
    "Rl": {"features": [{"feature": 3, "views": [
        {"modality": "photo", "title": "Rℓ · what drives the feature here", "scores": {"boxes": [0.9, -0.4]}},
        {"modality": "caption", "title": "Rℓ · words that drive the feature", "scores": [0, 0.7, 0, 0, 0, -0.5]},
    ]}]},
    "Rg": {"features": [{"feature": 3, "max": [
        {"modalities": [{"name": "photo", "kind": "image", "asset": "shared/Rg/f3-max0.png", "width": 64, "height": 48}],
         "views": [{"modality": "photo", "title": "what drives the feature", "asset": "shared/Rg/f3-max0-map.jpg"}]}],
        "min": [{"modalities": [{"name": "photo", "kind": "image", "asset": "shared/Rg/f3-max0.png"}], "views": []}]}]},
    "P": {"features": [{"feature": 3, "weight": 0.52, "contribution": 0.21}]},
}


def viewer_study(root: Path, stages=ALL_STAGES, **condition) -> Study:
    """An open simulation study of one item (no practice) over the synthetic bundle at ``root``."""
    write_assets(root)
    owner = User.objects.create_user(f"viewer-owner-{User.objects.count()}")
    bundle = Bundle.objects.create(name=f"viewers-{Bundle.objects.count()}", path=str(root), owner=owner,
                                   manifest_sha256=f"{Bundle.objects.count() + 7:064d}", dataset="synthetic",
                                   model="none", task="simulation", stages=ALL_STAGES, class_names=CLASSES, manifest={})
    study = Study.objects.create(owner=owner, title="Viewers", task="simulation", bundle=bundle,
                                 status=Study.Status.OPEN)
    bi = BundleItem.objects.create(bundle=bundle, item_id="v0", position=0, label="calm", prediction="tense",
                                   correct=False, record={"id": "v0", "modalities": MODALITIES, "label": "calm",
                                                          "prediction": "tense", "correct": False},
                                   sections=SECTIONS)
    StudyItem.objects.create(study=study, bundle_item=bi, choices=CLASSES, is_practice=False, order=0)
    Condition.objects.create(study=study, name="+".join(stages), stages=list(stages), target_size=3, **condition)
    return study
