"""The schema of a whole-study document (``transfer.py``): every value's type and bounds,
built from the field types of ``studies/schemas.py``. The rules between values (an
enrolment's condition is one of the study's …) are the importer's own."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxLengthValidator
from rest_framework import serializers

from studies.models import Bundle, BundleItem, Condition, Enrolment, Study, StudyItem
from studies.stage_views import platform_stage_names
from studies.task_registry import task_choices
from studies.schemas import Amount, Choice, Flag, Moment, Number, Text, Url, WholeNumber, column
from studies.services import StudyError, clean_training_cards
from viz_engine.bundles.schema import MAX_CLASSES, MAX_ITEMS

from .models import HELPFUL_PAGES, Response
from .services import MAX_FREE_TEXT, MAX_SECONDS_ON_ITEM

MAX_LONG_TEXT = 100_000  # instructions, consent text
MAX_CONDITIONS = 100
MAX_ENROLMENTS = 100_000
MAX_SHARED_WITH = 1_000
MAX_CLOSING_ANSWERS = 20
MAX_CLOSING_KEY = 100
MAX_CLOSING_ANSWER = 2_000  # what the closing page keeps of each answer
MAX_USERNAME = 150  # django.contrib.auth
MAX_SMALL_INT = 2_147_483_647  # a PositiveIntegerField in every database
MAX_EXCLUSION_EVENTS = 1_000


# -- the study document (annotations/transfer.py) -----------------------------------------------------------
class BundleReferenceSchema(serializers.Serializer):
    name = Text(max_length=column(Bundle, "name"))
    manifest_sha256 = Text(min_length=64, max_length=64)


class StudySchema(serializers.Serializer):
    title = Text(max_length=column(Study, "title"))
    task = Choice([])  # the registered tasks, read per document (__init__)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].choices = task_choices()

    status = Choice(Study.Status.choices)
    item_order = Choice(Study.Order.choices)
    instructions = Text(allow_blank=True, max_length=MAX_LONG_TEXT)
    consent_text = Text(allow_blank=True, max_length=MAX_LONG_TEXT)
    invite_token = Text(max_length=column(Study, "invite_token"))
    completion_code = Text(allow_blank=True, max_length=column(Study, "completion_code"))
    completion_url = Url(allow_blank=True, trim_whitespace=False, max_length=column(Study, "completion_url"))
    returned_code = Text(allow_blank=True, max_length=column(Study, "returned_code"), required=False, default="")
    screened_out_code = Text(allow_blank=True, max_length=column(Study, "screened_out_code"), required=False, default="")
    bonus_per_correct = Amount(required=False, default=Decimal("0"))
    bonus_threshold = WholeNumber(min_value=0, max_value=100, allow_null=True, required=False, default=None)
    bonus_threshold_amount = Amount(required=False, default=Decimal("0"))
    # quality controls (absent from documents written before them: none)
    attention_min_correct = WholeNumber(min_value=0, max_value=MAX_SMALL_INT, allow_null=True, required=False,
                                        default=None)
    gate_min_correct = WholeNumber(min_value=1, max_value=MAX_SMALL_INT, allow_null=True, required=False, default=None)
    gate_attempts = WholeNumber(min_value=1, max_value=10, required=False, default=2)
    # the study's own texts of its training cards (absent from documents written before them: none)
    training_cards = serializers.JSONField(required=False, default=dict)
    created_at = Moment()
    owner = Text(max_length=MAX_USERNAME)
    shared_with = serializers.ListField(child=Text(max_length=MAX_USERNAME), max_length=MAX_SHARED_WITH)

    def validate_training_cards(self, cards):
        """The builder's and the API's rule (``studies.services.clean_training_cards``)."""
        try:
            return clean_training_cards(cards)
        except StudyError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ConditionSchema(serializers.Serializer):
    name = Text(max_length=column(Condition, "name"))
    stages = serializers.ListField(child=Choice([]))  # the registered stages, read per document (__init__)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = platform_stage_names()
        self.fields["stages"].child.choices = names
        self.fields["stages"].validators = [*self.fields["stages"].validators, MaxLengthValidator(
            len(names), message=f"Ensure this field has no more than {len(names)} elements.")]

    target_size = WholeNumber(min_value=0, max_value=MAX_SMALL_INT)
    rg_highlights = Flag()
    live_sog = Flag()
    ask_helpful_page = Flag()
    paused = Flag()
    # the revealing variant (absent from documents written before it: off)
    global_feature_ids = Flag(required=False, default=False)


class ItemSchema(serializers.Serializer):
    item_id = Text(max_length=column(BundleItem, "item_id"))
    choices = serializers.ListField(child=Text(max_length=column(BundleItem, "label")), max_length=MAX_CLASSES)
    is_practice = Flag()
    order = WholeNumber(min_value=0, max_value=MAX_SMALL_INT)
    attention_check = Flag(required=False, default=False)
    expected_answer = Text(allow_blank=True, max_length=column(StudyItem, "expected_answer"), required=False, default="")
    instruction = Text(allow_blank=True, max_length=column(StudyItem, "instruction"), required=False, default="")


class ResponseSchema(serializers.Serializer):
    item = Text(max_length=column(BundleItem, "item_id"))
    is_practice = Flag()
    choice = Text(allow_blank=True, max_length=column(Response, "choice"))
    free_text = Text(allow_blank=True, max_length=MAX_FREE_TEXT)
    category = Choice(Response.Category.choices, allow_blank=True)
    confidence = WholeNumber(min_value=1, max_value=5, allow_null=True)
    helpful_page = Choice(HELPFUL_PAGES, allow_blank=True)
    # finite and at most a week, as the annotator's page: one 1e308 makes every mean infinite
    seconds_on_item = Number(min_value=0, max_value=MAX_SECONDS_ON_ITEM, allow_null=True)
    concept_cluster = Text(allow_blank=True, max_length=column(Response, "concept_cluster"))
    created_at = Moment()


class ClosingAnswersSchema(serializers.DictField):
    child = Text(allow_blank=True, max_length=MAX_CLOSING_ANSWER)

    def to_internal_value(self, data):
        answers = super().to_internal_value(data)
        if len(answers) > MAX_CLOSING_ANSWERS:
            raise serializers.ValidationError(f"at most {MAX_CLOSING_ANSWERS} answers; got {len(answers)}")
        for key in answers:
            if not 0 < len(key) <= MAX_CLOSING_KEY or "\x00" in key:
                raise serializers.ValidationError(f"{key[:40]!r} is not a question name (1–{MAX_CLOSING_KEY} "
                                                  f"characters, no NUL)")
        return answers


class ExclusionEventSchema(serializers.Serializer):
    excluded = Flag()
    reason = Text(allow_blank=True, max_length=MAX_LONG_TEXT)
    by = Text(allow_blank=True, max_length=MAX_USERNAME)
    at = Text(max_length=64)


class AssignmentSchema(serializers.Serializer):
    """How the enrolment's condition was drawn (``studies.services.draw_condition``); empty
    in documents written before it was recorded."""

    seed = WholeNumber(min_value=0, max_value=2**32 - 1, required=False)
    fill = WholeNumber(min_value=0, max_value=MAX_SMALL_INT, required=False)
    tied = serializers.ListField(child=Text(max_length=column(Condition, "name")), max_length=MAX_CONDITIONS,
                                 required=False)
    drawn = Text(max_length=column(Condition, "name"), required=False)


class PracticeAnswerSchema(serializers.Serializer):
    item = Text(max_length=column(BundleItem, "item_id"))
    answer = Text(allow_blank=True, max_length=MAX_FREE_TEXT)
    right = Flag()


class PracticeRoundSchema(serializers.Serializer):
    """One round of practice at the comprehension gate (``studies.quality.close_practice_round``)."""

    round = WholeNumber(min_value=1, max_value=10)
    right = WholeNumber(min_value=0, max_value=MAX_ITEMS)
    of = WholeNumber(min_value=0, max_value=MAX_ITEMS)
    passed = Flag()
    answers = PracticeAnswerSchema(many=True, max_length=MAX_ITEMS)
    at = Text(max_length=64)


class EnrolmentSchema(serializers.Serializer):
    condition = Text(max_length=column(Condition, "name"))
    token = Text(max_length=column(Enrolment, "token"))
    pseudonym = Text(max_length=column(Enrolment, "pseudonym"))
    prolific_study_id = Text(allow_blank=True, max_length=column(Enrolment, "prolific_study_id"))
    prolific_session_id = Text(allow_blank=True, max_length=column(Enrolment, "prolific_session_id"))
    item_order = serializers.ListField(child=Text(max_length=column(BundleItem, "item_id")), max_length=MAX_ITEMS)
    position = WholeNumber(min_value=0, max_value=MAX_ITEMS)
    step = Choice(Enrolment.Step.choices)
    closing_answers = ClosingAnswersSchema()
    assignment = AssignmentSchema(required=False, default=dict)
    started_at = Moment()
    last_seen_at = Moment()
    completed_at = Moment(allow_null=True)
    # the researcher's exclusion (absent from documents written before it: not excluded)
    excluded = Flag(required=False, default=False)
    exclusion_reason = Text(allow_blank=True, max_length=MAX_LONG_TEXT, required=False, default="")
    exclusion_changed_by = Text(allow_null=True, max_length=MAX_USERNAME, required=False, default=None)
    exclusion_changed_at = Moment(allow_null=True, required=False, default=None)
    exclusion_history = ExclusionEventSchema(many=True, max_length=MAX_EXCLUSION_EVENTS, required=False, default=list)
    practice_rounds = PracticeRoundSchema(many=True, max_length=10, required=False, default=list)
    responses = ResponseSchema(many=True, max_length=MAX_ITEMS)


class StudyDocumentSchema(serializers.Serializer):
    """A study exported by :func:`annotations.transfer.export_study` (its format and version are
    checked before)."""

    bundle = BundleReferenceSchema()
    study = StudySchema()
    conditions = ConditionSchema(many=True, min_length=1, max_length=MAX_CONDITIONS)
    items = ItemSchema(many=True, min_length=1, max_length=MAX_ITEMS)
    enrolments = EnrolmentSchema(many=True, max_length=MAX_ENROLMENTS)
