"""Hand-built studies for tests: bundle rows without a bundle folder, fast."""

from django.contrib.auth.models import User

from annotations.services import submit_response
from studies.models import Bundle, BundleItem, Condition, Enrolment, Study, StudyItem

CLASSES = ["red", "blue", "green", "yellow"]


def make_study(task="simulation", n_items=4, practice=1, conditions=(("U", ["U"], 3),), sections=None, **study_kwargs):
    """A study of ``n_items`` counted items after ``practice`` ones, whose bundle items hold
    ``sections`` (stage → section; none by default: each page is the overview only)."""
    owner = User.objects.create_user(f"owner-{User.objects.count()}")
    bundle = Bundle.objects.create(name=f"b{Bundle.objects.count()}", path="/nowhere", manifest_sha256=f"{Bundle.objects.count():064d}",
                                   dataset="shapes_vqa", model="shapes_vqa_early", task=task, stages=["U"],
                                   class_names=CLASSES, manifest={})
    study = Study.objects.create(owner=owner, title="t", task=task, bundle=bundle, status=Study.Status.OPEN,
                                 **study_kwargs)
    for k in range(n_items + practice):
        bi = BundleItem.objects.create(bundle=bundle, item_id=f"i{k}", position=k, label="red",
                                       prediction=CLASSES[k % 4], correct=k % 4 == 0, record={},
                                       sections=dict(sections or {}))
        StudyItem.objects.create(study=study, bundle_item=bi, choices=CLASSES, is_practice=k < practice, order=k)
    for name, stages, size in conditions:
        Condition.objects.create(study=study, name=name, stages=stages, target_size=size)
    return study


def start(enrolment):
    enrolment.step = Enrolment.Step.ITEMS
    enrolment.save()
    return enrolment


def answer_all(enrolment, pick):
    """Answer every item in order; ``pick(study_item)`` gives the answer dict."""
    start(enrolment)
    for item_id in enrolment.item_order:
        submit_response(enrolment, item_id, pick(StudyItem.objects.get(pk=item_id)))
    return Enrolment.objects.get(pk=enrolment.pk)




def body_text(response) -> str:
    """A response's body as text, whether it was streamed (the CSV exports) or not."""
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()
