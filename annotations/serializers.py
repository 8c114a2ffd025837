"""API shapes. Serializers only shape data; rules live in services, reads in selectors: a
write the builder refuses, the API refuses with the same message (``api.py`` hands every
write to the service the builder uses)."""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from studies.models import Bundle, Condition, Enrolment, Study, StudyItem
from studies.selectors import accessible_bundles
from studies.services import MAX_POSITIVE_INT

from .models import Response
from .services import MAX_SECONDS_ON_ITEM

class RefuseUnknownFields:
    """A serializer mixin: a body naming a field the serializer does not have is a 400 that
    names it, instead of being ignored (a misspelt ``is_practise`` answered 200 and changed
    nothing). Read-only fields are known: a body read from the API may be sent back.
    The schema says so too (``additionalProperties: false``, see ``api.ApiSchema``)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {name: [f"unknown field; the fields are: {', '.join(self.writable_field_names())}"]
                  for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not errors or not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError({**exc.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def writable_field_names(self) -> list[str]:
        return [name for name, field in self.fields.items() if not field.read_only]


class BundleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bundle
        fields = ["id", "name", "dataset", "model", "task", "stages", "class_names", "imported_at"]


class ConditionSerializer(RefuseUnknownFields, serializers.ModelSerializer):
    # its bounds are the service's rule (studies.services.update_conditions), said as the builder says it
    target_size = serializers.IntegerField(required=False, help_text="annotators wanted, 0 to 2147483647; 0 = no cap")

    class Meta:
        model = Condition
        fields = ["id", "name", "stages", "rg_highlights", "live_sog", "ask_helpful_page", "global_feature_ids", "target_size",
                  "paused"]
        read_only_fields = ["id", "name", "stages"]


class StudyItemSerializer(RefuseUnknownFields, serializers.ModelSerializer):
    """An item's shape; which choices and flags it may take is the service's rule
    (``studies.services.update_items``), the builder's too."""

    item_id = serializers.CharField(source="bundle_item.item_id", read_only=True)
    model_prediction = serializers.CharField(source="bundle_item.prediction", read_only=True)
    correct_label = serializers.CharField(source="bundle_item.label", read_only=True)
    choices = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False,
                                    help_text="answer choices: distinct classes of the model (two or more in "
                                              "model simulation)")
    order = serializers.IntegerField(required=False, help_text="0 to 2147483647")

    class Meta:
        model = StudyItem
        fields = ["id", "item_id", "choices", "is_practice", "order", "model_prediction", "correct_label"]
        read_only_fields = ["id", "item_id"]


class StudySerializer(RefuseUnknownFields, serializers.ModelSerializer):
    bundle = serializers.PrimaryKeyRelatedField(read_only=True)  # items belong to it: fixed at creation
    conditions = ConditionSerializer(many=True, read_only=True)
    # a blank or too long title is the service's refusal (studies.services.update_details), worded as the builder's
    title = serializers.CharField(required=False, allow_blank=True)
    # its rules are the service's (studies.services.clean_training_cards), the builder's too
    training_cards = serializers.JSONField(
        required=False, help_text="the study's own texts of its training cards, {stage: {text: value}} with the "
        "texts title, shows, colours and example; a text left out shows the stage's default. Sending it replaces "
        "them all ({} : every card as by default)")

    class Meta:
        model = Study
        fields = ["id", "title", "task", "status", "bundle", "instructions", "consent_text", "item_order",
                  "training_cards", "completion_code", "completion_url", "invite_token", "conditions", "created_at"]
        read_only_fields = ["id", "status", "invite_token", "conditions", "created_at", "task"]


@extend_schema_field(OpenApiTypes.INT)  # a bundle's id
class AccessibleBundleField(serializers.PrimaryKeyRelatedField):
    """A bundle id among those the requesting researcher may see: any other is "does not exist"."""

    def get_queryset(self):
        request = self.context.get("request")
        return accessible_bundles(request.user if request else None)


class StudyCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    bundle = AccessibleBundleField()
    # a blank or too long title is create_study's refusal, worded as the builder's
    title = serializers.CharField(allow_blank=True, help_text="not blank, at most 200 characters")
    presets = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="names of the paper's preset conditions (default: all for the task)")
    practice = serializers.IntegerField(min_value=0, default=1)
    # a condition's target size is a PositiveIntegerField: 2147483647 is its limit in every database
    group_size = serializers.IntegerField(min_value=0, max_value=MAX_POSITIVE_INT, required=False,
                                          help_text="annotators wanted per condition (0 = no cap)")
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    consent_text = serializers.CharField(required=False, allow_blank=True, default="")


class EnrolmentSerializer(serializers.ModelSerializer):
    condition = serializers.CharField(source="condition.name")
    exclusion_changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Enrolment
        fields = ["id", "pseudonym", "condition", "step", "position", "started_at", "last_seen_at", "completed_at",
                  "excluded", "exclusion_reason", "exclusion_changed_by", "exclusion_changed_at", "exclusion_history"]


class ResponseSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="enrolment.pseudonym")
    condition = serializers.CharField(source="enrolment.condition.name")
    item_id = serializers.CharField(source="item.bundle_item.item_id")

    class Meta:
        model = Response
        fields = ["id", "annotator", "condition", "item_id", "is_practice", "choice", "free_text", "category",
                  "confidence", "helpful_page", "seconds_on_item", "created_at"]


class AnswerSerializer(RefuseUnknownFields, serializers.Serializer):
    """What an annotator submits; the rules are checked by the submit service."""

    item = serializers.IntegerField()
    choice = serializers.CharField(required=False, allow_blank=True)
    free_text = serializers.CharField(required=False, allow_blank=True)
    category = serializers.CharField(required=False, allow_blank=True)
    confidence = serializers.IntegerField(required=False, allow_null=True)
    helpful_page = serializers.CharField(required=False, allow_blank=True,
                                         help_text="where asked, which page helped more: one of the item's pages "
                                                   "(overview, features, prediction, transformer)")
    # a bound keeps the figures computable: two answers of 1e308 s made every mean infinite,
    # and the metrics and export of the study a server error
    seconds_on_item = serializers.FloatField(
        required=False, allow_null=True, max_value=MAX_SECONDS_ON_ITEM,
        error_messages={"max_value": "seconds_on_item must be at most a week ({max_value} s); leave it out if the "
                                     "time is unknown"})


class AnswerResultSerializer(serializers.Serializer):
    """The saved answer: ``created`` is false for an identical resend of a saved one."""

    response = serializers.IntegerField()
    created = serializers.BooleanField()
    practice = serializers.BooleanField()


class AnnotatorStateSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=Enrolment.Step.choices)
    position = serializers.IntegerField(help_text="index of the current item")
    items = serializers.IntegerField(help_text="items in all, practice included")
    item = serializers.DictField(allow_null=True, help_text="the current item as the annotator's condition shows it; "
                                                            "null outside the items step")


class ErrorSerializer(serializers.Serializer):
    """Why a request was refused: ``detail``, or for a refused body one list of messages per field."""

    detail = serializers.CharField(required=False)
