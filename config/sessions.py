"""Django's database sessions, refusing a session key with a NUL character as it refuses a
short one: PostgreSQL cannot compare text containing NUL, so a forged cookie was a server
error on every page that reads the session. ``SESSION_ENGINE = "config.sessions"``."""

from django.contrib.sessions.backends import db


class SessionStore(db.SessionStore):
    def _validate_session_key(self, key):
        return super()._validate_session_key(key) and "\x00" not in key
