"""Admin for synced tables: ``SyncModelAdmin`` and a read-only view of the sync clocks.

Deleting in the admin is a soft delete, as it is over the API: the row becomes a tombstone
that devices pull, and the "restore" action brings it back. Removing rows for good is a
separate action with its own confirmation page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import get_deleted_objects, model_ngettext, quote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import wire
from .managers import SyncQuerySet
from .models import SyncClock, SyncImport, SyncModel

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices
    from django.contrib.admin.options import _ListFilterT
    from django.contrib.admin.views.main import ChangeList
    from django.utils.functional import _StrOrPromise

    # ``ModelAdmin`` is generic only in the stubs; at runtime it cannot be subscripted.
    _SyncModelAdminBase = admin.ModelAdmin[SyncModel]
    _SyncClockAdminBase = admin.ModelAdmin[SyncClock]
    _SyncImportAdminBase = admin.ModelAdmin[SyncImport]
else:
    _SyncModelAdminBase = _SyncClockAdminBase = _SyncImportAdminBase = admin.ModelAdmin

#: The system fields shown read-only on every change form (``id`` only once saved).
SYSTEM_READONLY_FIELDS = ("created_at", "updated_at", "version", "deleted")


class DeletedListFilter(admin.SimpleListFilter):
    """Live rows by default; "Deleted" shows only tombstones, "All" shows both.

    The default (no parameter) is the live rows, because that is what the rest of the
    project calls "the table" and what an admin user expects to see after deleting a row.
    """

    title = gettext_lazy("deleted")
    parameter_name = "deleted"

    LIVE, DELETED, ALL = None, "deleted", "all"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, _StrOrPromise]]:
        return [(self.DELETED, gettext_lazy("Deleted")), (self.ALL, gettext_lazy("All"))]

    def choices(self, changelist: ChangeList) -> Iterator[_ListFilterChoices]:
        # Replaces the usual "All" first entry: the unfiltered default here is "Live".
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Live"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[SyncModel]) -> QuerySet[SyncModel]:
        value = self.value()
        if value == self.ALL:
            return queryset
        if value == self.DELETED:
            return queryset.filter(deleted=True)
        return queryset.filter(deleted=False)


class SyncModelAdmin(_SyncModelAdminBase):
    """Base ``ModelAdmin`` for ``SyncModel`` subclasses.

    * system fields are read-only (``id`` becomes read-only once the row is saved);
    * the changelist shows live rows, with a "deleted" filter for tombstones;
    * deleting (the delete button and the "delete selected" action) is a soft delete;
    * "restore selected" undeletes; "hard delete selected (permanent)" removes rows for
      good after a confirmation page with a checkbox that must be ticked.
    """

    list_display = ("__str__", "id", "updated_at", "deleted")
    ordering = ("-updated_at",)
    actions = ["delete_selected", "restore_selected", "hard_delete_selected"]  # a list, as in 0.1: subclasses extend it
    delete_confirmation_template = "offline_sync/admin/soft_delete_confirmation.html"
    delete_selected_confirmation_template = "offline_sync/admin/soft_delete_selected_confirmation.html"
    hard_delete_confirmation_template = "offline_sync/admin/hard_delete_selected_confirmation.html"

    # -- queryset, fields, filters ---------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> SyncQuerySet[SyncModel]:
        # Deleted rows must be reachable (filter, change view, restore); the filter hides them.
        qs: SyncQuerySet[SyncModel] = self.model.all_objects.get_queryset()
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def get_readonly_fields(self, request: HttpRequest, obj: SyncModel | None = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        system = (("id",) if obj is not None else ()) + SYSTEM_READONLY_FIELDS
        return fields + tuple(f for f in system if f not in fields)

    def get_list_filter(self, request: HttpRequest) -> tuple[_ListFilterT, ...]:
        filters = tuple(super().get_list_filter(request))
        if DeletedListFilter in filters or "deleted" in filters:
            return filters
        return (DeletedListFilter, *filters)

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        fields = tuple(super().get_search_fields(request))
        # Searching by id finds a row a device reports, whatever else is searchable.
        return fields if not fields or "id" in fields else (*fields, "=id")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[SyncModel], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "autocomplete":
            # Other models' forms validate against the live rows only; do not offer tombstones.
            queryset = queryset.filter(deleted=False)
        return queryset, may_have_duplicates

    # -- soft delete -------------------------------------------------------------------------

    def delete_model(self, request: HttpRequest, obj: SyncModel) -> None:
        obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SyncModel]) -> None:
        queryset.delete()

    def get_deleted_objects(
        self, objs: Sequence[SyncModel] | QuerySet[SyncModel], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """Only the selected rows: a soft delete does not cascade to related rows."""
        objs = list(objs)
        opts = self.model._meta
        perms_needed: set[str] = set()
        listed: list[str] = []
        for obj in objs:
            if not self.has_delete_permission(request, obj):
                perms_needed.add(str(opts.verbose_name))
            listed.append(self._object_link(obj))
        return listed, {str(opts.verbose_name_plural): len(objs)}, perms_needed, []

    def _object_link(self, obj: SyncModel) -> str:
        opts = obj._meta
        try:
            url = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=(quote(obj.pk),)
            )
        except NoReverseMatch:  # pragma: no cover - the model is always registered here
            return f"{capfirst(opts.verbose_name)}: {obj}"
        return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)

    # -- actions ---------------------------------------------------------------------------------

    @admin.action(
        permissions=["delete"],
        description=gettext_lazy("Delete selected %(verbose_name_plural)s (can be restored)"),
    )
    def delete_selected(self, request: HttpRequest, queryset: SyncQuerySet[SyncModel]) -> HttpResponse | None:
        """Django's own delete flow and confirmation page, ending in ``delete_queryset`` (soft)."""
        return django_delete_selected(self, request, queryset.filter(deleted=False))

    @admin.action(permissions=["change"], description=gettext_lazy("Restore selected %(verbose_name_plural)s"))
    def restore_selected(self, request: HttpRequest, queryset: SyncQuerySet[SyncModel]) -> None:
        count = queryset.undelete()
        self.message_user(
            request,
            _("Restored %(count)d %(items)s.") % {"count": count, "items": model_ngettext(self.opts, count)},
            messages.SUCCESS,
        )

    @admin.action(
        permissions=["delete"],
        description=gettext_lazy("Hard delete selected %(verbose_name_plural)s (permanent)"),
    )
    def hard_delete_selected(self, request: HttpRequest, queryset: SyncQuerySet[SyncModel]) -> HttpResponse | None:
        """Remove rows for good, after a confirmation page whose checkbox must be ticked.

        Devices that already pulled these rows are never told they are gone; prefer the
        soft delete unless the rows must disappear (personal data, test rows).
        """
        opts = self.model._meta
        deletable, model_count, perms_needed, protected = get_deleted_objects(queryset, request, self.admin_site)
        confirmed = request.POST.get("post") == "yes" and request.POST.get("confirm") == "yes"
        if confirmed and not protected:
            if perms_needed:
                raise PermissionDenied
            count = len(queryset)
            if count:
                self.log_deletions(request, queryset)
                queryset.hard_delete()
                self.message_user(
                    request,
                    _("Permanently deleted %(count)d %(items)s.")
                    % {"count": count, "items": model_ngettext(self.opts, count)},
                    messages.SUCCESS,
                )
            return None
        objects_name = model_ngettext(queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Permanently delete %(name)s") % {"name": objects_name},
            "subtitle": None,
            "objects_name": str(objects_name),
            "deletable_objects": [deletable],
            "model_count": dict(model_count).items(),
            "queryset": queryset,
            "perms_lacking": perms_needed,
            "protected": protected,
            "confirm_missing": request.POST.get("post") == "yes",
            "opts": opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.hard_delete_confirmation_template, context)


@admin.register(SyncClock)
class SyncClockAdmin(_SyncClockAdminBase):
    """Read-only: the last stamp per table, for operators checking that writes flow."""

    list_display = ("table", "last_ms", "last_stamp")
    search_fields = ("table",)
    ordering = ("table",)

    @admin.display(description=gettext_lazy("last stamp (UTC)"))
    def last_stamp(self, obj: SyncClock) -> dt.datetime | None:
        return wire.ms_to_datetime(obj.last_ms) if obj.last_ms else None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SyncClock | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SyncClock | None = None) -> bool:
        # Editing a clock would break the gap-free ordering of that table's stamps.
        return False


@admin.register(SyncImport)
class SyncImportAdmin(_SyncImportAdminBase):
    """Read-only: where each ``import_sync_table`` stands. Deleting a row forgets its progress
    (the next run reads every row again, as ``--restart`` does); imported rows stay."""

    list_display = ("target", "source", "generation", "complete", "token", "runs", "written", "finished_at")
    list_filter = ("complete", "generation")
    search_fields = ("target", "source")
    ordering = ("target", "source")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SyncImport | None = None) -> bool:
        return False
