"""When the database cannot be reached (restarting, failing over, locked), say so and keep
the request's answer: the page lets the annotator send it again; the API says to retry."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
API_MESSAGE = ("The database is unavailable for a moment; nothing already saved is lost. "
               f"Send the request again in {RETRY_AFTER_SECONDS} seconds.")


def database_unavailable_response(request) -> HttpResponse:
    """A 503 that touches no database: JSON for the API, otherwise a page that repeats the
    request (a POST's fields are carried in the page's form, so the answer is not lost)."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": API_MESSAGE}, status=503)
    else:
        resend = request.method == "POST"
        fields = [(k, v) for k, values in request.POST.lists() if k != "csrfmiddlewaretoken" for v in values] \
            if resend else []
        html = render_to_string("errors/database_unavailable.html", {
            "resend": resend, "fields": fields, "action": request.get_full_path(),
            "csrf_token": get_token(request) if resend else "", "seconds": RETRY_AFTER_SECONDS,
        })
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            log.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
            return database_unavailable_response(request)
        return None
