"""Pages. The engine demo, the bundles (precompute progress, assets, live second-order
gradients, the model debugging report) and the researcher's list of studies; a study's
results pages read answers, so they live with them (``annotations/views.py``)."""

import base64
import os
import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from viz_engine.bundles.folder import progress
from viz_engine.bundles.format import ASSET_TYPES, BundleError, asset_suffix, open_inside

from .demo import engine_demo_path, is_the_demos_own_browser, load_engine_demo, load_preparation
from .models import Bundle, BundleItem, DebuggingReport, Study
from .selectors import accessible_bundles, accessible_studies, debugging_page, debugging_state
from .services import LiveSOGThrottled, StudyError, live_second_order_gradient, start_debugging_report
from .throttle import live_sog_wait, too_many_word_sets


def engine_demo(request):
    """The home page: the engine demo, and while scripts/demo.sh prepares the demo in the
    background, what is being prepared, with each study's links as soon as it is ready."""
    demo = load_engine_demo()
    preparation = demo_preparation(request)
    return render(request, "studies/engine_demo.html", {"demo": demo, "preparation": preparation},
                  status=200 if demo or preparation else 503)


def demo_preparation(request) -> dict | None:
    """The demo's preparation (``load_preparation``) with the links of the studies it made:
    results for everyone (they ask for the login), invite links only for this machine's own
    browser in the demo (DEBUG), the console's audience."""
    state = load_preparation()
    if state is None:
        return None
    made = {s.pk: s for s in Study.objects.filter(pk__in=[pk for step in state["steps"] for pk in step["studies"]])}
    invites = is_the_demos_own_browser(request)
    for step in state["steps"]:
        step["links"] = [{"title": s.title, "results": reverse("studies:study-detail", args=[s.pk]),
                          "annotate": reverse("annotate:join", args=[s.invite_token]) if invites else None}
                         for pk in step["studies"] if (s := made.get(pk))]
    return state


@require_GET
def demo_progress(request):
    """The home page's card, refreshed while the demo is prepared (static/js/demo_progress.js)."""
    return JsonResponse({"preparation": demo_preparation(request), "engine_demo": engine_demo_path().exists()})


def bundle_folders(user) -> list[dict]:
    """The bundle folders under ``DATA_DIR/bundles`` with their precompute progress: those
    not imported yet (a precompute in progress), and the imported ones ``user`` may see."""
    base = Path(settings.DATA_DIR) / "bundles"
    imported = {b.path: b for b in accessible_bundles(user)}
    hidden = set(Bundle.objects.values_list("path", flat=True)) - set(imported)
    rows = []
    for folder in sorted(base.iterdir()) if base.exists() else []:
        if not folder.is_dir() or str(folder.resolve()) in hidden:
            continue
        done, total = progress(folder)
        bundle = imported.get(str(folder.resolve()))
        rows.append({"name": folder.name, "done": done, "total": total,
                     "finished": (folder / "manifest.json").exists(),
                     "imported": bundle.name if bundle else None})
    return rows


@login_required
def bundle_list(request):
    return render(request, "studies/bundles.html", {"folders": bundle_folders(request.user),
                                                    "bundles": accessible_bundles(request.user).select_related("owner")})


@login_required
@require_GET
def bundle_progress(request):
    return JsonResponse({"folders": bundle_folders(request.user)})


@login_required
@require_GET
def bundle_asset(request, pk: int, path: str):
    """A rendered asset of a bundle: only files its manifest lists."""
    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    if path not in bundle.manifest.get("files", {}) or not asset_suffix(path):
        raise Http404("no such asset in this bundle")
    return bundle_file_response(bundle.path, path, ASSET_TYPES[asset_suffix(path)], request=request)


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _byte_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """The one range ``header`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) asks for within
    ``size`` bytes, as (first, last) inclusive; None for no usable header (several ranges,
    another unit: the whole file is sent, as RFC 9110 allows); False when unsatisfiable."""
    m = RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # the last n bytes
        n = int(m.group(2))
        return (max(size - n, 0), size - 1) if n > 0 and size > 0 else False
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or (m.group(2) and int(m.group(2)) < first):
        return False
    return first, last


def _chunks(file, length: int):
    with file:
        while length > 0:
            block = file.read(min(CHUNK, length))
            if not block:
                return
            length -= len(block)
            yield block


def bundle_file_response(folder: str, path: str, content_type: str, filename: str | None = None, request=None):
    """The file ``path`` of a bundle folder, opened without following a symbolic link at any
    step (a link put into the folder after import is not followed to, say, /etc/passwd);
    ``filename`` (default: the file's own name) is the name its headers give. With the
    ``request``, a ``Range: bytes=…`` header gets its part (206; 416 when it lies outside the
    file): browsers seek in a video that way, which FileResponse does not do."""
    try:
        file = open_inside(folder, path)
    except FileNotFoundError:
        raise Http404("the asset is missing on the server") from None
    name = filename or Path(path).name
    header = request.headers.get("Range", "") if request is not None else ""
    size = os.fstat(file.fileno()).st_size
    wanted = _byte_range(header, size) if header else None
    if wanted is None:
        response = FileResponse(file, content_type=content_type, filename=name)
        response["Accept-Ranges"] = "bytes"
        return response
    if wanted is False:
        file.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    first, last = wanted
    file.seek(first)
    response = StreamingHttpResponse(_chunks(file, last - first + 1), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = content_disposition_header(False, name)
    return response


@login_required
@require_GET
def live_sog(request, pk: int, item_id: str):
    """``?positions=4,5``: the second-order gradient of those words over the image."""
    item = get_object_or_404(BundleItem, bundle__in=accessible_bundles(request.user), bundle_id=pk, item_id=item_id)
    raw = request.GET.get("positions", "")
    try:
        result = live_second_order_gradient(item, [p for p in raw.split(",") if p.strip()],
                                            throttle=lambda: live_sog_wait(request, f"user:{request.user.pk}"))
    except LiveSOGThrottled as exc:
        return too_many_word_sets(exc.wait)
    except BundleError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    payload = dict(result.result)
    payload["heatmap"] = "data:image/png;base64," + base64.b64encode(bytes(result.heatmap_png)).decode()
    return JsonResponse(payload)


@login_required
@require_GET
def study_list(request):
    studies = accessible_studies(request.user)
    return render(request, "studies/study_list.html", {"studies": studies})


def owned_study(request, pk):
    """The study if the logged-in researcher owns it or it is shared with them (or they are a
    superuser); 404 otherwise, so a researcher cannot even learn that another's study exists."""
    return get_object_or_404(accessible_studies(request.user), pk=pk)


def _bundle_sparse_model(bundle) -> dict:
    """The bundle's ``shared/P.json`` ({} when it has none or it cannot be read)."""
    import json

    try:
        with open_inside(Path(bundle.path), "shared/P.json") as fh:
            return json.load(fh)
    except (FileNotFoundError, ValueError):
        return {}


@login_required
@require_GET
def bundle_detail(request, pk: int):
    """What a bundle holds and how it was computed: its recipe and each stage's method and
    parameters, where P was fitted and its accuracy–sparsity curve."""
    from .stage_figures import sparsity_curve

    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    manifest = bundle.manifest
    recipe = manifest.get("recipe") or {"name": "default", "overrides": {}}
    sparse = _bundle_sparse_model(bundle)
    params = manifest.get("stages") or {}
    return render(request, "studies/bundle_detail.html", {
        "bundle": bundle, "recipe": recipe,
        "stages": [{"stage": s, "params": sorted(params.get(s, {}).items())} for s in bundle.stages],
        "p_fit": manifest.get("p_fit"), "items": len(manifest.get("items", [])),
        "curve": sparsity_curve(sparse["curve"], sparse.get("lambda")) if sparse.get("curve") else "",
        "sparse": sparse,
    })


@login_required
def bundle_debugging(request, pk: int):
    """The model debugging report of a bundle's model: start a run (a Celery task; in a
    thread of this process without a broker), watch its progress, read the latest report."""
    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    error = None
    if request.method == "POST":
        try:
            start_debugging_report(bundle, request.POST)
            return redirect("studies:bundle-debugging", pk=pk)
        except StudyError as exc:
            error = str(exc)
    page = debugging_page(bundle)
    page["form"].update(request.POST.items())  # what was typed stays on the page with its error
    return render(request, "studies/debugging.html", {"bundle": bundle, "error": error, **page},
                  status=400 if error else 200)


@login_required
@require_GET
def bundle_debugging_progress(request, pk: int):
    """The latest run's state, for the page to poll."""
    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    return JsonResponse(debugging_state(bundle.debugging_reports.first()))


@login_required
@require_GET
def bundle_debugging_asset(request, pk: int, name: str):
    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    finished = bundle.debugging_reports.filter(status=DebuggingReport.Status.DONE).first()
    names = {e["image"] for f in finished.result.get("features", []) for e in f["examples"]} if finished else set()
    if name not in names or not (finished.folder / name).is_file():
        raise Http404("no such image in this report")
    return FileResponse(open(finished.folder / name, "rb"), content_type="image/png")
