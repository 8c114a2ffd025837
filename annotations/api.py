"""The REST API. Researchers log in (session or basic auth) and see only their own studies;
annotators are identified only by their enrolment token. Schema: /api/schema/."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response as APIResponse
from rest_framework.views import APIView

from studies.models import Bundle, Condition, Enrolment, Study, StudyItem
from studies.selectors import accessible_studies, annotator_view, current_item
from studies.services import StudyError, create_study

from .exports import study_json, summary_rows
from .models import Response
from .selectors import condition_metrics
from .serializers import (
    AnswerSerializer,
    BundleSerializer,
    ConditionSerializer,
    EnrolmentSerializer,
    ResponseSerializer,
    StudyCreateSerializer,
    StudyItemSerializer,
    StudySerializer,
)
from .services import submit_response


def _owned(request):
    """The researcher's own studies and those shared with them (none during schema generation)."""
    return accessible_studies(request.user if request else None)


class BundleViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = BundleSerializer
    queryset = Bundle.objects.all()


class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Studies of the logged-in researcher; another researcher's study is a 404."""

    serializer_class = StudySerializer

    def get_queryset(self):
        return _owned(self.request).prefetch_related("conditions")

    @extend_schema(request=StudyCreateSerializer, responses=StudySerializer)
    def create(self, request):
        data = StudyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            study = create_study(request.user, v["bundle"], title=v["title"], presets=v.get("presets"),
                                 practice=v["practice"], group_size=v.get("group_size"),
                                 instructions=v["instructions"], consent_text=v["consent_text"])
        except StudyError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return APIResponse(StudySerializer(study).data, status=status.HTTP_201_CREATED)

    def _set_status(self, new):
        study = self.get_object()
        study.status = new
        study.save(update_fields=["status"])
        return APIResponse(StudySerializer(study).data)

    @extend_schema(request=None, responses=StudySerializer)
    @action(detail=True, methods=["post"])
    def open(self, request, pk=None):
        return self._set_status(Study.Status.OPEN)

    @extend_schema(request=None, responses=StudySerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._set_status(Study.Status.PAUSED)

    @extend_schema(request=None, responses=StudySerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        return self._set_status(Study.Status.CLOSED)

    @extend_schema(responses=EnrolmentSerializer(many=True))
    @action(detail=True)
    def enrolments(self, request, pk=None):
        return APIResponse(EnrolmentSerializer(self.get_object().enrolments.select_related("condition"), many=True).data)

    @extend_schema(responses=ResponseSerializer(many=True))
    @action(detail=True)
    def responses(self, request, pk=None):
        rows = Response.objects.filter(enrolment__study=self.get_object()).select_related(
            "enrolment__condition", "item__bundle_item")
        return APIResponse(ResponseSerializer(rows, many=True).data)

    @extend_schema(responses=dict)
    @action(detail=True)
    def metrics(self, request, pk=None):
        return APIResponse([condition_metrics(c) for c in self.get_object().conditions.all()])

    @extend_schema(responses=dict)
    @action(detail=True)
    def summary(self, request, pk=None):
        return APIResponse(summary_rows(self.get_object()))

    @extend_schema(responses=dict)
    @action(detail=True)
    def export(self, request, pk=None):
        return APIResponse(study_json(self.get_object()))


class ConditionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                       viewsets.GenericViewSet):
    """Conditions of the researcher's studies: pause them, cap them, switch variants."""

    serializer_class = ConditionSerializer

    def get_queryset(self):
        return Condition.objects.filter(study__in=_owned(self.request))


class StudyItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                       viewsets.GenericViewSet):
    """Items of the researcher's studies: edit answer choices, practice flags and order."""

    serializer_class = StudyItemSerializer

    def get_queryset(self):
        qs = StudyItem.objects.filter(study__in=_owned(self.request)).select_related("bundle_item", "study__bundle")
        study = self.request.query_params.get("study")
        return qs.filter(study_id=study) if study and study.isdigit() else qs

    def perform_update(self, serializer):
        if serializer.instance.study.enrolments.exists():
            raise ValidationError({"detail": "annotators have started this study; its items can no longer change"})
        serializer.save()


def _enrolment(token) -> Enrolment:
    e = Enrolment.objects.select_related("study", "condition").filter(token=token).first()
    if e is None:
        raise NotFound("no enrolment has this token")
    return e


class AnnotatorStateView(APIView):
    """The annotator's state and current item, as their condition shows it."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(responses=dict)
    def get(self, request, token):
        e = _enrolment(token)
        item = current_item(e) if e.step == Enrolment.Step.ITEMS else None
        return APIResponse({"step": e.step, "position": e.position, "items": len(e.item_order),
                            "item": annotator_view(e, item) if item else None})


class AnnotatorResponseView(APIView):
    """Submit the answer to the current item (idempotent for an identical resend)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(request=AnswerSerializer, responses=dict)
    def post(self, request, token):
        e = _enrolment(token)
        data = AnswerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = dict(data.validated_data)
        try:
            with transaction.atomic():
                response, created = submit_response(e, answer.pop("item"), answer)
        except StudyError as exc:
            code = status.HTTP_409_CONFLICT if "closed" in str(exc) or "already answered" in str(exc) \
                else status.HTTP_400_BAD_REQUEST
            return APIResponse({"detail": str(exc)}, status=code)
        return APIResponse({"response": response.pk, "created": created, "practice": response.is_practice},
                           status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
