"""The platform at size (issue 18, point 5): the results page and the metrics API of two study
sizes, the streamed exports of 10,000 responses, and α with its bootstrap interval on 200
annotators × 200 items.

    .venv/bin/python -m benchmarks.platform_size [--repeats 10] [--out benchmarks/results/platform_size.json]

Everything runs in a scratch SQLite database in a temporary folder (never the project's own
database, never a shared server) with the in-process cache. Studies are built with
``bulk_create``; their bundle items carry stage sections (about 15 kB of JSON each). Each figure is
the median of ``--repeats`` requests through Django's test client, in wall time and, beside
it, the process's CPU time (on a shared machine the wall time also counts the waits for a
core). *Cold* clears the cache before every request (α and its interval computed); *warm*
repeats a request after one has filled the cache (what a researcher reloading the page gets
until an answer changes). A cached answer that differs from the computed one stops the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SIZES = [  # (name, conditions, annotators per condition, counted items)
    ("7 conditions × 100 annotators × 20 items", 7, 100, 20),
    ("5 conditions × 15 annotators × 100 items", 5, 15, 100),
]
EXPORT_SIZE = ("export: 5 conditions × 100 annotators × 20 items = 10,000 responses", 5, 100, 20)
ALPHA_SIZE = (200, 200)  # annotators × items
CLASSES = ["red", "blue", "green", "yellow"]
TARGET_PAGE_MS = 300
TARGET_ALPHA_S = 2.0


def setup_django(folder: Path) -> None:
    os.environ["MULTIVIZ_DATA_DIR"] = str(folder)
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"  # scratch, deleted afterwards
    os.environ.pop("CACHE_URL", None)  # in-process cache: never a shared server
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _record(rng) -> dict:
    return {"datapoint": {"question": "what colour is the large shape?", "tokens": ["what", "colour", "is", "the",
                                                                                    "large", "shape", "?"]},
            "probabilities": [round(float(p), 4) for p in rng.dirichlet(np.ones(4))]}


def _sections(rng) -> dict:
    """Stage sections of some size, about 15 kB of JSON (attributions over 196
    patches and the question's words, 5 features with 3 + 3 datapoints)."""
    weights = lambda n: [round(float(w), 4) for w in rng.normal(size=n)]  # noqa: E731
    return {"U": {"image": weights(196), "text": weights(7)}, "C": {"sog": weights(196), "words": [4, 5]},
            "Rl": {"features": [{"feature": f, "image": weights(196), "text": weights(7)} for f in range(5)]},
            "Rg": {"features": [{"feature": f, "max": [{"image": f"rg/{f}-{k}.png", "text_highlights": weights(7)}
                                                       for k in range(3)],
                                 "min": [{"image": f"rg/{f}-m{k}.png", "text_highlights": weights(7)}
                                         for k in range(3)]} for f in range(5)]}}


def build_study(owner, name: str, n_conditions: int, n_annotators: int, n_items: int, seed: int):
    """A model-simulation study (one practice item) with every annotator answering every item:
    each answer is the model's prediction with probability 0.6, else a random choice."""
    from django.utils import timezone as tz

    from annotations.models import Response
    from studies.models import Bundle, BundleItem, Condition, Enrolment, Study, StudyItem

    rng = np.random.default_rng(seed)
    bundle = Bundle.objects.create(name=name, path="/nowhere", manifest_sha256=f"{seed:064d}", dataset="shapes_vqa",
                                   model="shapes_vqa_early", task="simulation", stages=["U", "C"],
                                   class_names=CLASSES, manifest={})
    study = Study.objects.create(owner=owner, title=name, task=Study.Task.SIMULATION, bundle=bundle,
                                 status=Study.Status.OPEN)
    bundle_items = BundleItem.objects.bulk_create([
        BundleItem(bundle=bundle, item_id=f"i{k}", position=k, label=CLASSES[k % 4], prediction=CLASSES[(k * 7) % 4],
                   correct=k % 4 == (k * 7) % 4, record=_record(rng), sections=_sections(rng))
        for k in range(n_items + 1)])
    items = StudyItem.objects.bulk_create([
        StudyItem(study=study, bundle_item=bi, choices=CLASSES, is_practice=k == 0, order=k)
        for k, bi in enumerate(bundle_items)])
    conditions = Condition.objects.bulk_create([
        Condition(study=study, name=f"condition {c}", stages=["U", "C"][: 1 + c % 2], target_size=n_annotators)
        for c in range(n_conditions)])
    now = tz.now()
    enrolments = Enrolment.objects.bulk_create([
        Enrolment(study=study, condition=c, pseudonym=f"{c.pk}-{a}", item_order=[i.pk for i in items],
                  position=len(items), step=Enrolment.Step.DONE, completed_at=now)
        for c in conditions for a in range(n_annotators)])
    responses = []
    for e in enrolments:
        for k, item in enumerate(items):
            right = rng.random() < 0.6
            choice = item.bundle_item.prediction if right else CLASSES[int(rng.integers(4))]
            responses.append(Response(enrolment=e, item=item, is_practice=k == 0, choice=choice,
                                      confidence=int(rng.integers(1, 6)), seconds_on_item=float(rng.uniform(3, 40))))
    Response.objects.bulk_create(responses, batch_size=2000)
    return study


def _median_ms(times: list[float]) -> float:
    return round(1000 * statistics.median(times), 1)


class Disagreement(AssertionError):
    """Two ways of serving the same figures gave different answers: no time is reported."""


_PER_REQUEST = re.compile(rb'(nonce|name="csrfmiddlewaretoken" value|csrf-token" content)="[^"]*"')


def time_get(client, url: str, repeats: int, *, cold: bool, same_body: bool = True) -> dict:
    """Median wall time of ``repeats`` GETs of ``url`` (cold: the cache emptied before each),
    and the body every one of them answered (they must all be the same)."""
    from django.core.cache import cache

    times, cpu, bodies = [], [], set()
    if not cold:
        cache.clear()
        assert client.get(url).status_code == 200  # the request that fills the cache
    for _ in range(repeats):
        if cold:
            cache.clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        assert response.status_code == 200 and body, url
        bodies.add(_PER_REQUEST.sub(rb"\1=''", body))  # what differs per request by design
    if same_body and len(bodies) != 1:
        raise Disagreement(f"{url} answered {len(bodies)} different bodies")
    return {"median_ms": _median_ms(times), "min_ms": round(1000 * min(times), 1), "cpu_median_ms": _median_ms(cpu),
            "repeats": repeats,
            "body": bodies.pop()}


def time_export(client, url: str, repeats: int) -> dict:
    """Wall time to the first chunk and to the last byte, and whether the response streams."""
    from django.core.cache import cache

    first, total, size, streamed = [], [], 0, False
    for _ in range(repeats):
        cache.clear()
        start = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, url
        streamed = response.streaming
        if streamed:
            chunks = iter(response.streaming_content)
            head = next(chunks)
            first.append(time.perf_counter() - start)
            size = len(head) + sum(len(c) for c in chunks)
        else:
            first.append(time.perf_counter() - start)
            size = len(response.content)
        total.append(time.perf_counter() - start)
    return {"streamed": streamed, "first_chunk_ms": _median_ms(first), "total_ms": _median_ms(total),
            "bytes": size, "repeats": repeats}


def time_alpha(repeats: int, alpha_size: tuple[int, int] = ALPHA_SIZE) -> dict:
    """α with its bootstrap interval on a random annotators × items matrix (4 choices)."""
    from annotations.selectors import ALPHA_RESAMPLES, agreement

    n_annotators, n_items = alpha_size
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, n_items)
    values = np.where(rng.random((n_annotators, n_items)) < 0.5, truth, rng.integers(0, 4, (n_annotators, n_items)))
    answers = {(f"a{a}", f"i{i}"): int(values[a, i]) for a in range(n_annotators) for i in range(n_items)}
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = agreement(answers)
        times.append(time.perf_counter() - start)
    return {"annotators": n_annotators, "items": n_items, "resamples": ALPHA_RESAMPLES,
            "median_s": round(statistics.median(times), 3), "repeats": repeats, "alpha": result["alpha"],
            "alpha_interval": result["alpha_interval"]}


def versions() -> dict:
    import django
    import numpy
    import scipy

    from django.db import connection

    # the database the figures were measured on: the scratch SQLite when run as a command,
    # the test database (SQLite or PostgreSQL) when the tests run it
    database = (f"sqlite {connection.Database.sqlite_version}" if connection.vendor == "sqlite"
                else f"{connection.vendor} (driver {connection.Database.__version__.split()[0]})")
    return {"python": platform.python_version(), "django": django.get_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "database": database}


def git_commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run(repeats: int, sizes=SIZES, export_size=EXPORT_SIZE, alpha_size=ALPHA_SIZE) -> dict:
    """Every figure; raises :class:`Disagreement` if a cached page or API answer differs from
    the one computed with an empty cache."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    owner = User.objects.create_user("bench-owner")
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
           "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count()},
           "versions": versions(), "database": "SQLite (scratch file)", "cache": "Django locmem",
           "targets": {"page_and_api_median_ms": TARGET_PAGE_MS, "alpha_200x200_s": TARGET_ALPHA_S},
           "sizes": [], "exports": {}}
    for seed, (name, n_conditions, n_annotators, n_items) in enumerate(sizes, start=1):
        study = build_study(owner, name, n_conditions, n_annotators, n_items, seed)
        row = {"size": name, "conditions": n_conditions, "annotators_per_condition": n_annotators,
               "items": n_items, "responses": n_conditions * n_annotators * (n_items + 1)}
        for label, url in (("page", f"/studies/{study.pk}/"), ("api", f"/api/studies/{study.pk}/metrics/")):
            row[f"{label}_cold"] = time_get(client, url, repeats, cold=True)
            row[f"{label}_warm"] = time_get(client, url, repeats, cold=False)
            if row[f"{label}_cold"].pop("body") != row[f"{label}_warm"].pop("body"):
                raise Disagreement(f"{url}: the cached answer differs from the computed one")
            with CaptureQueriesContext(connection) as queries:
                client.get(url)
            row[f"{label}_warm"]["queries"] = len(queries)
            print(f"{name} · {label}: cold {row[f'{label}_cold']['median_ms']} ms, "
                  f"warm {row[f'{label}_warm']['median_ms']} ms (CPU {row[f'{label}_warm']['cpu_median_ms']} ms, "
                  f"{len(queries)} queries)", flush=True)
        # the live monitor the page polls every 5 s (nothing of it is cached)
        row["monitor"] = time_get(client, f"/studies/{study.pk}/monitor.json", repeats, cold=True, same_body=False)
        row["monitor"].pop("body")
        print(f"{name} · monitor: {row['monitor']['median_ms']} ms", flush=True)
        out["sizes"].append(row)
    name, n_conditions, n_annotators, n_items = export_size
    study = build_study(owner, name, n_conditions, n_annotators, n_items - 1, 99)  # + 1 practice = 20 per annotator
    out["exports"]["responses"] = n_conditions * n_annotators * n_items
    for label, url in (("responses_csv", f"/studies/{study.pk}/export.csv"),
                       ("annotators_csv", f"/studies/{study.pk}/annotators.csv"),
                       ("json", f"/studies/{study.pk}/export.json")):
        out["exports"][label] = time_export(client, url, min(3, repeats))
        print(f"export {label}: {out['exports'][label]}", flush=True)
    out["alpha"] = time_alpha(min(3, repeats), alpha_size)
    print(f"α {alpha_size[0]} × {alpha_size[1]} with its interval: {out['alpha']['median_s']} s", flush=True)
    out["meets_targets"] = {
        # the target is for the pages as a researcher reloads them: warm (α computed once per change)
        "page_and_api_warm": all(row[k]["median_ms"] < TARGET_PAGE_MS for row in out["sizes"]
                                 for k in ("page_warm", "api_warm")),
        "alpha": out["alpha"]["median_s"] < TARGET_ALPHA_S,
        "exports_streamed": out["exports"]["responses_csv"]["streamed"] and out["exports"]["annotators_csv"]["streamed"],
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--note", default="", help="kept in the JSON, e.g. which code was measured")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "platform_size.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="platform-size-") as folder:
        setup_django(Path(folder))
        result = run(args.repeats)
        result["note"] = args.note
        from django.db import connections

        connections.close_all()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
