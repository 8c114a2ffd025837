"""The annotator's pages: invite link → consent → instructions → practice (with feedback)
→ counted items → closing questions → done. Identified only by the enrolment token in the
URL (and a cookie that remembers it for the invite link); every step resumes on reload."""

import base64
import functools
import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from studies.asset_keys import asset_key_opens, asset_signature, key_version
from studies.models import CLOSING_QUESTIONS, Enrolment, Study, StudyItem
from studies.selectors import (allowed_assets, annotator_view, current_item, enrolment_by_token, feature_blocks,
                               item_asset_paths, map_assets, outcome_url)
from studies.stage_views import page_context
from studies.services import (
    CLARITY_SCALE,
    EnrolmentTaken,
    LiveSOGThrottled,
    StudyError,
    advance,
    asks_clarity,
    clean_pseudonym,
    decline,
    enrol,
    finish,
    live_second_order_gradient,
    repeat_practice,
    touch,
)
from studies.quality import answer_value, gate_status, is_right, known_answer
from studies.throttle import live_sog_wait, seconds_to_wait, too_many_word_sets
from studies.training import condition_cards, first_practice_item
from studies.views import bundle_file_response
from viz_engine.bundles.format import ASSET_TYPES, BundleError, asset_suffix

from .services import plausible_seconds, submit_response

COOKIE = "mvz_enrolment_{}"


def _sentence(exc) -> str:
    """A refusal's message as a sentence; unlike ``str.capitalize`` it keeps "NUL", "Blue"."""
    text = str(exc)
    return text[:1].upper() + text[1:] + "."


def _message(request, title, text, status):
    return render(request, "annotate/message.html", {"title": title, "text": text}, status=status)


def _enrolment(request, token) -> Enrolment:
    e = enrolment_by_token(token)
    if e is None:
        raise Http404("This link is not valid. Use the invite link you were given.")
    return e


def _not_found_as_a_page(view):
    """An annotator's page whose link names nothing (a mistyped token, an item not theirs)
    answers 404 with our page and the reason, also with DEBUG on (the demo), where Django
    would show its yellow debugging page to a participant."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Http404 as exc:
            return _message(request, "Link not valid", _sentence(exc).rstrip(".") + ".", 404)

    return wrapped


@require_GET
def join(request, invite):
    """A new enrolment, or the caller's own: the one their browser remembers (its cookie), or
    for a Prolific participant the one their study and session ids prove (see ``enrol``).
    A pseudonym alone opens nothing: exports, the monitor and the API show it."""
    # no invite has a NUL character, and PostgreSQL cannot compare one
    study = Study.objects.filter(invite_token=invite).first() if "\x00" not in invite else None
    if study is None:
        return _message(request, "Link not valid", "This invite link is not valid. Check that you copied all of it.", 404)
    # Prolific's ids as the link carries them, less any NUL (PostgreSQL stores no text with one)
    pid, prolific_study, session = (request.GET.get(k, "").replace("\x00", "")
                                    for k in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"))
    remembered = enrolment_by_token(request.COOKIES.get(COOKIE.format(study.pk), ""))
    # the same browser again: back to its enrolment, unless the link names someone else
    # (a shared computer), who gets their own
    if remembered is not None and remembered.study_id == study.pk \
            and clean_pseudonym(pid) in ("", remembered.pseudonym):
        return redirect("annotate:page", token=remembered.token)
    wait = _join_rate_limited(request)
    if wait:
        minutes = max(1, round(wait / 60))
        response = _message(request, "Please wait a little", "Many people have joined from your network in a short "
                            f"time. Open the link again in {minutes} minute{'s' if minutes > 1 else ''}. If you "
                            "are in a session with others, tell the researcher.", 429)
        response["Retry-After"] = str(wait)
        return response
    try:
        enrolment = enrol(study, pseudonym=pid, prolific_study_id=prolific_study, prolific_session_id=session)
    except EnrolmentTaken:
        return _message(request, "You have already started this study",
                        "This Prolific ID has started this study before. To continue where you left off, open the "
                        "study again from Prolific (its link carries your session) or in the browser you started "
                        "in. If that does not work, message the researcher on Prolific.", 403)
    except StudyError as exc:
        return _message(request, "Cannot join", _sentence(exc), 409)
    response = redirect("annotate:page", token=enrolment.token)
    # Secure whenever the page came over HTTPS, and always where the session cookie is (production)
    response.set_cookie(COOKIE.format(study.pk), enrolment.token, max_age=60 * 60 * 24 * 30, httponly=True,
                        samesite="Lax", secure=request.is_secure() or settings.SESSION_COOKIE_SECURE)
    return response


def client_address(request) -> str:
    """The participant's address: the connection's, or behind ``MULTIVIZ_TRUSTED_PROXIES``
    proxies the X-Forwarded-For entry the outermost trusted proxy saw (never one the client
    could write itself)."""
    proxies = settings.MULTIVIZ_TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _join_rate_limited(request) -> int:
    """Seconds to wait when this address has joined too often (0 when it may join). Off for
    this machine's own browser when the demo runs (DEBUG): trying a study in a few dozen
    private windows is the demo's use, not a crowd behind one address."""
    if settings.DEBUG and _is_loopback(client_address(request)):
        return 0
    return seconds_to_wait(request, "studies.join", client_address(request), settings.MULTIVIZ_JOIN_RATE)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # no address, or not one
        return False


def csrf_failure(request, reason=""):
    """An expired or missing form token (a page left open for hours, cookies blocked)."""
    return render(request, "annotate/message.html", {
        "title": "This page has expired",
        "text": "For your security the form could not be sent. Go back, reload the page and send it again; "
                "everything you answered before is saved. If this keeps happening, allow cookies for this site.",
    }, status=403)


def _asset_url(token, item_pk, path, version) -> str:
    key = asset_signature(token, item_pk, path, version)
    return f"{reverse('annotate:asset', args=[token, item_pk, path])}?key={key}"


def _with_urls(obj, token, item_pk):
    """The view with every asset name turned into this annotator's keyed asset URL."""
    version = key_version(token) or ""  # one cache read per page (none trusted while the cache is down)
    return map_assets(obj, lambda name: _asset_url(token, item_pk, name, version))


def _may_leave_to_completion(response, study):
    """Let this page's forms lead to the study's completion URL (e.g. Prolific): declining
    consent and finishing redirect there, and the Content-Security-Policy's form-action
    (the site only) holds for a form's redirects too. Only that URL's origin is added."""
    if study.completion_url:
        parts = urlsplit(study.completion_url)
        response._csp_update = {"form-action": [f"{parts.scheme}://{parts.netloc}"]}
    return response


@_not_found_as_a_page
@require_http_methods(["GET", "POST"])
def page(request, token):
    e = _enrolment(request, token)
    touch(e)
    steps = Enrolment.Step
    if request.method == "POST":
        # a form acts only on its own step: a double click's second POST (or a form sent
        # from an old tab) arriving after the step moved on must not skip the next step
        form = request.POST.get("form", "")
        if e.step == steps.CONSENT and form == "consent" and request.POST.get("agree") == "yes":
            advance(e, steps.CONSENT, steps.INSTRUCTIONS)
        elif e.step == steps.CONSENT and form == "consent" and request.POST.get("agree") == "no":
            decline(e)
            return redirect(outcome_url(e.study, "returned") or reverse("annotate:page", args=[token]))
        elif e.step == steps.INSTRUCTIONS and form == "instructions":
            advance(e, steps.INSTRUCTIONS, steps.ITEMS)
        elif e.step == steps.ITEMS and form == "repeat_practice":
            repeat_practice(e)
        elif e.step == steps.ITEMS and "item" in request.POST:
            return _answer(request, e)
        elif e.step == steps.CLOSING and form == "closing":
            try:
                finish(e, {k: request.POST.get(k, "") for k in CLOSING_QUESTIONS})
            except StudyError as exc:  # the page again, with what they wrote and what to change
                return _may_leave_to_completion(render(request, "annotate/closing.html", {
                    "e": e, "study": e.study, "error": _sentence(exc), "posted": request.POST,
                    "asks_clarity": asks_clarity(e), "scale": CLARITY_SCALE[1:]}, status=400), e.study)
            return redirect(outcome_url(e.study, "completed") or reverse("annotate:page", args=[token]))
        return redirect("annotate:page", token=token)
    context = {"e": e, "study": e.study}
    if e.step == steps.CONSENT:
        return _may_leave_to_completion(render(request, "annotate/consent.html", context), e.study)
    if e.step == steps.INSTRUCTIONS:
        return render(request, "annotate/instructions.html", {**context, "cards": _training_cards(e)})
    if e.step == steps.CLOSING:
        return _may_leave_to_completion(render(request, "annotate/closing.html", {
            **context, "asks_clarity": asks_clarity(e), "scale": CLARITY_SCALE[1:]}), e.study)
    if e.step == steps.DONE:
        context["completion_url"] = outcome_url(e.study, "completed")
        return render(request, "annotate/done.html", context)
    if e.step == steps.DECLINED:
        context.update(return_code=e.study.returned_code, return_url=outcome_url(e.study, "returned"))
        return render(request, "annotate/declined.html", context)
    if e.step == steps.SCREENED_OUT:
        context.update(last=e.practice_rounds[-1], code=e.study.screened_out_code,
                       url=outcome_url(e.study, "screened_out"))
        return render(request, "annotate/screened_out.html", context)
    if gate_status(e) == "retry":
        context.update(last=e.practice_rounds[-1], rounds_left=e.study.gate_attempts - len(e.practice_rounds))
        return render(request, "annotate/gate.html", context)
    return _item_page(request, e)


def _training_cards(e) -> list[dict]:
    """The cards of the annotator's condition, their worked examples drawn on the first
    practice item as this annotator will see it (``studies.training``)."""
    practice = first_practice_item(e)
    example = _with_urls(annotator_view(e, practice), e.token, practice.pk) if practice else None
    return condition_cards(e.study, e.condition.stages, example)


def _progress(e):
    order = e.item_order
    practice = e.study.items.filter(pk__in=order, is_practice=True).count()
    return {"practice_total": practice, "counted_total": len(order) - practice,
            "counted_done": max(0, e.position - practice), "position": e.position}


def _item_page(request, e, error=None, status=200):
    item = current_item(e)
    if item is None:  # nothing left (an empty study): straight to the closing questions
        advance(e, Enrolment.Step.ITEMS, Enrolment.Step.CLOSING)
        return redirect("annotate:page", token=e.token)
    view = _with_urls(annotator_view(e, item), e.token, item.pk)
    return render(request, "annotate/item.html", {
        **page_context(view),  # the stages' partials per page (studies.stage_views)
        "e": e, "study": e.study, "view": view, "feature_blocks": feature_blocks(view), "error": error,
        "progress": _progress(e), "posted": request.POST if error else {},
    }, status=status)


def _page_clock(value) -> float | None:
    """The seconds the item page measured, or None when it cannot vouch for them (a tab left
    open for more than a week, a tampered field): the annotator never typed it, so it is
    never a reason to refuse their answer."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 and plausible_seconds(seconds) else None


def _answer(request, e):
    try:
        item_pk = int(request.POST.get("item", ""))
    except ValueError:
        return _item_page(request, e, "The answer did not say which item it was for; answer again.", 400)
    fields = (*e.study.task_spec.answer_fields, "confidence", "helpful_page")
    answer = {k: request.POST.get(k) for k in fields}
    answer["seconds_on_item"] = _page_clock(request.POST.get("seconds_on_item"))
    try:
        response, _ = submit_response(e, item_pk, answer)
    except StudyError as exc:
        if str(exc).startswith("the study is closed"):
            return _message(request, "The study is closed", "Thank you: your answers so far are saved.", 409)
        return _item_page(request, e, _sentence(exc), 400)
    if response.is_practice:
        return redirect("annotate:feedback", token=e.token, item_pk=item_pk)
    return redirect("annotate:page", token=e.token)


@_not_found_as_a_page
@require_GET
def feedback(request, token, item_pk):
    """After a practice item: the right answer (it never counts), the annotator's own, and
    the item again as their condition showed it, to see what the explanations pointed to."""
    e = _enrolment(request, token)
    response = e.responses.filter(item_id=item_pk, is_practice=True).select_related("item__bundle_item").first()
    if response is None:
        raise Http404("no practice answer to show")
    task, item = e.study.task, response.item
    view = _with_urls(annotator_view(e, item), e.token, item.pk)
    return render(request, "annotate/feedback.html", {
        **page_context(view), "view": view, "feature_blocks": feature_blocks(view), "review": True,
        "e": e, "study": e.study, "response": response, "model_answer": item.bundle_item.prediction,
        "expected": known_answer(item, task), "given": answer_value(response, task),
        "right": is_right(item, response, task)})


def _item_of(e, item_pk):
    if item_pk not in e.item_order:
        raise Http404("not an item of this enrolment")
    return e.study.items.select_related("bundle_item__bundle").defer("bundle_item__bundle__manifest").get(pk=item_pk)


# (item, everything of the condition and study that annotator_view reads) -> (bundle folder,
# allowed asset names). Bundle items never change and a study's items are fixed once anyone
# enrols, so an entry is never stale; a page of a dozen images costs one query each, not a
# reparse of the item's sections each.
_ASSET_PERMISSIONS: dict[tuple, tuple[str, frozenset]] = {}
_ASSET_PERMISSIONS_MAX = 4096


def _asset_permissions(e, item_pk) -> tuple[str, frozenset]:
    c = e.condition
    key = (item_pk, e.study.task, c.pk, tuple(c.stages), c.rg_highlights, c.live_sog, c.ask_helpful_page,
           c.global_feature_ids)
    found = _ASSET_PERMISSIONS.get(key)
    if found is None:
        item = _item_of(e, item_pk)
        found = (item.bundle_item.bundle.path, frozenset(allowed_assets(e, item)))
        if len(_ASSET_PERMISSIONS) >= _ASSET_PERMISSIONS_MAX:
            _ASSET_PERMISSIONS.clear()
        _ASSET_PERMISSIONS[key] = found
    return found


# study item -> its bundle's folder and every asset name it has; fixed once the item exists
_BUNDLE_FOLDERS: dict[int, tuple[str, dict[str, str]]] = {}


def _bundle_folder(item_pk: int) -> tuple[str, dict[str, str]]:
    found = _BUNDLE_FOLDERS.get(item_pk)
    if found is None:
        item = (StudyItem.objects.select_related("bundle_item__bundle").defer("bundle_item__bundle__manifest")
                .filter(pk=item_pk).first())
        if item is None:
            raise Http404("no such item")
        if len(_BUNDLE_FOLDERS) >= _ASSET_PERMISSIONS_MAX:
            _BUNDLE_FOLDERS.clear()
        found = _BUNDLE_FOLDERS[item_pk] = (item.bundle_item.bundle.path, item_asset_paths(item))
    return found


def forget_asset_permissions() -> None:
    """Empty both in-process caches (for tests, whose rolled-back ids are given out again)."""
    _ASSET_PERMISSIONS.clear()
    _BUNDLE_FOLDERS.clear()


@require_GET
def asset(request, token, item_pk, path):
    """One image of an item page, by its opaque name (``path``). A URL with its key (as the page links it) is served at
    once, a dozen per page; without the key the enrolment and condition are checked."""
    key = request.GET.get("key", "")
    if not (key and asset_key_opens(key, token, item_pk, path)):
        e = _enrolment(request, token)
        if item_pk not in e.item_order:
            raise Http404("not an item of this enrolment")
        if path not in _asset_permissions(e, item_pk)[1]:
            raise Http404("no such asset")
    folder, paths = _bundle_folder(item_pk)
    if path not in paths:
        raise Http404("no such asset")
    # served under its opaque name: neither the URL nor the headers name the bundle's file
    response = bundle_file_response(folder, paths[path], ASSET_TYPES.get(asset_suffix(path), "image/png"),
                                    filename=path, request=request)
    response["Cache-Control"] = "private, max-age=86400"  # fixed content: the browser need not ask again
    return response


@require_GET
def live_sog(request, token, item_pk):
    e = _enrolment(request, token)
    item = _item_of(e, item_pk)
    if not annotator_view(e, item)["live_sog"]:
        return JsonResponse({"error": "your group does not use this tool"}, status=403)
    try:
        result = live_second_order_gradient(item.bundle_item,
                                            [p for p in request.GET.get("positions", "").split(",") if p.strip()],
                                            throttle=lambda: live_sog_wait(request, f"enrolment:{e.pk}"))
    except LiveSOGThrottled as exc:
        return too_many_word_sets(exc.wait)
    except BundleError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"words": result.result["words"], "top_boxes": result.result["top_boxes"],
                         "boxes": result.result["boxes"],
                         "heatmap": "data:image/png;base64," + base64.b64encode(bytes(result.heatmap_png)).decode()})
