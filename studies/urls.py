from django.urls import path

from . import views

app_name = "studies"

urlpatterns = [
    path("", views.engine_demo, name="engine-demo"),
]
