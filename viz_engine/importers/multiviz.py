"""MultiViz's own precomputed visualizations (its website's results) as a bundle.

MultiViz's website serves one folder per datapoint: ``<id>.json`` and the images and
videos it names (``website/frontend/public/results/`` of pliang279/MultiViz). The JSON has
``metadata`` (``dataset``, ``split``, ``id``, ``labels``), ``instance`` (the datapoint: an
``image``, ``video``, ``static`` or ``timeseries`` picture, a ``text`` or ``script``, and the
``pred-*`` / ``correct-*`` answers) and ``labels``: per class id, the ``overviews`` (one
entry per method) and the ``features`` of the sparse linear model (``id``, ``weight``,
``forward`` views, ``backward`` datapoints). The keys differ per dataset, so this module
reads the structure, not a list of files:

- U  ← overviews of a first-order method (``LIME``, ``UnimodalGradient``, ``gradient``,
  ``First Order Gradient``, …): one view per modality key that names an asset;
- C  ← overviews of a cross-modal method (``DIME`` with ``<modality>-uni`` / ``-multi``
  parts, ``SecondOrderGradient`` — one entry, or one per phrase — with the words it starts
  from, ``SOG`` with ``target-words``): one view per asset, ``query`` marking the words;
- Rℓ ← ``features[].forward``; Rg ← ``features[].backward`` (the most activating
  datapoints, each with its own modalities and views); P ← the features' ids and weights.

The bundle holds the views toward the model's prediction only, with titles and captions
that never name a class (a caption that would is dropped), and assets copied under
neutral names (``items/<id>/assets/U-1-image.png``): MultiViz's file names carry
``pred``/``correct`` and labels. Everything is checked before anything is written; a
problem raises :class:`MultiVizImportError` naming the file and what is wrong. The folder
written is a bundle of ``docs/bundles.md`` (plan, manifest with every file's sha256),
validated like any other on import; the datapoints and views follow the modalities
contract (``"modalities"`` in item.json, ``"views"`` in the sections).

Use :func:`read_instance` for one results file and :func:`write_bundle` for folders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..bundles.format import FORMAT, FORMAT_VERSION, ITEM_ID, STAGES, BundleError, open_inside, sha256_file, \
    write_bytes, write_json
from ..bundles.schema import MAX_NAME, MAX_TOKEN, MAX_TOKENS, check_item_record, check_manifest, check_section

__all__ = ["MultiVizImportError", "Instance", "read_instance", "find_results", "collect_class_names",
           "write_bundle", "TASKS", "KNOWN_MODELS"]

TASKS = ("simulation", "concept", "error")
# the models of MultiViz's website per dataset (paper, section 4 and the website); a
# researcher names another with ``model=``
KNOWN_MODELS = {"vqa": "LXMERT", "mmimdb": "LRTF", "mosei": "MulT", "mimic": "late fusion", "flickr30k": "CLIP"}
MEDIA_KINDS = {".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image", ".mp4": "video", ".webm": "video",
               ".wav": "audio"}
_ASSET = re.compile(r"^[^\s,;]+\.(png|jpe?g|gif|mp4|webm|wav)$", re.IGNORECASE)
_ANSWER_KEY = re.compile(r"^(pred|correct)([-_].*)?$", re.IGNORECASE)
_C_METHOD = re.compile(r"second|sog|dime|double|cross|interaction", re.IGNORECASE)
_PARTS = {"uni": "unimodal contribution", "multi": "multimodal interaction"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"))


class MultiVizImportError(BundleError):
    """A results folder cannot be imported; the message names the file and the problem."""


@dataclass
class Instance:
    """One results file, read: what its item needs, with assets as ``(folder, path)``."""

    file: str  # "<folder>/<id>.json", as messages name it
    folder: Path
    dataset: str
    split: str
    index: int | None
    item_id: str
    prediction: str
    label: str
    class_names: list[str]
    modalities: list[dict]
    sections: dict[str, dict]
    methods: dict[str, list[str]]
    missing: list[dict] = field(default_factory=list)  # referenced assets that are not there
    assets: dict[str, str] = field(default_factory=dict)  # placeholder -> asset path in its folder


def _refuse(file: str, problem: str):
    raise MultiVizImportError(f"{file}: {problem}")


def find_results(folder) -> list[Path]:
    """The results files of a MultiViz folder (its ``*.json``; a ``.json`` path: that file),
    or an error saying why none."""
    folder = Path(folder)
    if folder.suffix == ".json" and folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise MultiVizImportError(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    if not found:
        raise MultiVizImportError(f"{folder}: holds no <id>.json of MultiViz results")
    return found


def _load(path: Path, file: str) -> dict:
    if path.is_symlink():
        _refuse(file, "is a symbolic link; import the folder's own files only")
    try:
        data = json.loads(path.read_text(encoding="utf-8"),
                          parse_constant=lambda name: (_ for _ in ()).throw(ValueError(f"{name} is not a number")))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        _refuse(file, f"is not valid JSON: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("instance"), dict):
        _refuse(file, "is not a MultiViz result: it needs an \"instance\" object")
    return data


def _is_asset(value) -> bool:
    return isinstance(value, str) and bool(_ASSET.match(value.strip()))


def _asset_state(folder: Path, ref: str, file: str, where: str) -> str | None:
    """``ref`` as a path inside ``folder`` when it is a regular file there, None when it
    is missing; refuses one that leaves the folder or passes through a symbolic link."""
    ref = ref.strip()
    norm = os.path.normpath(ref)
    if os.path.isabs(ref) or norm.split(os.sep)[0] == ".." or "\x00" in ref:
        _refuse(file, f"{where}: asset {ref!r} lies outside its folder {folder.name}/")
    rel = Path(norm).as_posix()
    current = folder
    for part in rel.split("/"):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        except OSError as exc:
            _refuse(file, f"{where}: asset {ref!r} cannot be read ({exc.strerror})")
        if stat.S_ISLNK(st.st_mode):
            _refuse(file, f"{where}: asset {ref!r} is a symbolic link; copy the file into the folder instead")
    if not stat.S_ISREG(st.st_mode):
        _refuse(file, f"{where}: asset {ref!r} is not a regular file")
    return rel


def _norm_word(word: str) -> str:
    return re.sub(r"^\W+|\W+$", "", word.lower())


def _query(tokens: list[str], phrases: list[str]) -> tuple[list[int], list[str]]:
    """Indices of ``phrases`` (each one or more words) in ``tokens`` (first occurrence,
    ignoring case and punctuation), and the phrases not found."""
    norm = [_norm_word(t) for t in tokens]
    found, lost = [], []
    for phrase in phrases:
        words = [_norm_word(w) for w in phrase.split() if _norm_word(w)]
        hit = next((s for s in range(len(norm) - len(words) + 1) if words and norm[s:s + len(words)] == words), None)
        if hit is None:
            lost.append(phrase)
        else:
            found.extend(range(hit, hit + len(words)))
    return sorted(set(found)), lost


def _mentions(text: str, names: list[str]) -> bool:
    low = text.lower()
    return any(re.search(rf"(?<![\w]){re.escape(n.lower())}(?![\w])", low) for n in names if n.strip())


class _Reader:
    """Reads one results file into an :class:`Instance` (see :func:`read_instance`)."""

    def __init__(self, path: Path, file: str, extra_classes: list[str]):
        self.path, self.folder, self.file = path, path.parent, file
        self.data = _load(path, file)
        self.extra = extra_classes
        self.missing: list[dict] = []
        self.assets: dict[str, str] = {}  # placeholder -> path in folder

    # -- small helpers ----------------------------------------------------------------------
    def asset(self, ref: str, where: str, needed_by: str) -> str | None:
        """A placeholder for the asset (``@<path>``), or None (recorded) when it is missing."""
        rel = _asset_state(self.folder, ref, self.file, where)
        if rel is None:
            self.missing.append({"file": self.file, "field": where, "asset": ref.strip(), "left_out": needed_by})
            return None
        key = "@" + rel
        self.assets[key] = rel
        return key

    def text(self, value, where: str) -> str:
        if not isinstance(value, str):
            _refuse(self.file, f"{where}: must be text")
        return value

    # -- the datapoint ----------------------------------------------------------------------
    def answers(self) -> tuple[str, str, list[str]]:
        meta = self.data.get("metadata") or {}
        inst = self.data["instance"]
        labels = self.data.get("labels") or {}
        if not isinstance(meta, dict) or not isinstance(labels, dict):
            _refuse(self.file, "metadata and labels must be objects")
        names = meta.get("labels") or {}
        if not isinstance(names, dict):
            _refuse(self.file, "metadata.labels must map class ids to names")

        def name_of(answer_key, id_keys):
            if isinstance(inst.get(answer_key), str) and inst[answer_key].strip():
                return inst[answer_key].strip()
            for k in id_keys:
                if k in inst and inst[k] is not None:
                    got = names.get(str(inst[k])) or (labels.get(str(inst[k])) or {}).get("classname")
                    if isinstance(got, str) and got.strip():
                        return got.strip()
            return None

        prediction = name_of("pred-answer", ("pred-id",))
        label = name_of("correct-answer", ("correct-answer-id", "correct-id"))
        classes = [str(v).strip() for v in names.values() if isinstance(v, (str, int)) and str(v).strip()]
        classes += [v["classname"].strip() for v in labels.values()
                    if isinstance(v, dict) and isinstance(v.get("classname"), str) and v["classname"].strip()]
        if prediction is None:
            what = "a match logit" if "pred-logit" in inst else "no predicted class"
            _refuse(self.file, f"has no classes to simulate ({what}, no labels): MultiViz results of a "
                               "retrieval or regression model cannot be a simulation, concept or error study")
        if label is None:
            _refuse(self.file, "has no correct answer (instance.correct-answer or correct-id)")
        for name in (prediction, label, *classes):
            if len(name) > MAX_NAME or "\x00" in name:
                _refuse(self.file, f"class name {name[:60]!r} is longer than {MAX_NAME} characters or holds a NUL")
        return prediction, label, list(dict.fromkeys([*classes, prediction, label]))

    def modality(self, key: str, value, where: str, name: str, needed_by: str) -> dict | None:
        """One modality of a datapoint from ``key: value`` (an asset or a text), or None."""
        if _is_asset(value):
            kind = MEDIA_KINDS[Path(value.strip()).suffix.lower()]
            ref = self.asset(value, where, needed_by)
            if ref is None:
                return None
            return {"name": name, "kind": kind, "asset": ref}
        if isinstance(value, str) and value.strip():
            tokens = value.split()
            if len(tokens) > MAX_TOKENS or any(len(t) > MAX_TOKEN for t in tokens):
                _refuse(self.file, f"{where}: the text has more than {MAX_TOKENS} words or a word longer "
                                   f"than {MAX_TOKEN} characters")
            return {"name": name, "kind": "text", "tokens": tokens}
        return None

    def datapoint(self) -> list[dict]:
        out = []
        for key, value in self.data["instance"].items():
            if _ANSWER_KEY.match(key):
                continue
            m = self.modality(key, value, f"instance.{key}", _safe_name(key), "the datapoint's modality " + key)
            if m:
                out.append(m)
        return out

    # -- views ------------------------------------------------------------------------------
    def view_modality(self, key: str, modalities: list[dict]) -> str | None:
        names = {m["name"]: m["kind"] for m in modalities}
        if key in names:
            return key
        kind = {"text": "text", "image": "image", "video": "video", "audio": "audio"}.get(key)
        same = [m["name"] for m in modalities if m["kind"] == kind]
        return same[0] if kind and len(same) == 1 else None

    def views_of(self, obj: dict, where: str, method: str, stage: str, modalities: list[dict],
                 caption: str | None = None, query=None) -> list[dict]:
        """One view per asset of ``obj`` (``{modality key: asset}``; keys like ``image-uni``
        name a part), titled by method and modality."""
        views = []
        for key, value in obj.items():
            if not _is_asset(value):
                continue
            base, _, part = key.partition("-")
            title = " · ".join(x for x in (method, _PARTS.get(part, part), base) if x)
            ref = self.asset(value, f"{where}.{key}", f"{stage} view {title}")
            if ref is None:
                continue
            view = {"modality": self.view_modality(base, modalities), "title": title, "method": method,
                    "asset": ref}
            if caption:
                view["caption"] = caption
            if query:
                view.update(query)
            views.append(view)
        return views

    def c_query(self, entry: dict, modalities: list[dict]) -> tuple[dict | None, str | None]:
        """The words a second-order view starts from: ``query`` indices into the text
        modality (when found) and a caption listing them."""
        words = entry.get("target-words")
        if words is None and isinstance(entry.get("text"), str) and not _is_asset(entry["text"]):
            words = [w.strip() for w in entry["text"].split(",") if w.strip()]
        if not words or not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            return None, None
        text = [m for m in modalities if m["kind"] == "text"]
        caption = "Starting from the word(s): " + ", ".join(words)
        if not text:
            return None, caption
        indices, _lost = _query(text[0]["tokens"], words)
        return ({"query": indices, "query_modality": text[0]["name"]} if indices else None), caption

    def overview(self, name: str, entry, where: str, modalities: list[dict]) -> tuple[str, list[dict]]:
        stage = "C" if _C_METHOD.search(name) else "U"
        if not isinstance(entry, dict):
            _refuse(self.file, f"{where}: must be an object of views")
        description = entry.get("description") if isinstance(entry.get("description"), str) else None
        phrases = [(k, v) for k, v in entry.items() if isinstance(v, dict)]
        views = []
        for k, sub in phrases:  # one entry per phrase (SecondOrderGradient of a retrieval model)
            query, caption = self.c_query(sub, modalities)
            sub_desc = sub.get("description") if isinstance(sub.get("description"), str) else None
            views += self.views_of(sub, f"{where}.{k}", name, stage, modalities, caption or sub_desc, query)
        query, caption = self.c_query(entry, modalities) if stage == "C" else (None, None)
        views += self.views_of(entry, where, name, stage, modalities,
                               ". ".join(x.strip().rstrip(".") for x in (description, caption) if x) or None, query)
        return stage, views

    def features(self, feats, where: str, modalities: list[dict]) -> tuple[dict, dict, dict]:
        if not isinstance(feats, list):
            _refuse(self.file, f"{where}: must be a list of features")
        rl, rg, p, seen = [], [], [], set()
        for k, f in enumerate(feats):
            at = f"{where}[{k}]"
            if not isinstance(f, dict):
                _refuse(self.file, f"{at}: must be an object")
            fid, weight = f.get("id"), f.get("weight")
            if isinstance(fid, bool) or not isinstance(fid, int) or fid < 0:
                _refuse(self.file, f"{at}.id: must be a feature id (a whole number ≥ 0)")
            if fid in seen:
                _refuse(self.file, f"{at}.id: feature {fid} appears twice")
            seen.add(fid)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                _refuse(self.file, f"{at}.weight: must be a number")
            p.append({"feature": fid, "weight": float(weight), "contribution": None})
            forward = f.get("forward") or {}
            desc = f.get("forward-descriptions") if isinstance(f.get("forward-descriptions"), str) else None
            if isinstance(forward, dict) and forward:
                rl.append({"feature": fid, "views": self.views_of(forward, f"{at}.forward", "feature attribution",
                                                                   "Rl", modalities, desc)})
            backward = f.get("backward") or []
            if not isinstance(backward, list):
                _refuse(self.file, f"{at}.backward: must be a list of datapoints")
            tops = []
            for b, point in enumerate(backward):
                bat = f"{at}.backward[{b}]"
                if not isinstance(point, dict):
                    _refuse(self.file, f"{bat}: must be an object")
                mods = []
                for key, value in point.items():
                    if key.lower().startswith("orig"):
                        m = self.modality(key, value, f"{bat}.{key}", self.orig_name(key, value, modalities),
                                          f"the {key} modality of Rg datapoint {b} of feature {fid}")
                        if m:
                            mods.append(m)
                views = self.views_of({k: v for k, v in point.items() if not k.lower().startswith("orig")}, bat,
                                      "feature attribution", "Rg", mods)
                tops.append({"modalities": mods, "views": views})
            if backward:
                rg.append({"feature": fid, "max": tops, "min": []})
        return {"features": rl}, {"features": rg}, {"features": p}

    def orig_name(self, key: str, value, modalities: list[dict]) -> str:
        """A most-activating datapoint's modality under the name the item's own has:
        ``orig`` (an image) → ``image``, ``origDesc`` → the text, ``orig_video`` → ``video``."""
        rest = _safe_name(re.sub(r"^orig[-_]?", "", key, flags=re.IGNORECASE))
        kind = MEDIA_KINDS.get(Path(value.strip()).suffix.lower(), "text") if isinstance(value, str) else "text"
        if rest in {m["name"] for m in modalities}:
            return rest
        same = [m["name"] for m in modalities if m["kind"] == kind]
        return same[0] if same else (rest or kind)

    # -- the whole file ---------------------------------------------------------------------
    def read(self) -> Instance:
        meta = self.data.get("metadata") or {}
        dataset = meta.get("dataset") if isinstance(meta, dict) else None
        if not isinstance(dataset, str) or not dataset.strip():
            _refuse(self.file, "metadata.dataset: missing (which dataset the result is of)")
        prediction, label, classes = self.answers()
        modalities = self.datapoint()
        labels = self.data.get("labels") or {}
        pred_id = self.data["instance"].get("pred-id")
        key = str(pred_id) if pred_id is not None and str(pred_id) in labels else next(
            (k for k, v in labels.items() if isinstance(v, dict) and v.get("classname") == prediction), None)
        if key is None and len(labels) == 1:
            key = next(iter(labels))
        if key is None or not isinstance(labels.get(key), dict):
            _refuse(self.file, "has no explanations toward the model's prediction (labels.<predicted id>)")
        target, where = labels[key], f"labels.{key}"
        sections: dict[str, dict] = {}
        methods: dict[str, list[str]] = {}
        overviews = target.get("overviews") or {}
        if not isinstance(overviews, dict):
            _refuse(self.file, f"{where}.overviews: must be an object")
        for name, entry in overviews.items():
            stage, views = self.overview(name, entry, f"{where}.overviews.{name}", modalities)
            sections.setdefault(stage, {"views": []})["views"].extend(views)
            methods.setdefault(stage, []).append(name)
        if target.get("features"):
            sections["Rl"], sections["Rg"], sections["P"] = self.features(target["features"], f"{where}.features",
                                                                          modalities)
            for s in ("Rl", "Rg", "P"):
                methods[s] = ["MultiViz export"]
        if not sections:
            _refuse(self.file, f"{where}: holds no explanations (no overviews, no features)")
        index = meta.get("id")
        item_id = _safe_name(str(index if index is not None else self.path.stem))[:64]
        return Instance(file=self.file, folder=self.folder, dataset=dataset.strip(),
                        split=str(meta.get("split") or "unknown")[:MAX_NAME], item_id=item_id,
                        index=int(index) if isinstance(index, int) and index >= 0 or str(index).isdigit() else None,
                        prediction=prediction, label=label, class_names=classes, modalities=modalities,
                        sections=sections, methods=methods, missing=self.missing, assets=self.assets)


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-") or "x"
    return name if ITEM_ID.match(name[:64]) else "x" + name


def read_instance(path, folder_name: str | None = None, extra_classes=()) -> Instance:
    """One results file read and checked (assets: present, inside the folder, no link).

    Views whose asset is missing are left out and listed in ``Instance.missing``; the
    caller decides whether that refuses the import. Raises :class:`MultiVizImportError`
    (naming ``<folder>/<file>``) for malformed JSON, a result without classes, an asset
    outside the folder or a symbolic link."""
    path = Path(path)
    file = f"{folder_name or path.parent.name}/{path.name}"
    try:
        return _Reader(path, file, list(extra_classes)).read()
    except MultiVizImportError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a shape we do not know
        raise MultiVizImportError(f"{file}: is not a MultiViz result this importer understands "
                                  f"({type(exc).__name__}: {exc})") from None


def collect_class_names(instances: list[Instance], extra=()) -> list[str]:
    """The classes named in the files (in the order met), then the extra ones."""
    names = [n for inst in instances for n in inst.class_names] + [str(n).strip() for n in extra if str(n).strip()]
    return list(dict.fromkeys(names))


def _sniff(head: bytes) -> str | None:
    """The file type its first bytes say (None: unknown)."""
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            return ext
    if head[4:8] == b"ftyp":
        return ".mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    return None


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - not a readable image: the modality has no size
        return None


def _drop_class_names(obj, names: list[str]):
    """Titles and captions that would name a class lose the caption / get a neutral title."""
    if isinstance(obj, list):
        return [_drop_class_names(v, names) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _drop_class_names(v, names) for k, v in obj.items()}
    if isinstance(out.get("caption"), str) and _mentions(out["caption"], names):
        del out["caption"]
    if isinstance(out.get("title"), str) and _mentions(out["title"], names):
        out["title"] = "view"
    return out


def _instance_items(inst: Instance, task: str) -> list[tuple[str, int | None, dict]]:
    """(item id, feature, sections) of one instance: one item, or one per feature P uses
    (nonzero weight) for a concept study."""
    if task != "concept":
        return [(inst.item_id, None, inst.sections)]
    out = []
    for feat in inst.sections.get("P", {}).get("features", []):
        if feat["weight"] == 0:  # as precompute: the features P uses
            continue
        j = feat["feature"]
        sections = dict(inst.sections)
        for s in ("Rl", "Rg"):
            if s in sections:
                sections[s] = {"features": [f for f in sections[s]["features"] if f["feature"] == j]}
        out.append((f"{inst.item_id}-f{j}"[:64], j, sections))
    if not out:
        _refuse(inst.file, "has no features with a nonzero weight: a concept study names what features stand for")
    return out


def write_bundle(folders, out, *, class_names=(), allow_missing: bool = False, task: str = "simulation",
                 model: str | None = None, log=lambda _m: None) -> dict:
    """Read the MultiViz results ``folders`` (one dataset) and write them as one bundle at
    ``out`` (a folder that must not exist yet); returns the manifest.

    ``class_names`` are added to the classes named in the files (a simulation item's
    choices are drawn from all of them). A referenced asset that is missing refuses the
    import unless ``allow_missing``: then the views needing it are left out and the
    manifest's ``multiviz.missing_assets`` lists them. Every check runs before anything is
    written; if writing fails, ``out`` is removed again."""
    if task not in TASKS:
        raise MultiVizImportError(f"task {task!r} is unknown; tasks: {', '.join(TASKS)}")
    for name in class_names:
        if not str(name).strip() or len(str(name).strip()) > MAX_NAME or "\x00" in str(name):
            raise MultiVizImportError(f"--class-names: {str(name)[:60]!r} is not a class name (1 to {MAX_NAME} "
                                      f"characters, no NUL)")
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise MultiVizImportError(f"{out} already exists; choose another bundle name or folder")
    folders = [Path(f) for f in folders]
    if not folders:
        raise MultiVizImportError("name at least one MultiViz results folder")
    instances: list[Instance] = []
    for folder in folders:
        for path in find_results(folder):
            instances.append(read_instance(path, path.parent.name, class_names))
    first = instances[0]
    for inst in instances[1:]:
        if inst.dataset.lower() != first.dataset.lower():
            raise MultiVizImportError(f"folders of different datasets: {first.file} is {first.dataset!r}, "
                                      f"{inst.file} is {inst.dataset!r}; a bundle holds one dataset, import each "
                                      f"dataset as its own bundle")
    seen: dict[str, str] = {}
    for inst in instances:
        if inst.item_id in seen:
            raise MultiVizImportError(f"{inst.file}: datapoint {inst.item_id} is also in {seen[inst.item_id]}")
        seen[inst.item_id] = inst.file
    missing = [m for inst in instances for m in inst.missing]
    if missing and not allow_missing:
        listed = "; ".join(f"{m['file']}: {m['field']} names {m['asset']!r}" for m in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise MultiVizImportError(f"{len(missing)} referenced asset(s) are missing: {listed}{more}. "
                                  f"Add the files, or import with --allow-missing to leave out the views needing them")
    classes = collect_class_names(instances, class_names)
    if task == "simulation" and len(classes) < 2:
        raise MultiVizImportError(f"{first.file}: the files name only the class {classes[0]!r}; a simulation item "
                                  f"needs two or more choices: name the others with --class-names A,B,…")
    if task == "error":
        right = [i for i in instances if i.prediction == i.label]
        if right:
            raise MultiVizImportError(f"{right[0].file}: the model's prediction is correct; error categorization "
                                      f"is over misclassified datapoints only")
    if len(classes) > 1000:
        raise MultiVizImportError(f"{len(classes)} classes: at most 1000")
    stages = [s for s in STAGES if any(s in inst.sections for inst in instances)]
    empty = {"U": {"views": []}, "C": {"views": []}, "Rl": {"features": []}, "Rg": {"features": []},
             "P": {"features": []}}
    # everything is checked: write (and remove it all again on any failure)
    out.mkdir(parents=True)
    try:
        items = []
        for inst in instances:
            for item_id, feature, sections in _instance_items(inst, task):
                _write_item(out, inst, item_id, feature, {s: sections.get(s, empty[s]) for s in stages}, classes)
                entry = {"id": item_id}
                if inst.index is not None:
                    entry["index"] = inst.index
                if feature is not None:
                    entry["feature"] = feature
                items.append(entry)
                log(f"item {item_id} from {inst.file}")
        model = model or KNOWN_MODELS.get(re.sub(r"[^a-z0-9]", "", first.dataset.lower()), "unnamed (MultiViz export)")
        methods = {s: sorted({m for inst in instances for m in inst.methods.get(s, [])}) for s in stages}
        plan = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": __version__,
            "request": {"source": "multiviz", "folders": [f.name for f in folders], "task": task, "stages": stages,
                        "class_names": list(class_names), "allow_missing": allow_missing, "model": model},
            "dataset": {"name": first.dataset[:MAX_NAME],
                        "split": first.split if all(i.split == first.split for i in instances) else "mixed"},
            "model": {"name": model[:MAX_NAME], "class": "precomputed by MultiViz (no model here)"},
            "class_names": classes, "answer_types": {}, "task": task,
            "selection": {"source": "multiviz", "n_items": len(items), "misclassified_only": task == "error"},
            "stages": {s: {"methods": methods[s]} for s in stages},
            "target": "prediction",  # every view explains the model's predicted class
            "multiviz": {"files": {i.file: sha256_file(i.folder / Path(i.file).name) for i in instances},
                         "missing_assets": missing},
            "p_fit": None, "c_specificity": None,
            "items": items,
        }
        write_json(out / "plan.json", plan)
        files = {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted((out / "items").rglob("*"))
                 if p.is_file()}
        manifest = {**plan, "files": files, "complete": True}
        check_manifest(manifest)
        write_json(out / "manifest.json", manifest)
        return manifest
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _write_item(out: Path, inst: Instance, item_id: str, feature, sections: dict, classes: list[str]) -> None:
    """Copy the item's assets under neutral names and write item.json and its sections."""
    folder = out / "items" / item_id
    placed: dict[str, str] = {}
    counters: dict[str, int] = {}

    def place(key: str, stem: str) -> str:
        if key in placed:
            return placed[key]
        rel = inst.assets[key]
        with open_inside(inst.folder, rel) as fh:  # O_NOFOLLOW on every part: a link put in meanwhile fails
            data = fh.read()
        ext = _sniff(data[:16]) or Path(rel).suffix.lower()  # MultiViz names some JPEGs .png
        counters[stem] = counters.get(stem, 0) + 1
        name = f"{stem}-{counters[stem]}{ext}"
        write_bytes(folder / "assets" / name, data)
        placed[key] = f"items/{item_id}/assets/{name}"
        return placed[key]

    def walk(obj, stem: str):
        if isinstance(obj, list):
            return [walk(v, stem) for v in obj]
        if not isinstance(obj, dict):
            return obj
        here = stem
        if "feature" in obj and isinstance(obj["feature"], int):
            here = f"{stem}-f{obj['feature']}"
        res = {}
        for k, v in obj.items():
            if k in ("asset", "poster") and isinstance(v, str) and v.startswith("@"):
                label = _safe_name(str(obj.get("name") or obj.get("modality") or "view"))
                res[k] = place(v, f"{here}-{label}")
            elif k == "max":
                res[k] = [walk(d, f"{here}-max{n}") for n, d in enumerate(v)]
            else:
                res[k] = walk(v, here)
        return res

    def sized(mods: list[dict]) -> None:  # an image modality says its size (the viewer lays it out)
        for m in mods:
            if m["kind"] == "image":
                size = _image_size(out / m["asset"])
                if size is None:
                    source = next(inst.assets[k] for k, v in placed.items() if v == m["asset"])
                    _refuse(inst.file, f"asset {source!r} is not an image this importer can read")
                m["width"], m["height"] = size

    modalities = walk(inst.modalities, "datapoint")
    sized(modalities)
    written = {s: _drop_class_names(walk(sec, s), classes) for s, sec in sections.items()}
    # the names left out of the datapoint (a missing asset) are no modality to point at
    names = {m["name"] for m in modalities}
    for sec in written.values():
        for view in _all_views(sec):
            if view.get("modality") not in names and "modalities" not in view:
                view["modality"] = None
    for sec in written.values():
        for f in sec.get("features", []):
            for point in f.get("max", []):
                sized(point["modalities"])
    record = {"id": item_id, "label": inst.label, "prediction": inst.prediction,
              "correct": inst.label == inst.prediction,
              "split": inst.split, "datapoint": {}, "modalities": modalities, "source": inst.file}
    if inst.index is not None:
        record["index"] = inst.index
    if feature is not None:
        record["feature"] = feature
    check_item_record(record, f"items/{item_id}/item.json")
    write_json(folder / "item.json", record)
    for stage, section in written.items():
        check_section(section, f"items/{item_id}/{stage}.json")
        write_json(folder / f"{stage}.json", section)


def _all_views(section: dict):
    """The top-level and Rℓ views of a section (Rg datapoints have their own modalities)."""
    yield from section.get("views", [])
    for f in section.get("features", []):
        yield from f.get("views", [])
