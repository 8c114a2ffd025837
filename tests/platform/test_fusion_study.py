"""A model simulation study over a fusion bundle (time series + static fields): built with
the paper's conditions, and each annotator's view holds only its condition's stages."""

import json

import pytest
from django.contrib.auth.models import User

from studies.selectors import annotator_view
from studies.services import create_study, enrol, import_bundle

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
