"""HTTP basic auth for the API that refuses, rather than crashes on, credentials no account
can have, and that django-axes counts and locks out like the login page."""

from django.contrib.auth import get_user_model
from drf_spectacular.authentication import BasicScheme
from rest_framework import authentication, exceptions


def username_max_length() -> int:
    User = get_user_model()
    return User._meta.get_field(User.USERNAME_FIELD).max_length


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's basic auth, but a username or password with a NUL character is wrong
    credentials (401), not a server error: PostgreSQL refuses to compare text containing NUL,
    and no account is named with one (Django's forms refuse it). So is a name longer than any
    account's, which django-axes could not record (PostgreSQL refuses text over its column).

    django-axes is given Django's own request (DRF's wrapper would keep the lockout mark
    from its middleware, which answers the lockout with a 429 and its cool-off).

    It is the API's first authentication class, so a request without valid credentials is
    answered 401 with its challenge, ``WWW-Authenticate: Basic realm="MultiViz Studies API"``."""

    www_authenticate_realm = "MultiViz Studies API"

    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid or "\x00" in password or len(userid) > username_max_length():
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, getattr(request, "_request", request))


class BasicAuthenticationScheme(BasicScheme):
    """The schema documents it as HTTP basic auth, like DRF's own."""

    target_class = "annotations.authentication.BasicAuthentication"
