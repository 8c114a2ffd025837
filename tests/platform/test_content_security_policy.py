"""A strict Content-Security-Policy (django-csp): scripts and styles from this site only, no
inline script, handler or style attribute; the pages keep working under it in chromium."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from studies.services import create_study, enrol, import_bundle
from studies.templatetags.highlights import weight_class

from .study_helpers import make_study, start
from .test_browser import browser, open_page  # noqa: F401  (the chromium fixture)

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_no_template_has_what_the_policy_refuses():
    found = [f"{path.relative_to(TEMPLATES)}: {what}" for path in sorted(TEMPLATES.rglob("*.html"))
             for what, pattern in INLINE.items() if pattern.search(path.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.django_db
def test_pages_and_the_api_are_served_with_the_strict_policy():
    study = make_study(practice=0)
    e = start(enrol(study, pseudonym="p"))
    for url in ("/admin/login/", f"/a/{e.token}/", f"/api/annotate/{e.token}/"):
        policy = Client().get(url)["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["img-src"] == "'self' data:" and directives["object-src"] == "'none'"
        assert "script-src" not in directives and "style-src" not in directives  # 'self', from default-src
        assert "unsafe" not in policy


def test_a_words_weight_becomes_a_class_in_tenths_clamped_to_the_coloured_range():
    assert [weight_class(w) for w in (0.35, 0.04, -0.26, -1.0, 1.0, 3.2, -7)] == \
        ["w4", "w0", "w-3", "w-10", "w10", "w10", "w-10"]
    assert [weight_class(w) for w in (None, "", float("nan"), float("inf"))] == ["w0"] * 4


@pytest.mark.django_db
def test_the_annotators_words_carry_their_weight_classes():
    from studies.models import BundleItem

    study = make_study(practice=0)  # its one condition shows U
    BundleItem.objects.filter(bundle=study.bundle).update(sections={"U": {"text": {"highlights": [
        {"token": "red", "weight": 0.62}, {"token": "cube", "weight": -0.4}]}}})
    e = start(enrol(study, pseudonym="p"))
    html = Client().get(f"/a/{e.token}/").content.decode()
    assert '<span class="tok w6">red</span>' in html and '<span class="tok w-4">cube</span>' in html


# -- in chromium -----------------------------------------------------------------------------------
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
"""


def watch(page):
    """The page's CSP violations, from its console and from the violation events."""
    seen = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(RECORD_VIOLATIONS)
    return lambda: seen + page.evaluate("window.__cspViolations")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_item_page_and_the_study_page_raise_no_csp_violation_in_chromium(browser, live_server, built_bundle):
    from playwright.sync_api import expect

    researcher = User.objects.create_user("ada", password="a-long-passphrase", is_staff=True)
    study = create_study(researcher, import_bundle(built_bundle, owner=researcher), title="CSP study", practice=0, group_size=1,
                         open_now=True, presets=["U", "MultiViz (U+C+Rℓ+Rg+P)"])
    annotators = [start(enrol(study, pseudonym=f"p{n}")) for n in range(2)]
    multiviz = next(e for e in annotators if e.condition.name.startswith("MultiViz"))

    page = browser.new_context().new_page()
    violations = watch(page)
    page.goto(f"{live_server.url}/a/{multiviz.token}/")
    expect(page.locator("#overview")).to_be_visible()
    expect(page.locator("#features")).to_be_hidden()  # pages.js ran: one page at a time
    open_page(page, "Features")
    expect(page.locator("#features")).to_be_visible()
    open_page(page, "Overview")
    for image in page.locator("#overview img[src]").all():  # (wait_for_function would need eval, which the CSP refuses)
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("i => i.naturalWidth") > 0
    assert violations() == []
    # the words are coloured by their weight classes (from app.css, not an inline style)
    coloured = page.evaluate("""[...document.querySelectorAll('#overview .tok')].filter(t =>
        getComputedStyle(t).backgroundColor !== 'rgba(0, 0, 0, 0)' || getComputedStyle(t).boxShadow !== 'none').length""")
    assert coloured > 0
    page.keyboard.press("1")  # annotate.js runs: the shortcut picks the first choice
    assert page.locator("input[name=choice]").first.is_checked()
    assert violations() == []

    page.goto(f"{live_server.url}/admin/login/?next=/studies/{study.pk}/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a-long-passphrase")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("CSP study")
    expect(page.locator("#monitor-at")).to_have_text(re.compile("^updated"))  # its script ran
    page.click("#compare button")
    expect(page.locator("#compare-result")).not_to_be_empty()
    assert violations() == []
