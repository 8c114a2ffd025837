"""The figures of a condition are computed once per version of its answers and kept in the
cache; every change of the answers shows at once; the CSV exports stream."""

import csv
import io
import json
import random

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.exports import responses_csv
from annotations.models import Response
from annotations.selectors import _item_agreement_of, _metrics_of, condition_answers, condition_metrics, item_agreement
from tests.platform.study_helpers import CLASSES, answer_all, make_study
from studies.services import enrol

pytestmark = pytest.mark.django_db


def random_study(annotators: int, n_items: int = 6, task: str = "simulation", seed: int = 0):
    rng = random.Random(seed)
    study = make_study(task=task, n_items=n_items, practice=1, conditions=(("U", ["U"], 0), ("U+C", ["U", "C"], 0)))
    for k in range(annotators):
        if task == "simulation":
            pick = lambda item: {"choice": rng.choice([item.bundle_item.prediction, *CLASSES])}  # noqa: E731
        else:
            pick = lambda item: {"free_text": rng.choice(["red", "round", "blue"]), "confidence": 3}  # noqa: E731
        answer_all(enrol(study, pseudonym=f"p{k}"), pick)
    return study


def uncached(condition):
    data = condition_answers(condition)
    return _metrics_of(condition, data, None), _item_agreement_of(condition.study.task, data.rows)


@pytest.mark.parametrize("task", ["simulation", "concept"])
def test_cached_figures_equal_the_computed_ones_exactly(task):
    study = random_study(5, task=task)
    if task == "concept":
        for r in Response.objects.filter(is_practice=False):
            r.concept_cluster = r.free_text
            r.save()
    for c in study.conditions.all():
        cache.clear()
        first = condition_metrics(c), item_agreement(c)  # computed and kept
        kept = condition_metrics(c), item_agreement(c)  # read from the cache
        assert kept == first == uncached(c)
        assert first[0]["responses"] > 0 and first[0]["alpha_interval"] is not None


def test_the_second_reading_does_not_compute_again(monkeypatch):
    import annotations.selectors as selectors

    study = random_study(4)
    c = study.conditions.first()
    condition_metrics(c)
    calls = []
    monkeypatch.setattr(selectors, "bootstrap_alpha_interval", lambda *a, **k: calls.append(1))
    condition_metrics(c)
    assert calls == []


def test_figures_kept_by_other_code_are_not_served(monkeypatch):
    """A shared cache outlives a deployment: the key names the code that computed the figures."""
    import annotations.selectors as selectors

    study = random_study(4)
    c = study.conditions.first()
    condition_metrics(c)
    calls = []
    real = selectors.bootstrap_alpha_interval
    monkeypatch.setattr(selectors, "bootstrap_alpha_interval", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(selectors, "_code_version", lambda: "another release")
    assert condition_metrics(c) == uncached(c)[0] and calls == [1, 1]


def summary_of(client, study) -> str:
    page = client.get(f"/studies/{study.pk}/").content.decode()
    return page[page.index('id="summary"'):page.index("</table>", page.index('id="summary"'))]


def test_a_new_answer_changes_the_page_at_once(client):
    study = random_study(3)
    client.force_login(study.owner)
    before = summary_of(client, study)
    assert summary_of(client, study) == before  # the second request is served from the cache
    answer_all(enrol(study, pseudonym="newcomer"), lambda item: {"choice": "red"})
    after = summary_of(client, study)
    assert after != before
    newcomer = Response.objects.get(enrolment__pseudonym="newcomer", is_practice=False, item__order=1)
    api = client.get(f"/api/studies/{study.pk}/metrics/").json()
    assert api == json.loads(json.dumps([condition_metrics(c) for c in study.conditions.all()]))
    assert sum(m["annotators"] for m in api) == 4 and newcomer.choice == "red"


def test_an_answer_edited_in_place_changes_the_figures():
    """An edit keeps the count of responses and their ids (the admin can do it): the cache
    key is derived from the answers themselves, so the figures follow."""
    study = random_study(4)
    c = study.conditions.get(name="U")
    before = condition_metrics(c)
    target = (Response.objects.filter(enrolment__condition=c, is_practice=False).select_related("item__bundle_item")
              .order_by("pk").first())
    prediction = target.item.bundle_item.prediction
    # right becomes wrong or wrong becomes right: the accuracy must move (another wrong answer
    # may leave every figure as it was, depending on who else answered the item)
    flipped = next(x for x in CLASSES if x != prediction) if target.choice == prediction else prediction
    Response.objects.filter(pk=target.pk).update(choice=flipped)
    after = condition_metrics(c)
    assert after != before and after == uncached(c)[0]


def test_a_cluster_rename_changes_alpha_at_once():
    from annotations.services import rename_concept_cluster

    study = random_study(4, task="concept")
    for r in Response.objects.filter(is_practice=False):
        r.concept_cluster = r.free_text
        r.save()
    c = study.conditions.get(name="U")
    before = condition_metrics(c)
    rename_concept_cluster(study, "round", "red")
    after = condition_metrics(c)
    assert after["alpha"] != before["alpha"] and after == uncached(c)[0]


def page_queries(client, study) -> int:
    client.get(f"/studies/{study.pk}/")  # fills the cache
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/studies/{study.pk}/").status_code == 200
    return len(queries)


def test_the_page_queries_do_not_grow_with_the_answers(client):
    small, large = random_study(2, n_items=3, seed=1), random_study(6, n_items=8, seed=2)
    client.force_login(small.owner)
    few = page_queries(client, small)
    client.force_login(large.owner)
    assert page_queries(client, large) == few <= 20


def test_the_responses_csv_streams_in_chunks_and_equals_the_whole_file(client, monkeypatch):
    import annotations.exports as exports

    monkeypatch.setattr(exports, "EXPORT_CHUNK_ROWS", 4)
    study = random_study(3)  # 3 annotators × 7 items = 21 rows
    client.force_login(study.owner)
    response = client.get(f"/studies/{study.pk}/export.csv")
    assert response.streaming and response["Content-Disposition"].endswith('responses.csv"')
    chunks = [c.decode() for c in response.streaming_content]
    assert len(chunks) == 6  # the header and 4 rows, then 4 rows at a time, then the last row
    assert "".join(chunks) == responses_csv(study)
    assert len(list(csv.DictReader(io.StringIO("".join(chunks))))) == 21
    annotators = client.get(f"/studies/{study.pk}/annotators.csv")
    assert annotators.streaming and len(list(csv.DictReader(io.StringIO(
        b"".join(annotators.streaming_content).decode())))) == 3


def test_the_monitor_queries_do_not_grow_with_the_annotators(client):
    small, large = random_study(2, n_items=3, seed=1), random_study(6, n_items=8, seed=2)
    counts = []
    for study in (small, large):
        client.force_login(study.owner)
        with CaptureQueriesContext(connection) as queries:
            data = client.get(f"/studies/{study.pk}/monitor.json").json()
        counts.append(len(queries))
        assert {a["done"] for a in data["annotators"]} == {study.items.filter(is_practice=False).count()}
    assert counts[0] == counts[1]


def test_the_warm_page_reads_no_bundle_item_json(client, monkeypatch):
    """Reloading the results page reads plain rows: no bundle item is built, so none of their
    stage sections (kilobytes of JSON each) is decoded — once per answer, that took the page of
    700 annotators from half a second to 12."""
    from studies.models import BundleItem

    study = random_study(3)
    client.force_login(study.owner)
    client.get(f"/studies/{study.pk}/")  # fills the cache

    def built(*args, **kwargs):
        raise AssertionError("the results page built a BundleItem")

    monkeypatch.setattr(BundleItem, "from_db", classmethod(built))
    assert client.get(f"/studies/{study.pk}/").status_code == 200
