from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from . import api

router = DefaultRouter()
router.register("bundles", api.BundleViewSet, basename="bundle")
router.register("studies", api.StudyViewSet, basename="study")
router.register("conditions", api.ConditionViewSet, basename="condition")
router.register("items", api.StudyItemViewSet, basename="item")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("annotate/<str:token>/", api.AnnotatorStateView.as_view(), name="annotator-state"),
    path("annotate/<str:token>/responses/", api.AnnotatorResponseView.as_view(), name="annotator-responses"),
    *router.urls,
]
