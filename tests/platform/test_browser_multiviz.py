"""In Debian's chromium (Playwright): an annotator completes a model-simulation study over
each of MultiViz's own vqa554 (vendored), 1029 and mosei3 results (shared; skipped when
absent), imported with ``import_multiviz``; the item page shows the datapoint and the U and
C views as images and videos (the modalities contract's pre-rendered assets), under opaque
names only. Passes once the viewers of the modalities contract are in the annotator's page."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from annotations.models import Response
from studies.models import Bundle, Enrolment
from studies.services import create_study
from tests.platform.test_browser import browser  # noqa: F401 - the fixture

VQA554 = Path(settings.BASE_DIR) / "fixtures" / "multiviz" / "vqa554"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


SAMPLES = {  # folder: (extra classes, --allow-missing, choices offered)
    "vqa554": ("wood,metal,plastic", False, 4),
    "1029": ("Drama,Comedy,Horror,Romance", False, 4),
    "mosei3": ("", True, 2),
}


def sample(folder: str) -> Path:
    from studies.services import multiviz_results_dir

    if folder == "vqa554":
        return VQA554
    path = multiviz_results_dir() / folder
    if not path.is_dir():
        pytest.skip(f"MultiViz sample {folder!r} is not at {path} (set MULTIVIZ_RESULTS_DIR)")
    return path


def media(section: dict, suffixes) -> int:
    return sum(str(v.get("asset", "")).endswith(suffixes) for v in section["views"])


@pytest.mark.parametrize("folder", list(SAMPLES))
def test_an_annotator_completes_a_simulation_study_over_a_multiviz_sample_seeing_its_views(browser, live_server,  # noqa: F811
                                                                                          settings, tmp_path, folder):
    from playwright.sync_api import expect

    settings.DATA_DIR = tmp_path
    classes, allow_missing, n_choices = SAMPLES[folder]
    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    call_command("import_multiviz", str(sample(folder)), "--name", folder, "--owner", "ada",
                 *(["--class-names", classes] if classes else []), *(["--allow-missing"] if allow_missing else []))
    bundle = Bundle.objects.get(name=folder)
    study = create_study(researcher, bundle, title=f"MultiViz {folder}", practice=0, group_size=1, open_now=True,
                         presets=["MultiViz (U+C+Rℓ+Rg+P)"])
    study.completion_code = "THANKS-MV"
    study.save()
    item = bundle.items.get()
    pictures = (".png", ".jpg", ".gif")
    n_images = (sum(m["kind"] == "image" for m in item.record["modalities"])
                + sum(media(item.section(s), pictures) for s in ("U", "C")))
    n_videos = (sum(m["kind"] == "video" for m in item.record["modalities"])
                + sum(media(item.section(s), (".mp4",)) for s in ("U", "C")))

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/join/{study.invite_token}/")
    page.get_by_role("button", name="I agree to take part").click()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#answer")).to_be_visible()
    images = page.locator("main img")
    expect(images.nth(n_images - 1)).to_be_attached()  # the datapoint's images and one per U and C picture
    for k in range(images.count()):
        if not images.nth(k).get_attribute("src"):  # the live word picker's result, empty until words are picked
            continue
        expect(images.nth(k)).to_have_js_property("complete", True)
        assert images.nth(k).evaluate("img => img.naturalWidth") > 0, f"image {k} did not load"
    if n_videos:
        expect(page.locator("main video").nth(n_videos - 1)).to_be_attached()
    for src in page.locator("main img, main video, main source").evaluate_all(
            "els => els.map(e => e.getAttribute('src') || '')"):
        assert not re.search(r"pred|correct|feat|grad|lime", src), src  # opaque names only
    assert page.locator("input[name=choice]").count() == n_choices
    page.keyboard.press("1")
    helpful = page.locator("input[name=helpful_page][value=features]")
    if helpful.count():
        helpful.check()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.get_by_role("button", name="Finish").click()
    expect(page.locator("#completion-code")).to_have_text("THANKS-MV")
    context.close()
    assert Response.objects.filter(enrolment__study=study, is_practice=False).count() == 1
    assert Enrolment.objects.get(study=study).step == "done"
