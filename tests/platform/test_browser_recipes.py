"""A `paper-vqa` bundle of the built-in early-fusion model, shown in Debian's chromium: the
annotator's pages draw DIME's parts per modality, the second-order gradient of every word
with its top boxes, text LIME and P as a graph, and every image on them is a real picture;
the researcher's bundle page names the recipe and draws P's accuracy–sparsity curve.

The bundle is small for speed: 2 items, 60 LIME samples, a DIME reference of 8 datapoints,
P on 300 points (the recipe's own defaults: 1000 samples, 50 datapoints, 3000 points)."""

import base64
import io
import os
from urllib.parse import urljoin

import numpy as np
import pytest
from django.contrib.auth.models import User

from studies.services import create_study, import_bundle

from .test_browser import browser, open_page  # noqa: F401 - the chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAST = {"U": {"n_samples": 60}, "C": {"n_samples": 60, "reference": 8}, "Rl": {"n_samples": 60, "features": 2},
        "Rg": {"n_samples": 60}, "P": {"points": 300}}


@pytest.fixture(scope="module")
def paper_vqa_bundle(tmp_path_factory):
    from viz_engine.bundles.precompute import build_bundle

    out = tmp_path_factory.mktemp("recipe-bundles") / "paper-vqa"
    build_bundle(out, dataset="shapes_vqa", model="shapes_vqa_early", n_items=2, seed=2, recipe="paper-vqa",
                 params=FAST)
    return out


def _pixel_variance(png: bytes, channel: str = "L") -> float:
    from PIL import Image

    im = Image.open(io.BytesIO(png))
    plane = im.convert("RGBA").getchannel("A") if channel == "A" else im.convert("L")
    return float(np.asarray(plane, dtype=np.float64).var())


def test_a_paper_vqa_bundle_shows_dime_parts_per_word_sog_text_lime_and_the_p_graph_in_chromium(
        browser, live_server, paper_vqa_bundle):  # noqa: F811
    from playwright.sync_api import expect

    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    bundle = import_bundle(paper_vqa_bundle, owner=researcher)
    study = create_study(researcher, bundle, title="Recipe study", practice=0, group_size=1, open_now=True,
                         presets=["MultiViz (U+C+Rℓ+Rg+P)"])
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_server.url}/join/{study.invite_token}/")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#answer")).to_be_visible()

    overview = page.locator("#overview")
    # text LIME (U over the words): the words carry weights, not all zero
    words = overview.locator(".viewer-text[data-method=lime]").first.locator("span.tok")
    n_words = words.count()
    assert n_words >= 3
    assert any((words.nth(k).get_attribute("class") or "").strip() != "tok" for k in range(n_words))
    # DIME: the unimodal and the multimodal part, over the image and over the words
    dime_images = overview.locator("figure.viewer[data-method=dime]")
    expect(dime_images).to_have_count(2)
    expect(dime_images.nth(0)).to_contain_text("unimodal part")
    expect(dime_images.nth(1)).to_contain_text("multimodal part")
    dime_words = overview.locator(".viewer-text[data-method=dime]")
    expect(dime_words).to_have_count(2)
    expect(dime_words.nth(0).locator("span.tok")).to_have_count(n_words)
    # the second-order gradient of each word, one map per word behind the word picker
    sog = overview.locator(".picked figure.viewer[data-method=second_order_gradient]")
    expect(sog).to_have_count(n_words)
    assert [sog.nth(k).get_attribute("data-query") for k in range(n_words)] == [str(k) for k in range(n_words)]
    expect(overview.locator(".word-picker button.pick")).to_have_count(n_words)
    # P as a graph: five features joined to the model's (unnamed) answer
    open_page(page, "Prediction")
    graph = page.locator("#prediction svg.p-graph")
    expect(graph).to_be_visible()
    expect(graph.locator("circle")).to_have_count(5)
    expect(graph).to_contain_text("the model's answer")
    html = page.content()
    for name in bundle.class_names:  # the graph names no class
        assert f">{name}<" not in page.locator("#prediction").inner_html()
    assert "dime" in html

    images = page.locator("img")
    assert images.count() >= 1 + n_words  # the image, SOG per word, … (score maps: a mask image each)
    for k in range(images.count()):
        img = images.nth(k)
        src = img.get_attribute("src")
        if not src:  # the live word picker's result, empty until words are picked
            continue
        expect(img).to_have_js_property("complete", True)
        if src.startswith("data:image/png;base64,"):  # a score map's mask: its opacity varies over the picture
            assert _pixel_variance(base64.b64decode(src.split(",", 1)[1]), "A") > 20.0, f"mask {k} is flat"
            continue
        response = page.request.get(urljoin(page.url, src))
        assert response.ok, src
        assert _pixel_variance(response.body()) > 20.0, f"image {k} ({img.get_attribute('alt')}) is blank"
    if os.environ.get("MULTIVIZ_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["MULTIVIZ_SCREENSHOTS"], "paper-vqa-item.png"), full_page=True)
    page.context.close()


def test_the_bundle_page_names_the_recipe_and_draws_ps_accuracy_sparsity_curve(client, paper_vqa_bundle):
    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    bundle = import_bundle(paper_vqa_bundle, owner=researcher)
    client.force_login(researcher)
    listing = client.get("/bundles/").content.decode()
    assert f"/bundles/{bundle.pk}/" in listing and "recipe paper-vqa" in listing
    page = client.get(f"/bundles/{bundle.pk}/").content.decode()
    assert 'id="recipe-name">paper-vqa<' in page
    assert "method=dime+second_order_gradient" in page and "image=lime" in page and "n_samples=60" in page
    assert '<svg' in page and 'class="plot p-curve"' in page and page.count("<polyline") == 2
    assert "recipe paper-vqa" in client.get("/studies/new/").content.decode()
    other = User.objects.create_user("mallory", password="another-passphrase")
    client.force_login(other)
    assert client.get(f"/bundles/{bundle.pk}/").status_code == 404
