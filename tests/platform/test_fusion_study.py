"""A model simulation study over a fusion bundle (time series + static fields): built with
the paper's conditions, and each annotator's view holds only its condition's stages."""

import json

import pytest
from django.contrib.auth.models import User

from studies.selectors import annotator_view
from studies.services import create_study, enrol, import_bundle
from tests.platform.test_browser import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # builds a small fusion bundle (~10 s)


@pytest.fixture(scope="module")
def fusion_bundle_dir(tmp_path_factory):
    from viz_engine.bundles.precompute import build_bundle

    out = tmp_path_factory.mktemp("fusion-study") / "fusion-interaction-5"
    build_bundle(out, dataset="fusion", model="fusion_interaction", n_items=5, seed=0,
                 params={"P": {"points": 400}})
    return out


def test_fusion_simulation_study_shows_each_condition_only_its_stages_views(fusion_bundle_dir):
    owner = User.objects.create_user("fusion-researcher")
    bundle = import_bundle(fusion_bundle_dir, owner=owner)
    study = create_study(owner, bundle, title="Fusion", task="simulation", practice=1, open_now=True)
    conditions = list(study.conditions.all())
    assert len(conditions) == 7  # the paper's model simulation conditions
    enrolments = [enrol(study) for _ in conditions]
    assert {e.condition_id for e in enrolments} == {c.pk for c in conditions}
    for e in enrolments:
        allowed = set(e.condition.stages)
        for item in study.items.select_related("bundle_item"):
            view = annotator_view(e, item)
            assert set(view["sections"]) == allowed
            assert [m["kind"] for m in view["modalities"]] == ["timeseries", "tabular"]
            assert set(item.choices) == {"stable", "deteriorating"}
            for stage in {"U", "C"} & allowed:
                assert view["sections"][stage]["views"]
            for f in view["sections"].get("Rl", {}).get("features", []):
                assert {v["modality"] for v in f["views"]} == {"series", "static"}
            for f in view["sections"].get("Rg", {}).get("features", []):
                assert all(d["views"] and d["modalities"] for d in f["max"] + f["min"])
            assert not {"prediction", "probabilities", "correct", "label"} & set(view)
            text = json.dumps({k: v for k, v in view.items() if k != "choices"})
            assert "stable" not in text and "deteriorating" not in text
            for hidden in {"U", "C"} - allowed:  # a hidden stage's views are nowhere in the view
                assert json.dumps(item.bundle_item.sections[hidden]["views"]) not in text


def test_an_annotator_answers_every_item_of_a_fusion_study_over_http(fusion_bundle_dir, client):
    import re

    from annotations.models import Response
    from studies.models import Enrolment

    owner = User.objects.create_user("fusion-owner")
    bundle = import_bundle(fusion_bundle_dir, name="fusion-http", owner=owner)
    study = create_study(owner, bundle, title="Fusion HTTP", presets=["MultiViz (U+C+Rℓ+Rg+P)"], practice=1,
                         open_now=True)
    url = client.get(f"/join/{study.invite_token}/")["Location"]
    client.post(url, {"form": "consent", "agree": "yes"})
    client.post(url, {"form": "instructions"})
    for _ in range(study.items.count()):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        fields = {"item": re.search(r'name="item" value="(\d+)"', html).group(1),
                  "choice": re.search(r'name="choice" value="([^"]+)"', html).group(1), "seconds_on_item": "2"}
        if 'name="helpful_page"' in html:
            fields["helpful_page"] = "overview"
        client.post(url, fields)
    e = Enrolment.objects.get(study=study)
    assert Response.objects.filter(enrolment=e).count() == study.items.count()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_annotator_completes_a_fusion_study_in_chromium_seeing_the_series_and_fields_drawn(fusion_bundle_dir,
                                                                                            browser, live_server):
    """The fusion dataset's study end to end in chromium: every item's time series and fields
    drawn (with U and C over them and a legend), the practice feedback, the completion code."""
    from playwright.sync_api import expect

    from annotations.models import Response
    from studies.models import Enrolment

    owner = User.objects.create_user("fusion-browser")
    bundle = import_bundle(fusion_bundle_dir, name="fusion-browser", owner=owner)
    study = create_study(owner, bundle, title="Fusion in chromium", presets=["MultiViz (U+C+Rℓ+Rg+P)"], practice=1,
                         open_now=True)
    study.completion_code = "THANKS-FUSION"
    study.save()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_server.url}/join/{study.invite_token}/")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    for _ in range(study.items.count()):
        expect(page.locator("#answer")).to_be_visible()
        overview = page.locator("#overview")
        expect(overview.locator(".viewer-timeseries").first).to_be_visible()  # the series, and U and C over it
        expect(overview.locator(".viewer-tabular").first).to_be_visible()  # the fields
        assert overview.locator(".viewer-timeseries").count() >= 2
        expect(overview.locator(".legend").first).to_be_visible()
        page.locator("input[name=choice]").first.check()
        helpful = page.locator("input[name=helpful_page][value=features]")
        if helpful.count():
            helpful.check()
        with page.expect_navigation():
            page.get_by_role("button", name="Submit").click()
        if "/practice/" in page.url:
            expect(page.get_by_text("The model predicted")).to_be_visible()
            with page.expect_navigation():
                page.get_by_role("link", name="Continue").click()
    page.get_by_role("button", name="Finish").click()
    expect(page.locator("#completion-code")).to_have_text("THANKS-FUSION")
    e = Enrolment.objects.get(study=study)
    assert e.step == "done" and Response.objects.filter(enrolment=e).count() == study.items.count()
