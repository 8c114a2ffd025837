"""Precompute on real Celery workers (CI: the local Redis): a worker killed in the middle,
another started, the command run again: every item once, nothing missing, nothing redone."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from viz_engine.bundles.format import bundle_files, read_json
from viz_engine.bundles.precompute import progress, validate_bundle

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("CELERY_BROKER_URL", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not BROKER, reason="needs CELERY_BROKER_URL (CI sets the local Redis)"),
]


def _env(queue):
    return {**os.environ, "CELERY_TASK_DEFAULT_QUEUE": queue, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _start_worker(queue, log):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1", "--pool", "prefork",
         "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=ROOT, env=_env(queue), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _kill(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _precompute(out, queue, stall):
    return subprocess.Popen(
        [sys.executable, "manage.py", "precompute", "--items", "4", "--seed", "11", "--chunk", "1",
         "--out", str(out), "--stall-timeout", str(stall)],
        cwd=ROOT, env=_env(queue), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for(condition, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_is_replaced_and_the_bundle_finishes_exactly_once(tmp_path):
    queue = f"test-precompute-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "bundle"
    log = open(tmp_path / "workers.log", "w")
    first = _start_worker(queue, log)
    try:
        command = _precompute(out, queue, stall=20)
        _wait_for(lambda: progress(out)[0] >= 1, 240, "the first item")
        _kill(first)  # in the middle: one item done, the next one in the worker's hands
        done_before = progress(out)[0]
        assert done_before < 4
        # finished work: every file of a finished item, and every section written (an asset
        # written just before the kill, without its section, is rightly computed again)
        finished_items = {n.split("/")[1] for n in bundle_files(out) if n.endswith("/item.json")}
        finished_files = {n: (out / n).stat().st_mtime_ns for n in bundle_files(out)
                          if n.startswith("items/") and (n.split("/")[1] in finished_items or n.endswith(".json"))}
        output, _ = command.communicate(timeout=120)
        assert command.returncode != 0 and "Run the command again to resume" in output

        second = _start_worker(queue, log)
        try:
            again = _precompute(out, queue, stall=120)
            output, _ = again.communicate(timeout=300)
            assert again.returncode == 0, output
        finally:
            _kill(second)
    finally:
        _kill(first)
        log.close()

    manifest = validate_bundle(out)  # every listed file present and unchanged, no extra file
    assert len(manifest["items"]) == 4 and progress(out) == (4, 4)
    ids = [e["id"] for e in manifest["items"]]
    assert len(set(ids)) == 4
    for item_id in ids:
        assert read_json(out / "items" / item_id / "item.json")["id"] == item_id
    assert not list(out.rglob("*.tmp"))
    # what was finished before the kill was not computed again
    for name, mtime in finished_files.items():
        assert (out / name).stat().st_mtime_ns == mtime, name
