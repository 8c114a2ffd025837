"""In chromium: the researcher rewrites a training card in the builder; an annotator of the
MultiViz condition reads the instructions with a card per visualization (each worked example
drawn on the practice item, pictures loaded, keyboard reachable, no horizontal scroll on a
390 px phone), answers the practice item, sees it again with the model's answer and their own,
and on the counted item is asked which of its own pages helped more. With
MULTIVIZ_SCREENSHOTS set, the pictures are saved there (docs/screenshots/training/ holds the
committed ones)."""

import io
import os

import pytest
from django.contrib.auth.models import User
from PIL import Image, ImageStat

from studies.services import create_study, import_bundle

from .test_browser import browser, login, open_page  # noqa: F401  (the chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MULTIVIZ = "MultiViz (U+C+Rℓ+Rg+P)"
OUR_EXAMPLE = "In this practice picture, look at the outlined shape first."


def _shot(png: bytes, name: str) -> bytes:
    folder = os.environ.get("MULTIVIZ_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        Image.open(io.BytesIO(png)).save(os.path.join(folder, name), optimize=True)
    return png


def _not_blank(png: bytes) -> bool:
    return sum(ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).var) > 50


def _pictures_loaded(page, scope: str) -> None:
    from playwright.sync_api import expect

    for img in page.locator(f"{scope} img:visible").all():
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("i => i.naturalWidth") > 0, img.get_attribute("src")


def test_an_annotator_reads_the_cards_practises_and_sees_the_item_again(browser, live_server, built_bundle):  # noqa: F811
    from playwright.sync_api import expect

    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    bundle = import_bundle(built_bundle, owner=researcher)
    study = create_study(researcher, bundle, title="Training cards", presets=[MULTIVIZ], practice=1, group_size=0,
                         open_now=True)

    # the researcher rewrites U's worked example in the builder
    builder = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    login(builder, live_server, "ada", "a-long-passphrase", f"/studies/{study.pk}/edit/")
    builder.fill("textarea[name=card-U-example]", OUR_EXAMPLE)
    builder.click("#save-cards")
    expect(builder.locator("#card-edit-U")).to_contain_text("rewritten for this study")
    _shot(builder.locator("#card-edit-U").screenshot(), "builder-card.png")

    # the annotator
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.url}/join/{study.invite_token}/")
    page.get_by_role("button", name="I agree to take part").click()
    expect(page.get_by_role("heading", name="Instructions")).to_be_visible()
    for stage in ("U", "C", "Rl", "Rg", "P"):
        card = page.locator(f"#card-{stage}")
        expect(card).to_be_visible()
        expect(card.locator(".worked-example")).to_be_visible()
    expect(page.locator("#card-U .worked-example")).to_contain_text(OUR_EXAMPLE)
    expect(page.locator("#card-U .legend").first).to_contain_text("orange")
    _pictures_loaded(page, ".worked-example")
    _shot(page.screenshot(), "instructions.png")
    for stage in ("U", "C", "Rl", "Rg", "P"):
        assert _not_blank(_shot(page.locator(f"#card-{stage}").screenshot(), f"card-{stage}.png")), stage
    # the contents link to each card, and the C word picker works from the keyboard
    page.get_by_role("link", name="C · where the parts act together").click()
    assert page.url.endswith("#card-C")
    picks = page.locator("#card-C .pick")
    if picks.count() > 1:
        picks.nth(1).focus()
        page.keyboard.press("Enter")
        expect(picks.nth(1)).to_have_attribute("aria-pressed", "true")

    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    phone.goto(page.url.split("#")[0])
    expect(phone.locator("#card-P")).to_be_attached()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(phone.screenshot(), "instructions-390.png")
    phone.context.close()

    # the practice item, answered wrong on purpose
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_text("Practice item")).to_be_visible()
    practice = study.items.get(is_practice=True)
    model = practice.bundle_item.prediction
    wrong = next(c for c in practice.choices if c != model)
    _shot(page.screenshot(), "practice-item.png")
    page.check(f"input[name=choice][value={wrong}]")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()

    # the feedback: both answers, then the item again with its pages
    expect(page.get_by_text("The model predicted")).to_be_visible()
    expect(page.locator("#your-answer")).to_have_text(wrong)
    expect(page.locator("#model-answer")).to_have_text(model)
    expect(page.get_by_role("link", name="Continue")).to_be_focused()
    for section, title in (("#features", "Features"), ("#prediction", "Prediction"), ("#overview", "Overview")):
        open_page(page, title)  # the item's pages again, one at a time
        expect(page.locator(section)).to_be_visible()
    _pictures_loaded(page, "#overview")
    _shot(page.screenshot(), "feedback.png")
    open_page(page, "Features")
    page.set_viewport_size({"width": 1200, "height": 2400})  # the feature whole: the sticky tabs stay above it
    assert _not_blank(_shot(page.locator("#features article.feature").first.screenshot(), "feedback-feature.png"))
    page.set_viewport_size({"width": 1200, "height": 900})
    page.get_by_role("link", name="Continue").click()

    # the counted item asks which of its own pages helped more
    expect(page.get_by_text("Item 1 of 1")).to_be_visible()
    helpful = page.locator("input[name=helpful_page]")
    expect(helpful).to_have_count(3)
    assert [helpful.nth(k).get_attribute("value") for k in range(3)] == ["overview", "features", "prediction"]
    _shot(page.locator("#answer").screenshot(), "helpful-page.png")
    assert refused == []
    context.close()
