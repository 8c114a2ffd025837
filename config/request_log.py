"""Logs a server error can be traced from: every request gets an id (in its response's
``X-Request-ID`` header and in every log record written while it runs), and records are
written to stderr as one JSON object per line (``LOGGING`` in settings).

The JSON comes from python-json-logger: it already turns tracebacks, ``extra`` fields and
values JSON cannot hold into fields, which a formatter of our own would have to redo."""

import contextvars
import logging
import re
import sys
import uuid

import sentry_sdk
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpResponseServerError, JsonResponse
from django.template.loader import render_to_string
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

HEADER = "X-Request-ID"
# an incoming id is kept only when it is a short token that cannot forge log lines or headers
SAFE_INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def request_id_for(request) -> str:
    """The proxy's id when it sent a safe one (so its logs and ours agree), else a new one."""
    incoming = request.headers.get(HEADER, "")
    return incoming if SAFE_INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """First in ``MIDDLEWARE``, so the id is set for everything else the request runs. It
    stays set until the response is finished: Django logs an error response only after the
    middleware has returned it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.id = request_id_for(request)
        current_request_id.set(request.id)
        if sentry_sdk.get_client().is_active():
            sentry_sdk.set_tag("request_id", request.id)
        response = self.get_response(request)
        response[HEADER] = request.id
        return response


@receiver(request_finished)
def forget_request_id(**kwargs):
    current_request_id.set(None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (None outside a request)."""

    def filter(self, record):
        record.request_id = current_request_id.get()
        return True


class JsonLogFormatter(JsonFormatter):
    """python-json-logger's formatter, leaving out the request object Django attaches to its
    records (its path is already in the message)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        super().__init__(*args, **kwargs)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is written (a handler made at start
    would keep writing to a stream that was replaced since)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def server_error(request):
    """``handler500``: the error page (JSON under /api/) gives the request id, so whoever saw
    it can quote it and the researcher finds the traceback in the log."""
    request_id = getattr(request, "id", None) or current_request_id.get()
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error: it is logged; quote this request id if you report it.",
                             "request_id": request_id}, status=500)
    return HttpResponseServerError(render_to_string("500.html", {"request_id": request_id}))
