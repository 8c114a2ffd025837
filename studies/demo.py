"""Where the demo lives on disk and how the pages read it: the engine demo, and the state of
its preparation in the background (``manage.py prepare_demo``, started by scripts/demo.sh
while the server already answers)."""

import contextlib
import fcntl
import ipaddress
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


# -- the preparation ------------------------------------------------------------------------------

def preparation_path() -> Path:
    return Path(settings.DATA_DIR) / "demo" / "preparation.json"


@contextlib.contextmanager
def preparation_lock() -> Iterator[bool]:
    """Whether this process may prepare the demo: one at a time per data folder (a second
    scripts/demo.sh leaves the first's preparation alone). The kernel drops the lock when the
    process ends, however it ends, so an interrupted preparation never blocks the next."""
    path = preparation_path().with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class Step:
    """One part of the demo: ``run(report)`` makes it (reusing whatever is there already) and
    returns the studies it made; ``report(text)`` says what it is doing."""
    key: str
    title: str
    run: Callable[[Callable[[str], None]], list]


class Preparation:
    """The state file the home page reads: each step's status (waiting, running, ready,
    failed), what it is doing, and the studies it made. Written whole and atomically."""

    def __init__(self, steps: list[Step]):
        self.state = {"pid": os.getpid(), "started": time.time(), "finished": None,
                      "steps": [{"key": s.key, "title": s.title, "status": "waiting", "detail": "", "studies": [],
                                 "seconds": None} for s in steps]}
        self.write()

    def write(self) -> None:
        path = preparation_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, path)

    def update(self, index: int, **fields) -> None:
        self.state["steps"][index].update(fields)
        self.write()

    def finish(self) -> None:
        self.state["finished"] = time.time()
        self.write()


def prepare(steps: list[Step], log: Callable[[str], None] = print) -> list:
    """Run ``steps`` in order, recording their progress; a failed step is reported and the
    others still run. Returns every study made. The caller holds ``preparation_lock``."""
    prep = Preparation(steps)
    studies = []
    for i, step in enumerate(steps):
        t0 = time.perf_counter()
        prep.update(i, status="running")
        log(f"==> {step.title} …")
        try:
            made = step.run(lambda text, i=i: prep.update(i, detail=text))
        except Exception as exc:  # the rest of the demo still runs; the page and the console say why
            prep.update(i, status="failed", detail=str(exc) or type(exc).__name__)
            log(f"{step.title}: failed: {exc}")
            continue
        studies += made
        prep.update(i, status="ready", detail="", studies=[s.pk for s in made],
                    seconds=round(time.perf_counter() - t0, 1))
    prep.finish()
    return studies


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return isinstance(pid, int)
    return True


def load_preparation() -> dict | None:
    """The preparation's state as the page shows it, or None when none was started here;
    ``state`` is "preparing", "ready" or "interrupted" (its process ended before the end)."""
    try:
        state = json.loads(preparation_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if state.get("finished"):
        state["state"] = "ready"
    else:
        state["state"] = "preparing" if _alive(state.get("pid")) else "interrupted"
    steps = state.get("steps", [])
    state["ready"] = sum(s["status"] == "ready" for s in steps)
    state["total"] = len(steps)
    return state


def is_the_demos_own_browser(request) -> bool:
    """The browser of whoever started scripts/demo.sh: DEBUG on, a loopback connection, no
    proxy in front (the same machine the join limit lets through in the demo)."""
    if not settings.DEBUG or settings.MULTIVIZ_TRUSTED_PROXIES:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
