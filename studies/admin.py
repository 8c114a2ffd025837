"""The admin shows every row; it changes only what no service rules. Studies, conditions,
items, enrolments and answers are written by services (``services.py``), which the builder,
the REST API and the annotator's pages share: an edit here would skip their rules (a
simulation item with one choice, a study with no counted item, an item changed under the
answers to it). What stays editable: who owns or shares a bundle or a study, and deleting
a bundle no study uses."""

from django.contrib import admin

from .models import Bundle, BundleItem, Condition, Enrolment, LiveSOGResult, Study, StudyItem


class ServiceOwned:
    """A model admin mixin: nothing added, changed or deleted here (services own the rules)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def fields_but(model, *editable) -> list[str]:
    """Every field of ``model`` but ``editable`` (as an admin's ``readonly_fields``)."""
    return [f.name for f in model._meta.get_fields() if f.concrete and f.name not in editable]


@admin.register(Bundle)
class BundleAdmin(admin.ModelAdmin):
    """Imported by ``import_bundle`` (validated, all or nothing); here only shared."""

    list_display = ("name", "owner", "dataset", "model", "task", "imported_at")
    readonly_fields = fields_but(Bundle, "owner", "shared_with")
    filter_horizontal = ("shared_with",)

    def has_add_permission(self, request):
        return False


@admin.register(BundleItem)
class BundleItemAdmin(ServiceOwned, admin.ModelAdmin):
    list_display = ("item_id", "bundle", "label", "prediction", "correct")
    list_filter = ("bundle", "correct")


@admin.register(LiveSOGResult)
class LiveSOGResultAdmin(ServiceOwned, admin.ModelAdmin):
    list_display = ("item", "positions", "created_at")


class ConditionInline(ServiceOwned, admin.TabularInline):
    model = Condition
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    """Built and edited in the builder or the API (``create_study``, ``update_details`` …);
    here only its owner and who it is shared with change."""

    list_display = ("title", "task", "status", "owner", "created_at")
    list_filter = ("task", "status")
    readonly_fields = fields_but(Study, "owner", "shared_with")
    filter_horizontal = ("shared_with",)
    inlines = [ConditionInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StudyItem)
class StudyItemAdmin(ServiceOwned, admin.ModelAdmin):
    list_display = ("study", "bundle_item", "is_practice", "order")
    list_filter = ("study", "is_practice")


@admin.register(Enrolment)
class EnrolmentAdmin(ServiceOwned, admin.ModelAdmin):
    list_display = ("pseudonym", "study", "condition", "step", "position", "started_at", "completed_at")
    list_filter = ("study", "condition", "step")


@admin.register(Condition)
class ConditionAdmin(ServiceOwned, admin.ModelAdmin):
    list_display = ("name", "study", "target_size", "paused", "live_sog", "rg_highlights", "ask_helpful_page")
    list_filter = ("study", "paused")
