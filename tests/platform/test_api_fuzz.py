"""The REST API fuzzed from its own OpenAPI schema (schemathesis): no request, however
malformed, may get a server error (5xx).

The schema is loaded in-process from the WSGI application and every operation is called
with generated data, once as a logged-in researcher (HTTP basic auth) and once without
credentials. A fixture fills the database with studies the researcher owns (one running,
with annotators at every step and answers saved, one still a draft) and another
researcher's study. Random ids and tokens would almost always stop at a 404, so each
request is aimed at real objects: most generated path parameters and body fields that name
objects (ids, tokens, a bundle, an item, a class) are swapped for real ones, the fields
schemathesis is varying on purpose are left alone. The swaps are drawn from a generator
seeded by the request itself, and Hypothesis runs derandomized without an example
database, so every run on SQLite sends the same requests; on PostgreSQL the ids (never
reused) differ from run to run, and with them some of the requests.
"""

import base64
import random
import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches (and would keep its example database) in ./.hypothesis: not in the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "multiviz-hypothesis")

import pytest  # noqa: E402
import schemathesis  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core import signals  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance  # noqa: E402

from annotations.models import Response  # noqa: E402
from config.wsgi import application  # noqa: E402
from studies.models import Enrolment  # noqa: E402
from studies.selectors import current_item  # noqa: E402
from studies.services import enrol  # noqa: E402
from tests.platform.study_helpers import CLASSES, answer_all, make_study, start  # noqa: E402

pytestmark = pytest.mark.django_db

PASSWORD = "fuzz-researcher-password"
MAX_EXAMPLES = 25  # per operation and pass, besides schemathesis's coverage cases


def fuzz_settings(max_examples: int):
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def load_schema(*, generated_credentials: bool):
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    # the researcher's passes send real credentials, and no generated ones next to them
    loaded.config.generation.update(with_security_parameters=generated_credentials)
    return loaded


researcher_schema = load_schema(generated_credentials=False)
anonymous_schema = load_schema(generated_credentials=True)


# -- the database the requests meet --------------------------------------------------------------
class World:
    """Real objects, by what requests call them."""

    def __init__(self):
        self.researcher = None
        self.paths: dict[str, list] = {}  # path prefix -> real ids, the researcher's own first
        self.tokens: list[str] = []
        self.active: Enrolment | None = None  # the annotator in the middle of the items

    def path_values(self, path: str, name: str) -> list:
        if name == "token":
            return self.tokens
        return next((ids for prefix, ids in self.paths.items() if path.startswith(prefix)), [])

    def body_values(self, key: str) -> list:
        """Real (or simply valid) values of body fields that gate deeper code."""
        item = current_item(Enrolment.objects.get(pk=self.active.pk)) if self.active else None
        return {
            "item": ([item.pk] if item else []) + self.paths["/api/items/"],
            "bundle": self.paths["/api/bundles/"],
            "title": ["a fuzzed study"],
            "presets": [["U"]],
            "practice": [0, 1],
            "choice": CLASSES,
            "choices": [CLASSES[:2], CLASSES],
            "confidence": [1, 3, 5],
            "category": [c for c in Response.Category.values if c],
            "helpful_page": ["overview", "features"],
        }.get(key, [])


WORLD = World()


@pytest.fixture
def world(db, settings):
    """A researcher with a password; their running study (annotators done, in the middle
    and not started), their draft study (no annotators: its items may still change), and
    another researcher's running study."""
    # basic auth checks the password on every request: the default hasher would spend a
    # good part of a second of a slow core on each of thousands of requests
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # thousands of wrong credentials from one address would lock it out (429, pinned by
    # test_login_lockout.py), where schemathesis's auth check expects 401 or 403: failures are
    # still recorded by django-axes, never enough to lock out
    settings.AXES_FAILURE_LIMIT = 10**9
    running, theirs = make_study(n_items=3, practice=1), make_study(n_items=2, practice=0)
    running.bundle.stages = ["U", "C", "Rl", "Rg", "P"]  # every preset condition can be shown
    running.bundle.save()
    researcher = running.owner
    researcher.set_password(PASSWORD)
    researcher.save()
    draft = make_study(n_items=2, practice=1)
    draft.owner, draft.status = researcher, "draft"
    draft.save()
    User.objects.create_user("fuzz-bystander", password=PASSWORD)
    done = answer_all(enrol(running, pseudonym="done"), lambda item: {"choice": "red", "confidence": 3})
    assert done.step == Enrolment.Step.CLOSING
    active = start(enrol(running, pseudonym="active"))
    fresh = enrol(running, pseudonym="fresh")
    elsewhere = start(enrol(theirs, pseudonym="elsewhere"))
    studies = [running, draft, theirs]
    WORLD.researcher, WORLD.active = researcher, active
    WORLD.tokens = [active.token, done.token, fresh.token, elsewhere.token]
    WORLD.paths = {
        "/api/studies/": [s.pk for s in studies],
        "/api/conditions/": [c.pk for s in studies for c in s.conditions.all()],
        "/api/items/": [i.pk for s in (draft, running, theirs) for i in s.items.all()],
        "/api/bundles/": [s.bundle_id for s in studies],
    }
    # Django's test client does the same: the end of a request must not close the
    # connection that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WORLD
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    WORLD.__init__()


# Integers at the limits of database columns (PostgreSQL's integer and bigint; SQLite's
# integers end at the latter): Hypothesis seldom draws them on its own.
COLUMN_LIMITS = [2**31 - 1, 2**31, 2**63 - 1, 2**63]


def aim_at_real_objects(case, world: World) -> None:
    """Swap generated path parameters and body fields for real objects, except those the
    case varies on purpose (negative data, or the field a coverage case is about); now and
    then an integer field of a fuzzing case is set at the limit of a database column."""
    meta = case.meta
    coverage = meta is not None and meta.phase.name == "coverage"
    description = (getattr(meta.phase.data, "description", None) or "") if meta else ""
    negative = {loc for loc, info in (meta.components.items() if meta else ()) if info.mode == GenerationMode.NEGATIVE}
    rng = random.Random(f"{case.operation.label}|{case.path_parameters}|{case.query}|{case.body!r}")

    def swap(values: list):
        # coverage cases get the most useful real value (the researcher's own object, the
        # annotator's current item); fuzzing cases a random one nine times in ten
        if not values:
            return None
        if coverage:
            return values[0]
        return rng.choice(values) if rng.random() < 0.9 else None

    varies_path = ParameterLocation.PATH in negative or (
        coverage and meta.phase.data.parameter_location == ParameterLocation.PATH)
    if case.path_parameters and not varies_path:
        for name in case.path_parameters:
            real = swap(world.path_values(case.operation.path, name))
            if real is not None:
                case.path_parameters[name] = real
    if isinstance(case.body, dict) and ParameterLocation.BODY not in negative:
        for key in case.body:
            if coverage and description.startswith(f"{key}:"):
                continue
            real = swap(world.body_values(key))
            if real is not None:
                case.body[key] = real
            elif not coverage and type(case.body[key]) is int and rng.random() < 0.25:
                case.body[key] = rng.choice(COLUMN_LIMITS)


def basic_auth(username: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


# -- the passes ----------------------------------------------------------------------------------
# Every default check of schemathesis (no 5xx; status codes, content types, headers and
# bodies as documented; auth enforced, ...) but two that do not fit a Django REST framework
# API: it coerces 0/1 to booleans and numbers to strings, as documented
# (negative_data_rejection), and its rules refuse with 400 much that a schema cannot
# express, an item that is not the annotator's current one, a preset the bundle cannot
# show (positive_data_acceptance).
EXCLUDED_CHECKS = [negative_data_rejection, positive_data_acceptance]


@researcher_schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_a_researchers_requests_get_no_server_error_and_answers_as_documented(case, world):
    aim_at_real_objects(case, world)
    case.call_and_validate(headers=basic_auth(world.researcher.username), excluded_checks=EXCLUDED_CHECKS)


@anonymous_schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_anonymous_requests_get_no_server_error_and_answers_as_documented(case, world):
    aim_at_real_objects(case, world)
    case.call_and_validate(excluded_checks=EXCLUDED_CHECKS)


@pytest.mark.slow
@researcher_schema.parametrize()
@settings(fuzz_settings(2 * MAX_EXAMPLES), phases=[Phase.generate, Phase.shrink])
def test_many_more_requests_of_a_researcher_get_no_server_error(case, world):
    """Twice the random requests (the coverage cases above are not repeated)."""
    aim_at_real_objects(case, world)
    case.call_and_validate(headers=basic_auth(world.researcher.username), checks=[not_a_server_error])
