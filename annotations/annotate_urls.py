from django.urls import path

from . import annotate

app_name = "annotate"

urlpatterns = [
    path("join/<str:invite>/", annotate.join, name="join"),
    path("a/<str:token>/", annotate.page, name="page"),
    path("a/<str:token>/practice/<int:item_pk>/", annotate.feedback, name="feedback"),
    path("a/<str:token>/items/<int:item_pk>/assets/<path:path>", annotate.asset, name="asset"),
    path("a/<str:token>/items/<int:item_pk>/live-sog", annotate.live_sog, name="live-sog"),
]
