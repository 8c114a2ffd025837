"""Rate limits, counted in the shared cache by django-ratelimit (fixed windows): joining a
study per client address, and new live second-order gradients per enrolment (and per
researcher on the bundle pages)."""

import logging

from django.http import JsonResponse
from django_ratelimit.core import get_usage

log = logging.getLogger(__name__)


def seconds_to_wait(request, group: str, key: str, rate: str) -> int:
    """Counts one use of ``group`` by ``key`` and returns the seconds until it may be used
    again when that was one too many at ``rate`` (e.g. ``"10/m"``), else 0. If the cache is
    down the use goes through (logged): turning people away would cost more than a missing
    limit for a moment."""
    try:
        usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=rate, increment=True)
    except Exception as exc:  # the cache backend's own connection errors (Redis down, …)
        log.warning("%s rate limit skipped, the cache is unavailable: %s", group, exc)
        return 0
    if usage is None or not usage["should_limit"]:
        return 0
    return max(1, usage["time_left"])


def live_sog_wait(request, who: str) -> int:
    """:func:`seconds_to_wait` for one more new word set by ``who`` (an enrolment or a researcher)."""
    from django.conf import settings

    return seconds_to_wait(request, "studies.live_sog", who, settings.MULTIVIZ_LIVE_SOG_RATE)


def too_many_word_sets(wait: int) -> JsonResponse:
    """The answer to one new word set too many, as the item page shows it."""
    response = JsonResponse({"error": f"You asked for many new word sets in a short time. Wait {wait} seconds, then "
                                      "press Show again; word sets you have seen already show at once.",
                             "retry_after": wait}, status=429)
    response["Retry-After"] = str(wait)
    return response
