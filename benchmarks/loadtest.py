"""A bounded load test: N annotators at once through whole studies, against the
production-style server (gunicorn, PostgreSQL, Redis) on loopback.

    python -m benchmarks.loadtest --annotators 50 100 200

It creates a scratch PostgreSQL database (dropped afterwards), builds a small bundle of the
early-fusion shapes-VQA model and a simulation study with the paper's seven conditions,
starts gunicorn on 127.0.0.1 with production settings, and lets N annotators join in one
burst (as a Prolific batch does) and answer every item, pausing ``--think`` seconds
between pages. Each annotator sends some answers twice (a double click). It prints
latencies (p50/p95/p99) of item pages, submits, joins and image assets, throughput, errors,
and then checks the database: lost answers, duplicated answers, group balance.

It only ever talks to the server it started on 127.0.0.1, and stops by itself: every
annotator has a deadline (``--timeout``) after which it is counted as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(database_url: str, cache_url: str, **extra) -> dict:
    """The environment of a production deployment behind one HTTPS proxy."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="127.0.0.1",
               DATABASE_URL=database_url, CACHE_URL=cache_url, MULTIVIZ_TRUSTED_PROXIES="1", **extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log: Path

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(env: dict, workers: int = 4, threads: int = 4, timeout: float = 60.0) -> Server:
    """gunicorn (threaded workers) on a free loopback port; returns once it answers."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="multiviz-gunicorn-", suffix=".log")[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning",
         # longer than a client keeps an idle connection (here 20 s), as a proxy in front
         # would be: otherwise a browser may send on a connection the server just closed
         "--keep-alive", "30"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Server(process, f"http://127.0.0.1:{port}", log)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


# -- one annotator, as a browser behind the proxy does it --------------------------------------------
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
ITEM_FIELD = re.compile(r'name="item" value="(\d+)"')
CHOICES = re.compile(r'name="choice" value="([^"]+)"')
IMAGES = re.compile(r'<img src="(/a/[^"]+)"')


@dataclass
class Reply:
    status_code: int
    location: str
    text: str


def proxied_headers(origin: str, address: str, url: str, cookies: dict[str, str]) -> dict:
    """A browser's request headers as the HTTPS proxy passes them on: the scheme and the
    client's address added, the Referer the https page the browser came from, and the
    cookies (kept by hand: production cookies are Secure and the loopback link is HTTP)."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": address, "Referer": origin + urlsplit(url).path}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return headers


def keep_cookies(cookies: dict[str, str], set_cookie_headers) -> None:
    for header in set_cookie_headers:
        name, _, rest = header.partition("=")
        cookies[name.strip()] = rest.split(";", 1)[0]


class Browser:
    """One annotator's browser behind the HTTPS proxy: its own cookies, its image cache, and
    the time of each request."""

    def __init__(self, session, base_url: str, address: str, timings: dict):
        self.session, self.address, self.timings = session, address, timings
        self.origin = "https://" + urlsplit(base_url).netloc  # what the browser sees through the proxy
        self.cookies: dict[str, str] = {}
        self.cached: set[str] = set()  # images already loaded (the server lets browsers keep them)

    async def request(self, kind: str, method: str, url: str, data=None) -> Reply:
        """One request, timed under ``kind`` until its whole body has arrived (redirects
        are not followed)."""
        start = time.perf_counter()
        headers = proxied_headers(self.origin, self.address, url, self.cookies)
        async with self.session.request(method, url, data=data, headers=headers, allow_redirects=False) as response:
            body = await response.read()
        self.timings[kind].append(time.perf_counter() - start)
        keep_cookies(self.cookies, response.headers.getall("Set-Cookie", []))
        is_text = response.content_type.startswith("text/")
        return Reply(response.status, response.headers.get("Location", ""), body.decode() if is_text else "")


@dataclass
class Outcome:
    token: str = ""
    answered: set = field(default_factory=set)  # item pks the server accepted
    finished: bool = False
    errors: list = field(default_factory=list)


def _expect(response: Reply, *codes) -> Reply:
    if response.status_code not in codes:
        raise RuntimeError(f"the server answered {response.status_code}")
    return response


def _field(pattern, html: str, what: str) -> str:
    found = pattern.search(html)
    if found is None:
        title = re.search(r"<h1>(.*?)</h1>", html, re.S)
        raise RuntimeError(f"no {what} on the page {title.group(1).strip() if title else html[:200]!r}")
    return found.group(1)


async def annotate(out: Outcome, session, base_url: str, invite: str, k: int, think: float, double_click: float,
                   timings: dict, rng: random.Random):
    """Join, consent, read the instructions, answer every item (practice feedback included),
    answer the closing questions; ``out`` records how far it got."""
    browser = Browser(session, base_url, f"198.18.{k // 250}.{k % 250 + 1}", timings)

    async def pause():
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    joined = _expect(await browser.request("join", "GET", f"/join/{invite}/"), 302)
    page_url = joined.location
    out.token = page_url.rstrip("/").rsplit("/", 1)[-1]
    for step in ("consent", "instructions"):
        html = _expect(await browser.request("page", "GET", page_url), 200).text
        await pause()
        _field(CSRF_FIELD, html, step + " form")
        _expect(await browser.request("page", "POST", page_url, {**dict(HIDDEN.findall(html)), "agree": "yes"}), 302)
    while True:
        response = _expect(await browser.request("item page", "GET", page_url), 200)
        html = response.text
        item = ITEM_FIELD.search(html)
        if item is None:
            break  # the closing questions
        for src in dict.fromkeys(IMAGES.findall(html)):
            if src not in browser.cached:
                _expect(await browser.request("asset", "GET", src), 200)
                browser.cached.add(src)
        await pause()
        _field(CSRF_FIELD, html, "answer form")
        answer = {**dict(HIDDEN.findall(html)), "choice": rng.choice(CHOICES.findall(html)),
                  "seconds_on_item": f"{think:.1f}"}
        if 'name="helpful_page"' in html:
            answer["helpful_page"] = rng.choice(["overview", "features"])
        sends = 2 if rng.random() < double_click else 1
        for _ in range(sends):
            submitted = _expect(await browser.request("submit", "POST", page_url, answer), 302)
        out.answered.add(int(item.group(1)))
        if "/practice/" in submitted.location:
            _expect(await browser.request("page", "GET", submitted.location), 200)
            await pause()
    if 'name="clarity"' not in html:
        raise RuntimeError("after the last item the closing questions did not come")
    _expect(await browser.request("page", "POST", page_url, {**dict(HIDDEN.findall(html)), "clarity": "4"}), 302)
    done = _expect(await browser.request("page", "GET", page_url), 200).text
    if "Thank you!" not in done:
        raise RuntimeError("the closing answers did not finish the study")
    out.finished = True


async def drive(base_url: str, invite: str, n: int, think: float, double_click: float, timeout: float,
                seed: int = 0) -> tuple[list[Outcome], dict, float]:
    import aiohttp

    timings: dict[str, list[float]] = defaultdict(list)
    # one connection per browser and a few spare; each Browser keeps its own cookies
    connector = aiohttp.TCPConnector(limit=n + 10, keepalive_timeout=20)
    async with aiohttp.ClientSession(base_url, connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(k):
            rng = random.Random(seed * 100_003 + k)
            await asyncio.sleep(rng.uniform(0, 2.0))  # the burst: everyone within two seconds
            out = Outcome()
            try:
                await asyncio.wait_for(annotate(out, session, base_url, invite, k, think, double_click, timings, rng),
                                       timeout)
            except Exception as exc:  # an error for the report, never a crash of the run
                out.errors.append(f"{type(exc).__name__}: {exc}")
            return out

        async def warm(k):
            async with session.get(f"/join/warm-up-{k}/", headers={"X-Forwarded-Proto": "https"},
                                   allow_redirects=False) as response:
                await response.read()

        # warm every worker thread up (imports, database connections), as a server that has
        # been running before the invitations went out would be
        await asyncio.gather(*(warm(k) for k in range(64)))
        start = time.perf_counter()
        outcomes = await asyncio.gather(*(one(k) for k in range(n)))
        elapsed = time.perf_counter() - start
    return outcomes, timings, elapsed


# -- setting up and checking ------------------------------------------------------------------------
def create_scratch_database(admin_url: str, name: str) -> str:
    import psycopg2

    parts = urlsplit(admin_url)
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return parts._replace(path="/" + name).geturl()


def drop_scratch_database(admin_url: str, name: str):
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def set_up_study(work: Path, n_items: int):
    """A bundle of ``n_items`` (the first is practice) and an open simulation study with the
    paper's seven conditions, no cap on group sizes."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from studies.services import create_study, import_bundle
    from viz_engine.bundles.precompute import build_bundle

    call_command("migrate", verbosity=0)
    folder = work / "load-bundle"
    build_bundle(folder, dataset="shapes_vqa", model="shapes_vqa_early", n_items=n_items, seed=11)
    bundle = import_bundle(folder, name=f"load-{secrets.token_hex(3)}")
    owner, _ = User.objects.get_or_create(username="load-researcher")
    study = create_study(owner, bundle, title="Load test", practice=1, group_size=0, open_now=True)
    return study


def check_database(study, outcomes: list[Outcome]) -> dict:
    """What the database holds against what the server accepted."""
    from collections import Counter

    from django.db.models import Count

    from annotations.models import Response
    from studies.models import Enrolment

    saved = defaultdict(set)
    for token, item in Response.objects.filter(enrolment__study=study).values_list("enrolment__token", "item_id"):
        saved[token].add(item)
    lost = sum(len(o.answered - saved.get(o.token, set())) for o in outcomes if o.token)
    duplicated = (Response.objects.filter(enrolment__study=study).values("enrolment", "item")
                  .annotate(n=Count("id")).filter(n__gt=1).count())
    sizes = Counter(Enrolment.objects.filter(study=study).values_list("condition__name", flat=True))
    return {"answers_accepted": sum(len(o.answered) for o in outcomes),
            "answers_saved": Response.objects.filter(enrolment__study=study).count(),
            "lost": lost, "duplicated": duplicated, "enrolled": sum(sizes.values()),
            "group_sizes": dict(sorted(sizes.items())),
            "group_spread": (max(sizes.values()) - min(sizes.values())) if sizes else 0,
            "completed": Enrolment.objects.filter(study=study, completed_at__isnull=False).count()}


def percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"n": 0}
    ms = np.asarray(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1)}


def run_level(base_url, study, n, args) -> dict:
    outcomes, timings, elapsed = asyncio.run(drive(base_url, study.invite_token, n, args.think, args.double_click,
                                                   args.timeout, seed=n))
    requests = sum(len(v) for v in timings.values())
    errors = [e for o in outcomes for e in o.errors]
    report = {"annotators": n, "seconds": round(elapsed, 1), "requests": requests,
              "throughput_rps": round(requests / elapsed, 1),
              "finished": sum(o.finished for o in outcomes), "errors": len(errors), "error_examples": errors[:5],
              **{f"latency_{kind.replace(' ', '_')}": percentiles(timings[kind])
                 for kind in ("item page", "submit", "join", "page", "asset")},
              **check_database(study, outcomes)}
    return report


def print_report(r: dict):
    print(f"\n== {r['annotators']} annotators: {r['seconds']} s, {r['requests']} requests, "
          f"{r['throughput_rps']} requests/s, finished {r['finished']}/{r['annotators']}, errors {r['errors']}")
    for kind in ("item_page", "submit", "join", "page", "asset"):
        p = r[f"latency_{kind}"]
        if p["n"]:
            print(f"   {kind:<10} n={p['n']:>6}  p50 {p['p50_ms']:>7.1f} ms  p95 {p['p95_ms']:>7.1f} ms  "
                  f"p99 {p['p99_ms']:>7.1f} ms  max {p['max_ms']:>7.1f} ms")
    print(f"   answers accepted {r['answers_accepted']}, saved {r['answers_saved']}, lost {r['lost']}, "
          f"duplicated {r['duplicated']}; groups {r['group_sizes']} (spread {r['group_spread']})")
    for e in r["error_examples"]:
        print(f"   error: {e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--think", type=float, default=5.0,
                        help="mean seconds an annotator spends on a page (uniform, ±50%%; default 5: the paper's "
                             "annotators took minutes per item, so this is many times the real pace)")
    parser.add_argument("--double-click", type=float, default=0.1, help="share of answers sent twice (default 0.1)")
    parser.add_argument("--items", type=int, default=11, help="items in the study, the first practice (default 11)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each annotator may take (default 300)")
    parser.add_argument("--postgres", default=os.environ.get("LOADTEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server to create the scratch database on")
    parser.add_argument("--redis", default=os.environ.get("LOADTEST_REDIS", "redis://127.0.0.1:6379/2"),
                        help="the Redis database the server's cache (join rate limit) uses")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    scratch = f"multiviz_loadtest_{os.getpid()}"
    database_url = create_scratch_database(args.postgres, scratch)
    os.environ["DATABASE_URL"], os.environ["CACHE_URL"] = database_url, args.redis
    os.environ.pop("CELERY_BROKER_URL", None)  # the flow needs no worker; set-up runs in-process
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connections

    from studies.models import Study

    reports, server = [], None
    try:
        with tempfile.TemporaryDirectory() as work:
            print(f"==> scratch database {scratch}; building a {args.items}-item bundle and the study")
            study = set_up_study(Path(work), args.items)
            connections.close_all()
            env = production_env(database_url, args.redis, MULTIVIZ_DATA_DIR=str(Path(work) / "data"))
            server = start_server(env, workers=args.workers, threads=args.threads)
            print(f"==> gunicorn at {server.base_url} ({args.workers} workers × {args.threads} threads), "
                  f"think time {args.think} s, double clicks {args.double_click:.0%}")
            for n in args.annotators:
                cache.clear()  # a fresh rate-limit window per level
                level_study = study if not reports else Study.objects.get(pk=_copy_study(study).pk)
                report = run_level(server.base_url, level_study, n, args)
                print_report(report)
                reports.append(report)
    finally:
        if server:
            server.stop()
        connections.close_all()
        if not args.keep:
            drop_scratch_database(args.postgres, scratch)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2))
    bad = [r for r in reports if r["errors"] or r["lost"] or r["duplicated"] or r["group_spread"] > 1]
    return 1 if bad else 0


def _copy_study(study):
    """A fresh open study over the same bundle for the next level (every level starts empty)."""
    from studies.services import create_study

    return create_study(study.owner, study.bundle, title=f"Load test {secrets.token_hex(2)}", practice=1,
                        group_size=0, open_now=True)


if __name__ == "__main__":
    sys.exit(main())
