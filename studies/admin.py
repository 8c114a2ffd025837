from django.contrib import admin

from .models import Bundle, BundleItem, LiveSOGResult


@admin.register(Bundle)
class BundleAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset", "model", "task", "imported_at")
    readonly_fields = ("manifest_sha256", "imported_at")


@admin.register(BundleItem)
class BundleItemAdmin(admin.ModelAdmin):
    list_display = ("item_id", "bundle", "label", "prediction", "correct")
    list_filter = ("bundle", "correct")


@admin.register(LiveSOGResult)
class LiveSOGResultAdmin(admin.ModelAdmin):
    list_display = ("item", "positions", "created_at")
