"""The bundle format (version 1): precomputed MultiViz stages of one (dataset, model).

A bundle is a folder::

    plan.json                      what is to be computed (written first; never changes)
    manifest.json                  plan + sha256 of every file; written last, atomically
    shared/P.json                  the sparse linear model (P) shared by every item
    shared/Rg/f<j>.json, *.png     the most/least activating datapoints of feature j
    items/<id>/item.json           the datapoint as shown to people, label, prediction
    items/<id>/<stage>.json        one section per stage: U, C, Rl, Rg, P (and T, transformer views)
    shared/T.json                  the per-layer hidden-state projections (with T)
    items/<id>/assets/*.png        rendered assets (overlays), named after their stage
    cache/                         working files (feature matrices); not part of the bundle

Every file is written atomically (a temporary file in the same folder, then a rename), so
a reader — or a worker that resumes after a crash — sees a whole file or none. An item's
stage is done when its section file exists; ``manifest.json`` exists only once every item
is done, and lists a content hash of every file, so import can refuse a partial or
tampered bundle. The full description, with every field, is ``docs/bundles.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from .registry import default_stage_names, stage_names

FORMAT = "multiviz-bundle"
FORMAT_VERSION = 1
# The built-in stages as they were registered at import (the registry, .registry, is the
# source: the checks below ask it, so a stage registered later is known to them too).
STAGES = stage_names()  # U, C, Rl, Rg, P and T (transformer views, for models that have them)
MULTIVIZ_STAGES = default_stage_names()  # what a bundle holds unless asked for more
ITEM_FILE = "item.json"
# not starting with a dot: "." and ".." are not items, ".name" are temporaries
ITEM_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
# The paths a manifest lists and a section points at: inside shared/ or items/, no "..",
# no absolute path, no hidden or odd names.
ASSET_PATH = re.compile(r"^(shared|items)(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){1,4}$")

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "STAGES",
    "MULTIVIZ_STAGES",
    "BundleError",
    "write_json",
    "write_bytes",
    "read_json",
    "sha256_file",
    "bundle_files",
    "links_in",
    "open_inside",
    "item_dir",
    "section_path",
    "check_stages",
    "remove_stale_temporaries",
    "ASSET_KEYS",
    "ASSET_TYPES",
    "asset_refs",
    "asset_suffix",
]

# The keys under which an item or a section names an asset (a bundle-relative path), and the
# file types an asset may have with the content type it is served as (docs/bundles.md,
# "Modalities and views"). One place: import checks these references, the platform maps
# them to opaque names and serves them.
ASSET_KEYS = ("image", "overlay", "heatmap", "image_highlights", "asset", "poster")
ASSET_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".mp4": "video/mp4", ".wav": "audio/wav"}


def asset_suffix(path: str) -> str:
    """The asset type of ``path`` (``.png``, ``.mp4`` …; ``.jpeg`` as ``.jpg``) or "" for none."""
    dot = path.rfind(".")
    suffix = path[dot:].lower() if dot >= 0 else ""
    return (".jpg" if suffix == ".jpeg" else suffix) if suffix in ASSET_TYPES else ""


def asset_refs(obj):
    """Every asset path ``obj`` (an item record or a section) names, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str):
                if k in ASSET_KEYS and asset_suffix(v):
                    yield v
            else:
                yield from asset_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from asset_refs(v)


class BundleError(ValueError):
    """A bundle (or a request to build one) is not valid; the message says what and where."""


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (sorted keys: the same content, the same hash)."""
    _atomic_write(Path(path), json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":")).encode())


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(Path(path), data)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: Path) -> Any:
    """The JSON at ``path``; NaN and Infinity, which bundles are never written with, are refused."""
    path = Path(path)
    try:
        return json.loads(path.read_text(), parse_constant=_no_constant)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise BundleError(f"{path} is not valid JSON: {exc}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every file of the bundle (relative POSIX paths, sorted), without the manifest, the
    plan, the cache and temporaries."""
    root = Path(root)
    out = []
    for sub in ("shared", "items"):
        base = root / sub
        if not base.exists():
            continue
        for p in base.rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                out.append(p.relative_to(root).as_posix())
    return sorted(out)


def links_in(root: Path) -> list[str]:
    """Every symbolic link inside the bundle folder (relative paths, sorted), not followed:
    a link could make the platform serve any file of the server as an asset."""
    root = Path(root)
    out = []
    for folder, dirs, files in os.walk(root):  # does not descend into linked folders
        for name in dirs + files:
            if os.path.islink(os.path.join(folder, name)):
                out.append(Path(folder, name).relative_to(root).as_posix())
    return sorted(out)


def open_inside(root: Path, rel: str):
    """The regular file ``rel`` of the folder ``root``, opened for reading without following
    a symbolic link at any step below ``root`` (each part is opened with ``O_NOFOLLOW``
    relative to the one before, so a link swapped in meanwhile is refused as well).
    Raises :class:`FileNotFoundError` for a missing file, a link, ``..`` or anything but a
    regular file."""
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") or "\x00" in part for part in parts):
        raise FileNotFoundError(f"{rel!r} is not a path inside the bundle")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise FileNotFoundError(f"{root}: {exc.strerror}") from None
    try:
        for k, part in enumerate(parts):
            last = k == len(parts) - 1
            # O_NONBLOCK: a FIFO put there would otherwise block the open
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:  # ELOOP for a link, ENOTDIR, ENOENT
                raise FileNotFoundError(f"{rel!r}: {exc.strerror}") from None
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    file_fd = fd
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise FileNotFoundError(f"{rel!r} is not a regular file")
    return os.fdopen(file_fd, "rb")


def item_dir(root: Path, item_id: str) -> Path:
    if not ITEM_ID.match(item_id):
        raise BundleError(f"item id {item_id!r} is not a valid id (letters, digits, _ . -)")
    return Path(root) / "items" / item_id


def section_path(root: Path, item_id: str, stage: str) -> Path:
    if stage not in stage_names():
        raise BundleError(f"stage {stage!r} is unknown; stages: {', '.join(stage_names())}")
    return item_dir(root, item_id) / f"{stage}.json"


def check_stages(stages) -> tuple[str, ...]:
    """The stages in canonical order, or an error naming the unknown ones."""
    stages, known = tuple(stages), stage_names()
    unknown = [s for s in stages if s not in known]
    if unknown:
        raise BundleError(f"unknown stage(s) {', '.join(map(repr, unknown))}; stages: {', '.join(known)}")
    if not stages:
        raise BundleError("stages must name at least one stage")
    return tuple(s for s in known if s in stages)


def remove_stale_temporaries(root: Path) -> int:
    """Delete the temporaries a killed writer left behind; returns how many."""
    n = 0
    for p in Path(root).rglob(".*.tmp"):
        try:
            p.unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n
