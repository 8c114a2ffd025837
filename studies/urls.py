from django.urls import path

from . import views

# The "studies" namespace also holds a study's results pages (its page, exclusions, monitor,
# comparisons, the whole-study document): they read answers, so their views live in
# annotations (annotations.urls.study_pages), which config/urls.py adds to this namespace.
app_name = "studies"

urlpatterns = [
    path("", views.engine_demo, name="engine-demo"),
    path("demo/progress.json", views.demo_progress, name="demo-progress"),
    path("studies/", views.study_list, name="study-list"),
    path("bundles/", views.bundle_list, name="bundles"),
    path("bundles/progress.json", views.bundle_progress, name="bundle-progress"),
    path("bundles/<int:pk>/", views.bundle_detail, name="bundle-detail"),
    path("bundles/<int:pk>/assets/<path:path>", views.bundle_asset, name="bundle-asset"),
    path("bundles/<int:pk>/debugging/", views.bundle_debugging, name="bundle-debugging"),
    path("bundles/<int:pk>/debugging/progress.json", views.bundle_debugging_progress, name="bundle-debugging-progress"),
    path("bundles/<int:pk>/debugging/<str:name>", views.bundle_debugging_asset, name="bundle-debugging-asset"),
    path("bundles/<int:pk>/items/<str:item_id>/live-sog", views.live_sog, name="live-sog"),
]
