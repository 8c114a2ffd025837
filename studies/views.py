"""Pages. The engine demo, the bundles (precompute progress, assets, live second-order
gradients); the study pages come with the study platform."""

import base64
import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from viz_engine.bundles.format import BundleError, open_inside

from .demo import engine_demo_path, is_the_demos_own_browser, load_engine_demo, load_preparation
from .models import Bundle, BundleItem, Condition, Study
from .selectors import accessible_bundles, accessible_studies
from .services import LiveSOGThrottled, live_second_order_gradient
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
    from viz_engine.bundles.precompute import progress  # imports torch: not on every page's import path

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
    if path not in bundle.manifest.get("files", {}) or not path.endswith(".png"):
        raise Http404("no such asset in this bundle")
    return bundle_file_response(bundle.path, path, mimetypes.guess_type(path)[0] or "image/png")


def bundle_file_response(folder: str, path: str, content_type: str, filename: str | None = None) -> FileResponse:
    """The file ``path`` of a bundle folder, opened without following a symbolic link at any
    step (a link put into the folder after import is not followed to, say, /etc/passwd);
    ``filename`` (default: the file's own name) is the name its headers give."""
    try:
        file = open_inside(folder, path)
    except FileNotFoundError:
        raise Http404("the asset is missing on the server") from None
    return FileResponse(file, content_type=content_type, filename=filename or Path(path).name)


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


def _dashboard_plots(study, metrics: list[dict]) -> list[str]:
    from annotations.plots import interval_plot

    plots = []
    if study.task == Study.Task.SIMULATION:
        rows = [{"label": m["condition"], "value": m["accuracy"]["mean"],
                 "low": None if m["accuracy"]["mean"] is None else m["accuracy"]["mean"] - m["accuracy"]["std"],
                 "high": None if m["accuracy"]["mean"] is None else m["accuracy"]["mean"] + m["accuracy"]["std"]}
                for m in metrics]
        plots.append(interval_plot(rows, title="Accuracy against the model (mean ± std over annotators)",
                                   lo=0, hi=1, ticks=[0, .25, .5, .75, 1], fmt="{:.0%}"))
    else:
        rows = [{"label": m["condition"], "value": m["confidence"]["mean"],
                 "low": None if m["confidence"]["mean"] is None else m["confidence"]["mean"] - m["confidence"]["std"],
                 "high": None if m["confidence"]["mean"] is None else m["confidence"]["mean"] + m["confidence"]["std"]}
                for m in metrics]
        plots.append(interval_plot(rows, title="Confidence (mean ± std)", lo=1, hi=5, ticks=[1, 2, 3, 4, 5],
                                   fmt="{:.0f}"))
    rows = [{"label": m["condition"], "value": m["alpha"],
             "low": m["alpha_interval"][0] if m["alpha_interval"] else None,
             "high": m["alpha_interval"][1] if m["alpha_interval"] else None} for m in metrics]
    plots.append(interval_plot(rows, title="Krippendorff's α (bootstrap 95 % interval over items)", lo=-0.5, hi=1,
                               ticks=[-.5, 0, .5, 1]))
    return plots


@login_required
@require_GET
def study_detail(request, pk: int):
    from annotations.views import owned_study

    return _study_page(request, owned_study(request, pk))


def _study_page(request, study, error: str | None = None, status: int = 200):
    from annotations.exports import summary_rows
    from annotations.selectors import bonus_rows, condition_metrics, conditions_answers, item_agreement

    conditions = list(study.conditions.select_related("study"))
    answers = conditions_answers(conditions)  # read once; the figures come from the cache
    metrics = [condition_metrics(c, answers=a) for c, a in zip(conditions, answers)]
    rows = [{"c": c, "enrolled": m["enrolled"], "completed": m["completed"]} for c, m in zip(conditions, metrics)]
    invite = request.build_absolute_uri(reverse("annotate:join", args=[study.invite_token]))
    return render(request, "studies/study_detail.html", {
        "study": study, "conditions": rows, "invite": invite, "summary": summary_rows(study, metrics=metrics),
        "plots": _dashboard_plots(study, metrics),
        "agreement": [(c.name, item_agreement(c, answers=a)) for c, a in zip(conditions, answers)],
        "same_task_studies": accessible_studies(request.user).filter(task=study.task).order_by("-pk"),
        "enrolments": study.enrolments.select_related("condition", "exclusion_changed_by").order_by("pseudonym"),
        "error": error, "form": request.POST if error else {},
        "bonuses": bonus_rows(study) if study.task == Study.Task.SIMULATION else None,
    }, status=status)


@login_required
@require_POST
def study_exclusion(request, pk: int):
    """The study page's form: exclude an annotator from the metrics (or include them again),
    with a reason; a refusal is shown on the page with what was typed."""
    from annotations.views import owned_study

    from .services import StudyError, set_exclusion

    study = owned_study(request, pk)
    try:
        set_exclusion(study, request.POST.dict(), request.user)
    except StudyError as exc:
        return _study_page(request, study, error=str(exc), status=400)
    return redirect(reverse("studies:study-detail", args=[study.pk]) + "#exclusions")


@login_required
@require_GET
def study_monitor(request, pk: int):
    """Live figures (polled by the study page)."""
    from annotations.views import owned_study

    from .selectors import monitor

    return JsonResponse(monitor(owned_study(request, pk)))


@login_required
@require_GET
def study_compare(request, pk: int):
    """``?a=<condition id>&b=<condition id>``: permutation test of their accuracies."""
    from annotations.selectors import compare_conditions
    from annotations.views import owned_study

    study = owned_study(request, pk)
    try:
        a = study.conditions.get(pk=int(request.GET.get("a", "")))
        b = study.conditions.get(pk=int(request.GET.get("b", "")))
    except (ValueError, Condition.DoesNotExist):
        return JsonResponse({"error": "choose two conditions of this study"}, status=400)
    if study.task != Study.Task.SIMULATION:
        return JsonResponse({"error": "accuracy comparisons are for model-simulation studies"}, status=400)
    return JsonResponse(compare_conditions(a, b))


@login_required
@require_GET
def study_transfer(request, pk: int):
    """The whole study as one JSON document, to move it to another installation
    (``manage.py import_study``)."""
    from annotations.views import download_response, owned_study

    from .services import StudyError
    from .transfer import export_study_json

    study = owned_study(request, pk)
    try:
        body = export_study_json(study)
    except StudyError as exc:
        return HttpResponse(f"The study cannot be exported: {exc}", status=409,
                            content_type="text/plain; charset=utf-8")
    return download_response(body, "application/json; charset=utf-8", f"study-{pk}-whole.json")


@login_required
def bundle_debugging(request, pk: int):
    """The model debugging report of a bundle's model: start a run (a Celery task; in a
    thread of this process without a broker), watch its progress, read the latest report."""
    from django.shortcuts import redirect

    from .selectors import debugging_page
    from .services import StudyError, start_debugging_report

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
    from .selectors import debugging_state

    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    return JsonResponse(debugging_state(bundle.debugging_reports.first()))


@login_required
@require_GET
def bundle_debugging_asset(request, pk: int, name: str):
    from .models import DebuggingReport

    bundle = get_object_or_404(accessible_bundles(request.user), pk=pk)
    finished = bundle.debugging_reports.filter(status=DebuggingReport.Status.DONE).first()
    names = {e["image"] for f in finished.result.get("features", []) for e in f["examples"]} if finished else set()
    if name not in names or not (finished.folder / name).is_file():
        raise Http404("no such image in this report")
    return FileResponse(open(finished.folder / name, "rb"), content_type="image/png")
