"""The REST API. Researchers log in (session or basic auth) and see only their own studies;
annotators are identified only by their enrolment token. Schema: /api/schema/."""

import re

from django.db import transaction
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response as APIResponse
from rest_framework.views import APIView

from studies.models import Condition, Enrolment, Study, StudyItem
from studies.selectors import accessible_bundles, accessible_studies, annotator_view, current_item, enrolment_by_token
from studies.services import (
    DETAIL_FIELDS,
    ExclusionChange,
    StudyError,
    create_study,
    set_exclusion,
    set_status,
    update_conditions,
    update_details,
    update_items,
    update_recruitment,
)

from .authentication import BasicAuthentication
from .exports import study_json, summary_rows
from .models import Response
from .selectors import condition_metrics, conditions_answers
from .serializers import (
    AnnotatorStateSerializer,
    AnswerResultSerializer,
    AnswerSerializer,
    BundleSerializer,
    ConditionSerializer,
    EnrolmentSerializer,
    ErrorSerializer,
    RefuseUnknownFields,
    ResponseSerializer,
    StudyCreateSerializer,
    StudyItemSerializer,
    StudySerializer,
)
from .services import submit_response


MAX_DB_ID = 2**63 - 1  # the largest primary key any supported database can hold
ROWS = build_array_type(build_basic_type(OpenApiTypes.OBJECT))  # a list of free-form objects


class ApiSchema(AutoSchema):
    """Documents the refusals of each operation next to its success, so the schema lists
    every status code the API answers with (as JSON, ``ErrorSerializer``)."""

    def map_parsers(self):
        # the views also parse forms, but a form cannot carry the lists and nulls the
        # bodies are made of: JSON is the documented encoding
        return ["application/json"]

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if isinstance(serializer, RefuseUnknownFields):
            schema["additionalProperties"] = False  # a body with other fields is a 400
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        refusals = {}
        body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        if body or self.get_override_parameters():  # a body, or query parameters
            refusals["400"] = "the request is malformed or breaks a rule; the body says why"
        if body:
            refusals["413"] = "the body is larger than the server reads (DATA_UPLOAD_MAX_MEMORY_SIZE)"
        if any(not issubclass(p, permissions.AllowAny) for p in self.view.permission_classes):
            refusals["401"] = ("not logged in (session or HTTP basic auth), or wrong credentials; the "
                               "WWW-Authenticate header names the basic auth realm")
            if self.method not in permissions.SAFE_METHODS:
                refusals["403"] = "logged in by a session cookie, but without the session's CSRF token"
        if "{" in self.path:
            refusals["404"] = "no such object among those you may see"
        if any(issubclass(a, BasicAuthentication) for a in self.view.authentication_classes):
            refusals["429"] = ("too many wrong passwords for this account or from this address (django-axes): "
                               "logins are refused until the cool-off given in Retry-After has passed")
        for code, description in refusals.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, direction=direction)
        return responses


def _by_service(write, *args):
    """Run a service's write; its refusal is a 400 with the service's message (the builder
    shows the same words)."""
    try:
        return write(*args)
    except StudyError as exc:
        raise ValidationError({"detail": str(exc)}) from None


def _owned(request):
    """The researcher's own studies and those shared with them (none during schema generation)."""
    return accessible_studies(request.user if request else None)


class BundleViewSet(viewsets.ReadOnlyModelViewSet):
    """Bundles the researcher may build studies on; another researcher's bundle is a 404."""

    schema = ApiSchema()
    serializer_class = BundleSerializer

    def get_queryset(self):
        return accessible_bundles(self.request.user if self.request else None)


class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Studies of the logged-in researcher; another researcher's study is a 404."""

    schema = ApiSchema()
    serializer_class = StudySerializer

    def get_queryset(self):
        return _owned(self.request).prefetch_related("conditions")

    def perform_update(self, serializer):
        """The builder's rules: title, texts and item order (``update_details``), the
        completion URL and code (``update_recruitment``), all or nothing."""
        study, data = serializer.instance, serializer.validated_data
        with transaction.atomic():
            _by_service(update_details, study, {k: v for k, v in data.items() if k in DETAIL_FIELDS})
            recruitment = {k: v for k, v in data.items() if k not in DETAIL_FIELDS}
            if recruitment:
                _by_service(update_recruitment, study, recruitment)

    @extend_schema(request=StudyCreateSerializer, responses=StudySerializer)
    def create(self, request):
        data = StudyCreateSerializer(data=request.data, context={"request": request})
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
        try:  # the service's rules: e.g. no opening while every condition is paused
            study = set_status(self.get_object(), new)
        except StudyError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return APIResponse(StudySerializer(study).data)

    @extend_schema(request=None, responses={200: StudySerializer, 400: ErrorSerializer})
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

    @extend_schema(request=ExclusionChange, responses={200: EnrolmentSerializer})
    @action(detail=True, methods=["post"])
    def exclusions(self, request, pk=None):
        """Exclude an annotator from the study's metrics (``excluded: true``) or include them
        again (``false``), with a reason; recorded with who and when, carried by the exports."""
        study = self.get_object()
        ExclusionChange(data=request.data).is_valid(raise_exception=True)  # refusals keyed by field
        try:
            enrolment = set_exclusion(study, request.data, request.user)
        except StudyError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return APIResponse(EnrolmentSerializer(enrolment).data)

    @extend_schema(responses=ResponseSerializer(many=True))
    @action(detail=True)
    def responses(self, request, pk=None):
        rows = Response.objects.filter(enrolment__study=self.get_object()).select_related(
            "enrolment__condition", "item__bundle_item")
        return APIResponse(ResponseSerializer(rows, many=True).data)

    @extend_schema(responses={200: OpenApiResponse(ROWS, description="one object of figures per condition")})
    @action(detail=True)
    def metrics(self, request, pk=None):
        conditions = list(self.get_object().conditions.all())
        return APIResponse([condition_metrics(c, answers=a) for c, a in zip(conditions, conditions_answers(conditions))])

    @extend_schema(responses={200: OpenApiResponse(
        build_basic_type(OpenApiTypes.OBJECT),
        description="the tests between conditions (annotations.analysis.study_analysis): accuracy odds ratios, "
                    "confidence (ordinal), differences of α; the page's and the exports' very numbers")})
    @action(detail=True)
    def analysis(self, request, pk=None):
        from .analysis import study_analysis

        return APIResponse(study_analysis(self.get_object()))

    @extend_schema(responses={200: OpenApiResponse(ROWS, description="one row per condition, the paper's table")})
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

    schema = ApiSchema()
    serializer_class = ConditionSerializer

    def get_queryset(self):
        return Condition.objects.filter(study__in=_owned(self.request))

    def perform_update(self, serializer):
        """The builder's rules (``update_conditions``)."""
        condition = serializer.instance
        _by_service(update_conditions, condition.study, {condition.pk: dict(serializer.validated_data)})
        condition.refresh_from_db()


@extend_schema_view(list=extend_schema(parameters=[
    OpenApiParameter("study", int, description="only the items of this study"),
]))
class StudyItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                       viewsets.GenericViewSet):
    """Items of the researcher's studies: edit answer choices, practice flags and order."""

    schema = ApiSchema()
    serializer_class = StudyItemSerializer

    def get_queryset(self):
        qs = StudyItem.objects.filter(study__in=_owned(self.request)).select_related("bundle_item", "study__bundle")
        study = self.request.query_params.get("study")
        if study is None:
            return qs
        # str.isdigit() also passes "²", which int() refuses: ASCII digits only
        if not re.fullmatch(r"[0-9]+", study):
            raise ValidationError({"study": "the study filter must be a study id (a whole number)"})
        # a number beyond the database's integers names no study (SQLite cannot even compare one)
        if len(study) > len(str(MAX_DB_ID)) or int(study) > MAX_DB_ID:
            return qs.none()
        return qs.filter(study_id=int(study))

    def perform_update(self, serializer):
        """The builder's rules (``update_items``): locked once annotators start, choices of
        the model's classes (two or more in model simulation), a counted item kept."""
        item = serializer.instance
        _by_service(update_items, item.study, {item.pk: dict(serializer.validated_data)})
        item.refresh_from_db()


def _enrolment(token) -> Enrolment:
    e = enrolment_by_token(token)
    if e is None:
        raise NotFound("no enrolment has this token")
    return e


class AnnotatorStateView(APIView):
    """The annotator's state and current item, as their condition shows it."""

    schema = ApiSchema()
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(responses=AnnotatorStateSerializer)
    def get(self, request, token):
        e = _enrolment(token)
        item = current_item(e) if e.step == Enrolment.Step.ITEMS else None
        return APIResponse({"step": e.step, "position": e.position, "items": len(e.item_order),
                            "item": annotator_view(e, item) if item else None})


class AnnotatorResponseView(APIView):
    """Submit the answer to the current item (idempotent for an identical resend)."""

    schema = ApiSchema()
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(request=AnswerSerializer, responses={
        201: OpenApiResponse(AnswerResultSerializer, description="the answer is saved"),
        200: OpenApiResponse(AnswerResultSerializer, description="the same answer was already saved"),
        409: OpenApiResponse(ErrorSerializer, description="the item has another answer, or the study is closed"),
    })
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
