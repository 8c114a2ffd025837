"""Where the engine demo lives on disk and how the page reads it."""

import json
from pathlib import Path

from django.conf import settings


def engine_demo_path() -> Path:
    return Path(settings.DATA_DIR) / "demo" / "engine_demo.json"


def load_engine_demo() -> dict | None:
    """The demo written by ``manage.py engine_demo``, or None when it has not been built."""
    path = engine_demo_path()
    if not path.exists():
        return None
    return json.loads(path.read_text())
