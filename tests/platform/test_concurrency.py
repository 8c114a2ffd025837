"""Many annotators at once: a burst of joins keeps the groups balanced, and a double click
(two identical submits racing) records one answer. Real threads, each with its own database
connection, through the real views."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client

from annotations.models import Response
from studies.models import Enrolment

from .study_helpers import make_study, start

pytestmark = pytest.mark.django_db(transaction=True)

SEVEN = tuple((f"c{k}", ["U"], 0) for k in range(7))  # seven uncapped conditions, as in the paper's simulation study


def run_at_once(n, work):
    """``work(k)`` in ``n`` threads released together; returns the results in order."""
    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def worker(k):
        try:
            barrier.wait()
            results[k] = work(k)
        except Exception as exc:  # reported below, with the test's failure
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_a_burst_of_joins_keeps_every_condition_within_one_of_the_others(settings):
    settings.MULTIVIZ_TRUSTED_PROXIES = 1  # each newcomer comes from their own address, as on Prolific
    study = make_study(conditions=SEVEN)

    def join(k):
        return Client().get(f"/join/{study.invite_token}/", REMOTE_ADDR="10.0.0.1",
                            HTTP_X_FORWARDED_FOR=f"198.51.100.{k}").status_code

    codes = run_at_once(40, join)
    assert codes == [302] * 40
    sizes = Counter(Enrolment.objects.filter(study=study).values_list("condition__name", flat=True))
    assert sum(sizes.values()) == 40 and len(sizes) == 7
    assert max(sizes.values()) - min(sizes.values()) <= 1, sizes


def test_racing_identical_submits_record_one_answer_and_both_succeed():
    study = make_study()
    e = start(Enrolment.objects.create(study=study, condition=study.conditions.get(), pseudonym="p"))
    e.item_order = list(study.items.order_by("order").values_list("pk", flat=True))
    e.save()
    first = e.item_order[0]

    def submit(_k):
        return Client().post(f"/a/{e.token}/", {"item": first, "choice": "blue"}).status_code

    codes = run_at_once(8, submit)
    assert Response.objects.filter(enrolment=e, item_id=first).count() == 1
    assert set(codes) == {302}, codes  # the practice item's feedback page for every click
    assert Enrolment.objects.get(pk=e.pk).position == 1


def test_racing_different_answers_keep_the_first_and_refuse_the_rest():
    study = make_study(practice=0)
    e = start(Enrolment.objects.create(study=study, condition=study.conditions.get(), pseudonym="p"))
    e.item_order = list(study.items.order_by("order").values_list("pk", flat=True))
    e.save()
    first = e.item_order[0]
    picks = ["red", "blue", "green", "yellow"] * 2

    def submit(k):
        return Client().post(f"/a/{e.token}/", {"item": first, "choice": picks[k]}).status_code

    codes = run_at_once(8, submit)
    saved = Response.objects.get(enrolment=e, item_id=first)
    # the saved answer's own clicks succeed; every other answer is refused with a message
    assert sorted(codes) == sorted([302 if p == saved.choice else 400 for p in picks]), codes
