"""An annotator of a real (two-item) study in the HTTP client's terms: the study in four
conditions (No-Viz among them), joining one condition, reading what a page loads. Shared by
the tests of the instructions' training cards, the practice feedback and the helpful-page
question."""

import re

from django.contrib.auth.models import User

from studies.models import Enrolment
from studies.services import create_study, import_bundle

MULTIVIZ = "MultiViz (U+C+Rℓ+Rg+P)"


def four_condition_study(bundle_folder, owner_name="researcher"):
    """A two-item bundle (one practice item, one counted) in the conditions U, U+C+Rℓ,
    MultiViz and No-Viz, open."""
    owner = User.objects.create_user(owner_name, password="a-long-passphrase")
    bundle = import_bundle(bundle_folder, owner=owner)
    return create_study(owner, bundle, title="Shapes", presets=["U", "U+C+Rℓ", MULTIVIZ],
                        custom=[("No-Viz", [], {})], practice=1, open_now=True)


def enrol_in(client, study, condition: str) -> Enrolment:
    """A new annotator of ``condition`` (the others paused), at the instructions."""
    study.conditions.update(paused=True)
    study.conditions.filter(name=condition).update(paused=False)
    client.cookies.clear()
    url = client.get(f"/join/{study.invite_token}/")["Location"]
    client.post(url, {"form": "consent", "agree": "yes"})
    return Enrolment.objects.get(token=url.rstrip("/").rsplit("/", 1)[-1])


def start_items(client, e) -> str:
    """Past the instructions: the first item's page."""
    client.post(f"/a/{e.token}/", {"form": "instructions"})
    return client.get(f"/a/{e.token}/").content.decode()


def item_pk(html: str) -> int:
    return int(re.search(r'name="item" value="(\d+)"', html).group(1))


def asset_items(html: str, token: str) -> set[int]:
    """The study items whose assets a page loads."""
    return {int(pk) for pk in re.findall(rf"/a/{token}/items/(\d+)/assets/", html)}
