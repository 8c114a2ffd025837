"""The documented example of a user's own dataset (audio features + text, docs/datasets.md
and examples/audio_text.py) runs as written and makes a bundle that import accepts."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from viz_engine.bundles.precompute import build_bundle, validate_bundle

ROOT = Path(__file__).resolve().parents[2]


def test_docs_show_exactly_the_example_file_the_test_runs():
    docs = (ROOT / "docs" / "datasets.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert (ROOT / "examples" / "audio_text.py").read_text() in blocks


@pytest.mark.slow  # about 5 s of CPU: the example trains its model, then bundles 4 items
def test_audio_text_example_bundles_and_passes_the_import_validation(tmp_path):
    from examples.audio_text import AudioTextSource

    out = tmp_path / "audio-text"
    build_bundle(out, dataset="examples.audio_text:AudioTextSource", model="examples.audio_text:load_model",
                 n_items=4, seed=0)
    manifest = validate_bundle(out)
    assert manifest["class_names"] == AudioTextSource.class_names
    item = manifest["items"][0]["id"]
    record = json.loads((out / "items" / item / "item.json").read_text())
    assert [(m["name"], m["kind"]) for m in record["modalities"]] == [("audio", "audio"), ("words", "text")]
    c = json.loads((out / "items" / item / "C.json").read_text())
    assert c["query_modality"] == "words"  # 4 words < 72 audio atoms: C maps each top word over the audio
    assert all(np.array(v["scores"]).shape == (12, 6) for v in c["views"])
    u = json.loads((out / "items" / item / "U.json").read_text())
    assert [len(np.array(v["scores"]).ravel()) for v in u["views"]] == [72, 4]
