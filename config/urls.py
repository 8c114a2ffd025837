from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # the researchers' own login (any account, not only the admin's staff); django-axes locks it out too
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html",
                                                redirect_authenticated_user=True,
                                                extra_context={"failure_limit": settings.AXES_FAILURE_LIMIT}),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # a POST, from the navigation bar
    path("api/", include("annotations.api_urls")),
    path("", include("studies.annotate_urls")),
    path("", include("studies.builder_urls")),
    path("", include("studies.urls")),
    path("", include("annotations.urls")),
]

# a server error's page (JSON under /api/) gives the request id its logged traceback carries
handler500 = "config.request_log.server_error"
handler404 = "config.error_pages.not_found"
