from django.urls import path

from . import views

app_name = "studies"

urlpatterns = [
    path("", views.engine_demo, name="engine-demo"),
    path("demo/progress.json", views.demo_progress, name="demo-progress"),
    path("studies/", views.study_list, name="study-list"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/exclusions/", views.study_exclusion, name="study-exclusion"),
    path("studies/<int:pk>/monitor.json", views.study_monitor, name="study-monitor"),
    path("studies/<int:pk>/compare.json", views.study_compare, name="study-compare"),
    path("studies/<int:pk>/whole-study.json", views.study_transfer, name="study-transfer"),
    path("bundles/", views.bundle_list, name="bundles"),
    path("bundles/progress.json", views.bundle_progress, name="bundle-progress"),
    path("bundles/<int:pk>/assets/<path:path>", views.bundle_asset, name="bundle-asset"),
    path("bundles/<int:pk>/debugging/", views.bundle_debugging, name="bundle-debugging"),
    path("bundles/<int:pk>/debugging/progress.json", views.bundle_debugging_progress, name="bundle-debugging-progress"),
    path("bundles/<int:pk>/debugging/<str:name>", views.bundle_debugging_asset, name="bundle-debugging-asset"),
    path("bundles/<int:pk>/items/<str:item_id>/live-sog", views.live_sog, name="live-sog"),
]
