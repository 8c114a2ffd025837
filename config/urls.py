from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotations import urls as annotations_urls
from studies import builder_urls
from studies import urls as studies_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    # the researchers' own login (any account, not only the admin's staff); django-axes locks it out too
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html",
                                                redirect_authenticated_user=True,
                                                extra_context={"failure_limit": settings.AXES_FAILURE_LIMIT}),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # a POST, from the navigation bar
    path("api/", include("annotations.api_urls")),
    path("", include("annotations.annotate_urls")),
    # the builder's pages, and its planner, which simulates with annotations' analysis model
    path("", include((builder_urls.urlpatterns + annotations_urls.planner_pages, builder_urls.app_name))),
    # one namespace over two apps: the results pages read answers, which studies cannot import
    path("", include((studies_urls.urlpatterns + annotations_urls.study_pages, studies_urls.app_name))),
    path("", include("annotations.urls")),
]

# a server error's page (JSON under /api/) gives the request id its logged traceback carries
handler500 = "config.request_log.server_error"
handler404 = "config.error_pages.not_found"
