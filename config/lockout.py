"""What a login gets while django-axes has its account or address locked out
(``AXES_LOCKOUT_CALLABLE``): a page in the browser, JSON from the API; both say how long."""

from axes.helpers import get_cool_off
from django.http import JsonResponse
from django.shortcuts import render


def lockout_message(minutes: int) -> str:
    return (f"Too many wrong passwords for this account or from this address: logins are refused for "
            f"{minutes} minutes after the last one, even with the right password. Wait, then try again, "
            f"or ask an administrator to lift the lockout (manage.py axes_reset_username NAME).")


def lockout_response(request, original_response=None, credentials=None):
    seconds = int(get_cool_off(request).total_seconds())
    minutes = max(1, round(seconds / 60))
    message = lockout_message(minutes)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "errors/locked_out.html", {"minutes": minutes, "message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response
