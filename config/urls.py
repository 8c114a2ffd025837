from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotations.api_urls")),
    path("", include("studies.annotate_urls")),
    path("", include("studies.builder_urls")),
    path("", include("studies.urls")),
    path("", include("annotations.urls")),
]

# a server error's page (JSON under /api/) gives the request id its logged traceback carries
handler500 = "config.request_log.server_error"
