"""The platform's own 404 and 500 pages, for annotators and researchers alike, also with
DEBUG on (the demo runs with it), where Django would answer with its technical pages: a
participant who mistypes a link should not see the URL patterns, nor a traceback. The
traceback of a server error still goes to the console log, with the request id the page
shows."""

from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponseNotFound, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.utils.log import log_response

from .request_log import server_error

# Django's own answers to these are not its debugging pages' tracebacks worth hiding (a 403
# page, or a 400 the developer needs the reason of), so they keep them
_LEFT_TO_DJANGO = (PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def not_found(request, exception=None):
    """``handler404``: our page (JSON under /api/), whatever the reason."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponseNotFound(render_to_string("404.html", {}, request=request))


class FriendlyErrorPagesMiddleware:
    """With DEBUG off Django already answers with ``handler404``/``handler500``; with DEBUG on
    this answers with them too. Listed early, so its ``process_exception`` runs after the
    others' (a database that does not answer keeps its own page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            # no URL pattern matched: Django's technical page would list them all
            return not_found(request)
        return response

    def process_exception(self, request, exception):
        if not settings.DEBUG or isinstance(exception, _LEFT_TO_DJANGO):
            return None
        if isinstance(exception, Http404):
            return not_found(request, exception)
        signals.got_request_exception.send(sender=None, request=request)
        response = server_error(request)
        # what Django logs for an uncaught exception: the traceback, in the console log
        log_response("%s: %s", "Internal Server Error", request.path, response=response, request=request,
                     exception=exception)
        return response
