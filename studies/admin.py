from django.contrib import admin

from .models import Bundle, BundleItem, Condition, Enrolment, LiveSOGResult, Study, StudyItem


@admin.register(Bundle)
class BundleAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "dataset", "model", "task", "imported_at")
    readonly_fields = ("manifest_sha256", "imported_at")
    filter_horizontal = ("shared_with",)


@admin.register(BundleItem)
class BundleItemAdmin(admin.ModelAdmin):
    list_display = ("item_id", "bundle", "label", "prediction", "correct")
    list_filter = ("bundle", "correct")


@admin.register(LiveSOGResult)
class LiveSOGResultAdmin(admin.ModelAdmin):
    list_display = ("item", "positions", "created_at")


class ConditionInline(admin.TabularInline):
    model = Condition
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("title", "task", "status", "owner", "created_at")
    list_filter = ("task", "status")
    readonly_fields = ("invite_token", "created_at")
    inlines = [ConditionInline]


@admin.register(StudyItem)
class StudyItemAdmin(admin.ModelAdmin):
    list_display = ("study", "bundle_item", "is_practice", "order")
    list_filter = ("study", "is_practice")


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ("pseudonym", "study", "condition", "step", "position", "started_at", "completed_at")
    list_filter = ("study", "condition", "step")
    readonly_fields = ("token", "started_at")


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    list_display = ("name", "study", "target_size", "paused", "live_sog", "rg_highlights", "ask_helpful_page")
    list_filter = ("study", "paused")
