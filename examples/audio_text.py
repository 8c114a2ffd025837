"""Your own dataset, bundled: audio features + text (docs/datasets.md, the README).

    python manage.py precompute --dataset examples.audio_text:AudioTextSource \
        --model examples.audio_text:load_model --items 6 --p-split train --import
"""

import functools

import numpy as np
import torch
from torch import nn

from viz_engine.adapters import Modality, TorchModuleAdapter, atoms_per_element, atoms_per_position
from viz_engine.bundles.dataset_source import SourceModality

FRAMES, BANDS = 12, 6                      # audio features: 12 frames × 6 mel bands
BAND_NAMES = [f"mel{b}" for b in range(BANDS)]
VOCAB = ["i", "am", "so", "not", "happy", "sad", "today", "now"]
CLASSES = ["negative", "positive"]


def generate(n: int, seed: int) -> list[dict]:
    """Utterances: loud or quiet audio and a 4-word sentence; positive when the tone
    agrees with the word "happy" / "sad" (an interaction of the two modalities)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        loud = rng.random() < 0.5
        happy = rng.random() < 0.5
        audio = rng.normal(0, 0.5, (FRAMES, BANDS)) + (1.0 if loud else -1.0) * (np.arange(BANDS) < 3)
        words = ["i", "am", "so" if rng.random() < 0.5 else "not", "happy" if happy else "sad"]
        out.append({"audio": audio.astype(np.float32), "words": words, "label": int(loud == happy)})
    return out


class AudioTextSource:
    """The dataset as bundles see it (viz_engine.bundles.dataset_source.DatasetSource)."""

    name = "audio_text"
    splits = ("train", "test")
    class_names = CLASSES
    modalities = (SourceModality("audio", "audio", "frame × mel band", row=BANDS),
                  SourceModality("words", "text", "word"))

    def examples(self, split, n=None):
        data = generate(400 if split == "train" else 200, seed=0 if split == "train" else 1)
        return data if n is None else data[:n]

    def label(self, example):
        return CLASSES[example["label"]]

    def make_batch(self, adapter, examples):
        audio = torch.tensor(np.stack([e["audio"] for e in examples]))
        ids = torch.tensor([[VOCAB.index(w) for w in e["words"]] for e in examples])
        words = adapter.module.embedding(ids).detach()       # text goes in as embeddings
        return adapter.make_batch(audio, words, atom_labels={"words": [e["words"] for e in examples]})

    def datapoint(self, example):
        return [{"name": "audio", "kind": "audio", "feature_names": BAND_NAMES,
                 "features": [[round(float(v), 3) for v in row] for row in example["audio"]]},
                {"name": "words", "kind": "text", "tokens": list(example["words"])}]


class AudioTextNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(len(VOCAB), 8)
        self.audio = nn.Sequential(nn.Flatten(), nn.Linear(FRAMES * BANDS, 16), nn.GELU())
        self.text = nn.Sequential(nn.Linear(8, 16), nn.GELU())
        self.fusion = nn.Sequential(nn.Linear(16, 16), nn.GELU())
        self.classifier = nn.Linear(16, len(CLASSES))

    def forward(self, audio, words):
        return self.classifier(self.fusion(self.audio(audio) * self.text(words).mean(1)))


@functools.lru_cache(maxsize=1)
def load_model():
    """The adapter; here trained on the spot (seeded, < 1 s). Yours: load_state_dict(...)."""
    torch.manual_seed(0)
    model = AudioTextNet()
    adapter = TorchModuleAdapter(
        model, class_names=CLASSES,
        modalities=[Modality("audio", "time_step", (FRAMES, BANDS), "series_heatmap"),
                    Modality("words", "token", (None, 8), "token_highlight")],
        atom_fns={"audio": atoms_per_element, "words": atoms_per_position})
    source, optimiser = AudioTextSource(), torch.optim.Adam(model.parameters(), lr=0.01)
    train = source.examples("train")
    ids = torch.tensor([[VOCAB.index(w) for w in e["words"]] for e in train])
    audio = torch.tensor(np.stack([e["audio"] for e in train]))
    labels = torch.tensor([e["label"] for e in train])
    for _ in range(150):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(audio, model.embedding(ids)), labels).backward()
        optimiser.step()
    return adapter.eval()
