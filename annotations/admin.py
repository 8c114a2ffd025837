from django.contrib import admin

from studies.admin import ServiceOwned

from .models import Response


@admin.register(Response)
class ResponseAdmin(ServiceOwned, admin.ModelAdmin):
    """Answers are written by ``submit_response`` (and clustered in the concept workspace):
    read-only here."""

    list_display = ("enrolment", "item", "is_practice", "choice", "category", "confidence", "created_at")
    list_filter = ("is_practice", "category", "enrolment__condition")
