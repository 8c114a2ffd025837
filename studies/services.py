"""Business rules that write: importing bundles, caching live second-order gradients."""

from pathlib import Path

from django.db import IntegrityError, transaction

from viz_engine.bundles.format import BundleError, read_json, sha256_file
from viz_engine.bundles.precompute import validate_bundle

from .models import Bundle, BundleItem, LiveSOGResult


def import_bundle(path, name: str | None = None) -> Bundle:
    """Validate the bundle at ``path`` and record it with its items, all or nothing.

    Raises :class:`BundleError` (nothing written) for a partial, malformed or tampered
    bundle, or one already imported.
    """
    root = Path(path).resolve()
    manifest = validate_bundle(root)
    digest = sha256_file(root / "manifest.json")
    name = name or root.name
    if Bundle.objects.filter(manifest_sha256=digest).exists():
        raise BundleError(f"this bundle is already imported as {Bundle.objects.get(manifest_sha256=digest).name!r}")
    if Bundle.objects.filter(name=name).exists():
        raise BundleError(f"a bundle named {name!r} already exists; import under another name")
    stages = manifest["request"]["stages"]
    items = []
    for position, entry in enumerate(manifest["items"]):
        folder = root / "items" / entry["id"]
        record = read_json(folder / "item.json")
        if record.get("id") != entry["id"]:
            raise BundleError(f"items/{entry['id']}/item.json names item {record.get('id')!r}")
        items.append(BundleItem(
            item_id=entry["id"], position=position, label=str(record["label"]),
            prediction=str(record["prediction"]), correct=bool(record["correct"]), feature=entry.get("feature"),
            record=record, sections={s: read_json(folder / f"{s}.json") for s in stages},
        ))
    try:
        with transaction.atomic():
            bundle = Bundle.objects.create(
                name=name, path=str(root), manifest_sha256=digest, dataset=manifest["dataset"]["name"],
                model=manifest["model"]["name"], task=manifest["task"], stages=stages,
                class_names=manifest["class_names"], manifest=manifest,
            )
            for item in items:
                item.bundle = bundle
            BundleItem.objects.bulk_create(items)
    except IntegrityError as exc:
        raise BundleError(f"the bundle could not be recorded: {exc}") from None
    return bundle


def live_second_order_gradient(item: BundleItem, positions, timeout: float = 30.0) -> LiveSOGResult:
    """The SOG of the words at ``positions`` of ``item``'s question over its image, computed
    by a worker that keeps the model loaded (in-process without a broker), cached per words."""
    from .tasks import live_sog

    tokens = item.record["datapoint"].get("tokens", [])
    try:
        wanted = sorted({int(p) for p in positions})
    except (TypeError, ValueError):
        raise BundleError("positions must be word positions (integers)") from None
    if not wanted:
        raise BundleError("pick at least one word")
    bad = [p for p in wanted if not 0 <= p < len(tokens)]
    if bad:
        raise BundleError(f"word positions {bad} are not words of this question (0–{len(tokens) - 1})")
    key = ",".join(map(str, wanted))
    cached = LiveSOGResult.objects.filter(item=item, positions=key).first()
    if cached:
        return cached
    bundle = item.bundle
    result = live_sog.delay(bundle.dataset, bundle.model, item.record["split"], item.record["index"], wanted)
    data = result.get(timeout=timeout)
    heat = bytes.fromhex(data.pop("heatmap_png"))
    obj, _ = LiveSOGResult.objects.get_or_create(item=item, positions=key,
                                                 defaults={"result": data, "heatmap_png": heat})
    return obj
