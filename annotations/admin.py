from django.contrib import admin

from .models import Response


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("enrolment", "item", "is_practice", "choice", "category", "confidence", "created_at")
    list_filter = ("is_practice", "category", "enrolment__condition")
