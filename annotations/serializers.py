"""API shapes. Serializers only shape data; rules live in services, reads in selectors."""

from rest_framework import serializers

from studies.models import Bundle, Condition, Enrolment, Study, StudyItem

from .models import Response
from .services import MAX_SECONDS_ON_ITEM

MAX_TARGET_SIZE = 2_147_483_647


class BundleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Bundle
        fields = ["id", "name", "dataset", "model", "task", "stages", "class_names", "imported_at"]


class ConditionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Condition
        fields = ["id", "name", "stages", "rg_highlights", "live_sog", "ask_helpful_page", "global_feature_ids", "target_size",
                  "paused"]
        read_only_fields = ["id", "name", "stages"]


class StudyItemSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="bundle_item.item_id", read_only=True)
    model_prediction = serializers.CharField(source="bundle_item.prediction", read_only=True)
    correct_label = serializers.CharField(source="bundle_item.label", read_only=True)

    class Meta:
        model = StudyItem
        fields = ["id", "item_id", "choices", "is_practice", "order", "model_prediction", "correct_label"]
        read_only_fields = ["id", "item_id"]

    def validate_choices(self, value):
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value) or len(set(value)) != len(value):
            raise serializers.ValidationError("choices must be a list of distinct class names")
        classes = set(self.instance.study.bundle.class_names) if self.instance else set()
        unknown = [c for c in value if classes and c not in classes]
        if unknown:
            raise serializers.ValidationError(f"not classes of the model: {unknown}")
        return value


class StudySerializer(serializers.ModelSerializer):
    bundle = serializers.PrimaryKeyRelatedField(read_only=True)  # items belong to it: fixed at creation
    conditions = ConditionSerializer(many=True, read_only=True)

    class Meta:
        model = Study
        fields = ["id", "title", "task", "status", "bundle", "instructions", "consent_text", "item_order",
                  "completion_code", "completion_url", "invite_token", "conditions", "created_at"]
        read_only_fields = ["id", "status", "invite_token", "conditions", "created_at", "task"]


class StudyCreateSerializer(serializers.Serializer):
    bundle = serializers.PrimaryKeyRelatedField(queryset=Bundle.objects.all())
    title = serializers.CharField(max_length=200)
    presets = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="names of the paper's preset conditions (default: all for the task)")
    practice = serializers.IntegerField(min_value=0, default=1)
    # a condition's target size is a PositiveIntegerField: 2147483647 is its limit in every database
    group_size = serializers.IntegerField(min_value=0, max_value=MAX_TARGET_SIZE, required=False,
                                          help_text="annotators wanted per condition (0 = no cap)")
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    consent_text = serializers.CharField(required=False, allow_blank=True, default="")


class EnrolmentSerializer(serializers.ModelSerializer):
    condition = serializers.CharField(source="condition.name")

    class Meta:
        model = Enrolment
        fields = ["id", "pseudonym", "condition", "step", "position", "started_at", "last_seen_at", "completed_at"]


class ResponseSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="enrolment.pseudonym")
    condition = serializers.CharField(source="enrolment.condition.name")
    item_id = serializers.CharField(source="item.bundle_item.item_id")

    class Meta:
        model = Response
        fields = ["id", "annotator", "condition", "item_id", "is_practice", "choice", "free_text", "category",
                  "confidence", "helpful_page", "seconds_on_item", "created_at"]


class AnswerSerializer(serializers.Serializer):
    """What an annotator submits; the rules are checked by the submit service."""

    item = serializers.IntegerField()
    choice = serializers.CharField(required=False, allow_blank=True)
    free_text = serializers.CharField(required=False, allow_blank=True)
    category = serializers.CharField(required=False, allow_blank=True)
    confidence = serializers.IntegerField(required=False, allow_null=True)
    helpful_page = serializers.CharField(required=False, allow_blank=True)
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
