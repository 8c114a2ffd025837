"""A bundle folder read without a model: how far its precompute is, and whether a finished
one is complete and untampered (what importing it checks). No torch here: the web pages
that list bundle folders and the importer use this module, the workers ``precompute.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .format import (
    FORMAT,
    FORMAT_VERSION,
    BundleError,
    asset_refs,
    bundle_files,
    item_dir,
    links_in,
    read_json,
    section_path,
    sha256_file,
)
from .schema import check_item_record, check_manifest, check_section

__all__ = ["item_done", "progress", "validate_bundle"]


def item_done(root: Path, entry: dict, stages) -> bool:
    return (item_dir(root, entry["id"]) / "item.json").exists() and all(
        section_path(root, entry["id"], s).exists() for s in stages)


def progress(out) -> tuple[int, int]:
    """(items done, items planned); (0, 0) before a plan exists."""
    out = Path(out)
    if not (out / "plan.json").exists():
        return 0, 0
    plan = read_json(out / "plan.json")
    return sum(item_done(out, e, plan["request"]["stages"]) for e in plan["items"]), len(plan["items"])


# -- validation (import) --------------------------------------------------------------------------
def _asset_refs(obj) -> Iterable[str]:
    """Every asset a record or section names (``format.asset_refs``: the one list of keys)."""
    return asset_refs(obj)


def validate_bundle(out) -> dict:
    """The manifest of a complete, untampered bundle at ``out``, or a :class:`BundleError`
    saying what is wrong. Checks that the folder holds no symbolic link, the format and
    version, the shape and bounds of the manifest, every item's record and section
    (``schema.py``), every file's hash, that nothing was added, that every item has every
    section, and that every asset a section names is a file of the bundle."""
    out = Path(out)
    if not out.is_dir():
        raise BundleError(f"{out} is not a folder")
    links = links_in(out)
    if links:
        raise BundleError(f"{links[0]} is a symbolic link ({len(links)} in the bundle): a bundle holds its own "
                          f"files only; copy the files in instead")
    if not (out / "manifest.json").exists():
        hint = " (precompute did not finish: run it again)" if (out / "plan.json").exists() else ""
        raise BundleError(f"{out} has no manifest.json: not a finished bundle{hint}")
    manifest = read_json(out / "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{out}/manifest.json is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle format version {manifest.get('format_version')!r} is not supported "
                          f"(this installation reads version {FORMAT_VERSION})")
    check_manifest(manifest)
    if manifest.get("complete") is not True:
        raise BundleError("manifest.json does not say the bundle is complete")
    listed = manifest["files"]
    present = set(bundle_files(out))
    extra = sorted(present - set(listed))
    if extra:
        raise BundleError(f"{len(extra)} file(s) are not in the manifest, e.g. {extra[0]}: the bundle was changed")
    for name, digest in listed.items():
        if name not in present:
            raise BundleError(f"{name} is listed in the manifest but missing")
        if sha256_file(out / name) != digest:
            raise BundleError(f"{name} does not match its hash in the manifest: the bundle was changed")
    stages = manifest["request"]["stages"]
    seen = set()
    for k, entry in enumerate(manifest["items"]):
        if entry["id"] in seen:
            raise BundleError(f"manifest.json: items[{k}].id: item {entry['id']!r} appears twice")
        seen.add(entry["id"])
        for name in ["item.json", *[f"{s}.json" for s in stages]]:
            rel = f"items/{entry['id']}/{name}"
            if rel not in listed:
                raise BundleError(f"item {entry['id']} lacks {name}")
            section = read_json(out / rel)
            (check_item_record if name == "item.json" else check_section)(section, rel)
            for ref in _asset_refs(section):
                if ref not in listed:
                    raise BundleError(f"{rel} names asset {ref!r}, which is not in the bundle")
    return manifest
