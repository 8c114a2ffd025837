"""How the API reads request bodies, and refuses those it cannot read: as JSON with a
``detail`` like every other refusal of the API, never Django's HTML error page or a 500."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.views import exception_handler as drf_exception_handler


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested deeper than Python's parser recurses (``[[[[…``) is
    a 400, not the RecursionError it raises."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply; send an object of the documented "
                             "fields") from None


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


def exception_handler(exc, context):
    """DRF's handler, also answering Django's refusals of a body while the API reads it
    (too large, too many fields) in the API's JSON."""
    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge(f"the request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes the "
                           "API accepts; send less")
    elif isinstance(exc, SuspiciousOperation):  # e.g. more form fields than DATA_UPLOAD_MAX_NUMBER_FIELDS
        exc = ParseError(f"the request could not be read: {exc}")
    return drf_exception_handler(exc, context)
