from django.http import JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from . import api
from .api_docs import api_docs


@csrf_exempt  # a POST gets the same JSON 404, not the CSRF failure page
def unknown_endpoint(request, *args, **kwargs):
    """Any other URL under /api/ (e.g. /api/studies/1.5/, which no route takes): a JSON 404
    like the API's own, not Django's HTML page."""
    return JsonResponse({"detail": "no such API endpoint"}, status=404)


router = DefaultRouter()
router.register("bundles", api.BundleViewSet, basename="bundle")
router.register("studies", api.StudyViewSet, basename="study")
router.register("conditions", api.ConditionViewSet, basename="condition")
router.register("items", api.StudyItemViewSet, basename="item")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", api_docs, name="api-docs"),  # the schema as a page
    path("annotate/<str:token>/", api.AnnotatorStateView.as_view(), name="annotator-state"),
    path("annotate/<str:token>/responses/", api.AnnotatorResponseView.as_view(), name="annotator-responses"),
    *router.urls,
    # last; only paths ending in a slash, so /api/studies still redirects to /api/studies/
    re_path(r"^(?:.*/)?$", unknown_endpoint),
]
