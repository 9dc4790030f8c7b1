"""Admin for the example tables, built on ``SyncModelAdmin`` (soft delete, restore, filter)."""

from __future__ import annotations

from django.contrib import admin

from django_offline_sync.admin import SyncModelAdmin

from .models import Inspection, Note, Task


class NoteInline(admin.TabularInline):
    model = Note
    fields = ("body",)
    extra = 0
    show_change_link = True


@admin.register(Task)
class TaskAdmin(SyncModelAdmin):
    list_display = ("text", "priority", "due_date", "complete", "updated_at", "deleted")
    list_filter = ("complete", "priority")
    search_fields = ("text",)
    date_hierarchy = "due_date"
    inlines = [NoteInline]


@admin.register(Note)
class NoteAdmin(SyncModelAdmin):
    list_display = ("__str__", "task", "updated_at", "deleted")
    search_fields = ("body", "task__text")
    list_select_related = ("task",)
    autocomplete_fields = ("task",)


@admin.register(Inspection)
class InspectionAdmin(SyncModelAdmin):
    list_display = ("site", "pipe_id", "condition", "owner", "inspected_at", "updated_at", "deleted")
    list_filter = ("condition",)
    search_fields = ("site", "pipe_id", "remarks")
    list_select_related = ("owner",)
    readonly_fields = ("owner",)
