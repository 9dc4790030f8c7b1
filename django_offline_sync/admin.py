"""Admin for synced tables: ``SyncModelAdmin``, the read-only clocks and horizons, the conflict
and rejection ledger (``SyncRejectionAdmin``) and the sync status page (``SyncStatusAdmin``).

Deleting in the admin is a soft delete, as it is over the API: the row becomes a tombstone
that devices pull, and the "restore" action brings it back. Removing rows for good is a
separate action with its own confirmation page.

Every ModelAdmin here is a ``GuardedAdminMixin``: a NUL character or a lone surrogate in a
lookup, a search term, a selected or an object id is a 400 rather than a database error,
``__regex``/``__iregex`` lookups from the query string are refused, and the changelist runs
under ``QUERY_TIMEOUT_MS``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import get_deleted_objects, model_ngettext, quote
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import router
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ValidationError as DRFValidationError

from . import ledger, wire
from .exceptions import ODataError, QueryTimeout, ReadConflict
from .managers import SyncQuerySet
from .models import SyncActivity, SyncClock, SyncHorizon, SyncImport, SyncModel, SyncRejection
from .query.options import evaluation_guard
from .settings import get_settings

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices
    from django.contrib.admin.options import _ListFilterT
    from django.contrib.admin.views.main import ChangeList
    from django.utils.functional import _StrOrPromise

    # ``ModelAdmin`` is generic only in the stubs; at runtime it cannot be subscripted.
    _GuardedBase = admin.ModelAdmin[Any]
    _SyncModelAdminBase = admin.ModelAdmin[SyncModel]
    _SyncClockAdminBase = admin.ModelAdmin[SyncClock]
    _SyncImportAdminBase = admin.ModelAdmin[SyncImport]
    _SyncHorizonAdminBase = admin.ModelAdmin[SyncHorizon]
    _SyncRejectionAdminBase = admin.ModelAdmin[SyncRejection]
    _SyncActivityAdminBase = admin.ModelAdmin[SyncActivity]
else:
    _GuardedBase = object
    _SyncModelAdminBase = _SyncClockAdminBase = _SyncImportAdminBase = admin.ModelAdmin
    _SyncHorizonAdminBase = _SyncRejectionAdminBase = _SyncActivityAdminBase = admin.ModelAdmin

#: The system fields shown read-only on every change form (``id`` only once saved).
SYSTEM_READONLY_FIELDS = ("created_at", "updated_at", "version", "deleted")

_REGEX_LOOKUPS = frozenset({"regex", "iregex"})


def unbindable(value: object) -> bool:
    """Whether ``value`` (a string, or a list of them) holds text no database query can bind."""
    if isinstance(value, (list, tuple)):
        return any(unbindable(item) for item in value)
    return isinstance(value, str) and wire.UNSTORABLE_TEXT.search(value) is not None


class UnsafeAdminValue(SuspiciousOperation):
    """A NUL or a lone surrogate in an admin search term or object id (400, logged on
    ``django.security.UnsafeAdminValue``)."""


class GuardedAdminMixin(_GuardedBase):
    """Hardening of a ``ModelAdmin`` against hostile query strings and URLs.

    * a lookup (name or value) holding a NUL or a lone surrogate is refused by
      ``lookup_allowed``, which Django answers 400 (``DisallowedModelAdminLookup``), as it does
      any lookup it does not allow; so is such a search term in the autocomplete (the
      changelist's search form already drops one with Django's "Null characters are not
      allowed" message);
    * such an object id in the change, delete or history URL, or among the ids an action or a
      list-editable form posts, is a 400 (``UnsafeAdminValue``) instead of the database's
      error (PostgreSQL text cannot hold a NUL: a 500);
    * ``__regex`` and ``__iregex`` lookups from the query string are refused (400): a pattern
      such as ``(a*)*b`` backtracks for minutes per row, and on SQLite the regex runs in
      Python, where no statement time limit reaches it. ``allow_regex_lookups = True`` opts in;
    * a GET of the changelist (its queries and its rendering) runs under ``QUERY_TIMEOUT_MS``
      (``query_timeout_ms`` overrides it for one ModelAdmin, 0 turns it off); a page stopped
      by it is a 503.
    """

    allow_regex_lookups: bool = False
    query_timeout_ms: int | None = None

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if unbindable(lookup) or unbindable(value):
            return False
        _head, sep, last = lookup.rpartition(LOOKUP_SEP)
        if sep and last in _REGEX_LOOKUPS and not self.allow_regex_lookups:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if unbindable(search_term):
            raise UnsafeAdminValue("Searching for a NUL character or a lone surrogate is not allowed")
        return super().get_search_results(request, queryset, search_term)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        if unbindable(object_id):
            raise UnsafeAdminValue("An object id with a NUL character or a lone surrogate is not allowed")
        return super().get_object(request, object_id, from_field)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            self._refuse_unbindable_post(request)
            return super().changelist_view(request, extra_context)
        timeout_ms = self.query_timeout_ms
        if timeout_ms is None:
            timeout_ms = get_settings().QUERY_TIMEOUT_MS
        try:
            with evaluation_guard("admin", router.db_for_read(self.model), timeout_ms=timeout_ms, per_statement=True):
                response = super().changelist_view(request, extra_context)
                if isinstance(response, SimpleTemplateResponse):
                    response.render()  # the page's own queries (rows, filters, dates) run here
        except QueryTimeout:
            return HttpResponse(
                _(
                    "The list took longer than %(ms)d ms (QUERY_TIMEOUT_MS) and was stopped. "
                    "Narrow it with a filter or a search, or try again later."
                )
                % {"ms": timeout_ms},
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        except ReadConflict as exc:  # a replica cancelled the read: try again
            return HttpResponse(str(exc.detail), status=exc.status_code, content_type="text/plain; charset=utf-8")
        except ODataError:  # a value out of range: what evaluation_guard makes of a DataError
            return HttpResponseBadRequest(
                _("The list could not be evaluated: a value went out of range."),
                content_type="text/plain; charset=utf-8",
            )
        return response

    def _refuse_unbindable_post(self, request: HttpRequest) -> None:
        """The ids an action or the list-editable formset would look up; other fields go
        through form validation, which refuses a NUL in text (``ProhibitNullCharactersValidator``)."""
        pk_field = f"-{self.opts.pk.name}"
        for key in request.POST:
            ids = key == helpers.ACTION_CHECKBOX_NAME or key.endswith(pk_field)
            if ids and unbindable(request.POST.getlist(key)):
                raise UnsafeAdminValue("A selected id with a NUL character or a lone surrogate is not allowed")


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


class SyncModelAdmin(GuardedAdminMixin, _SyncModelAdminBase):
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
class SyncClockAdmin(GuardedAdminMixin, _SyncClockAdminBase):
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
class SyncImportAdmin(GuardedAdminMixin, _SyncImportAdminBase):
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


# -- the resync horizon and the conflict and rejection ledger ---------------------------------


@admin.register(SyncHorizon)
class SyncHorizonAdmin(GuardedAdminMixin, _SyncHorizonAdminBase):
    """Read-only: how far ``purge_tombstones`` went per table (``docs/fleet.rst``)."""

    list_display = ("table", "horizon", "purged", "purged_at")
    ordering = ("table",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SyncHorizon | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SyncHorizon | None = None) -> bool:
        # Lowering or removing a horizon would let stranded devices skip their resync.
        return False


def viewable_models(request: HttpRequest) -> list[str]:
    """``app_label.model_name`` of every synced table the user may view (the ledger's scope)."""
    from .retention import sync_models

    user = request.user
    return [
        m._meta.label_lower
        for m in sync_models()
        if user.has_perm(f"{m._meta.app_label}.view_{m._meta.model_name}")
        or user.has_perm(f"{m._meta.app_label}.change_{m._meta.model_name}")
    ]


class TableListFilter(admin.SimpleListFilter):
    """The tables the user may view, and only those (the ledger never names another)."""

    title = gettext_lazy("table")
    parameter_name = "table"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, _StrOrPromise]]:
        from .retention import sync_models

        allowed = set(viewable_models(request))
        return [
            (m._meta.label_lower, capfirst(str(m._meta.verbose_name_plural)))
            for m in sync_models()
            if m._meta.label_lower in allowed
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(model=value) if value else queryset


class OutcomeListFilter(admin.SimpleListFilter):
    """Conflicts (409/412), still open or resolved, and rejections (400/403/404/410)."""

    title = gettext_lazy("kind")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, _StrOrPromise]]:
        return [
            ("open", gettext_lazy("Open conflicts")),
            ("conflict", gettext_lazy("All conflicts (409, 412)")),
            ("rejection", gettext_lazy("Rejections (400, 403, 404, 410)")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "open":
            return queryset.filter(status__in=(409, 412), resolution="")
        if value == "conflict":
            return queryset.filter(status__in=(409, 412))
        if value == "rejection":
            return queryset.exclude(status__in=(409, 412))
        return queryset


def _pretty(value: Any) -> str:
    if value is None:
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text)


@admin.register(SyncRejection)
class SyncRejectionAdmin(GuardedAdminMixin, _SyncRejectionAdminBase):
    """The conflict and rejection ledger: read-only entries, resolved with two actions.

    A staff user sees only entries of tables they may view (``view`` or ``change``
    permission on the table's model); applying a client's item also needs ``change`` on it.
    """

    list_display = ("created_at", "status", "operation", "table", "row_id", "user", "generation", "error_code",
                    "resolution_shown")
    list_filter = (OutcomeListFilter, TableListFilter, "status", ("user", admin.RelatedOnlyFieldListFilter),
                   "created_at", "resolution")
    date_hierarchy = "created_at"
    search_fields = ("=row_id",)
    actions = ["keep_server_row", "apply_client_item"]
    list_select_related = ("user",)
    fields = ("created_at", "status", "error_code", "message", "operation", "generation", "table", "model",
              "row_id", "user", "base_version", "client_item_shown", "server_version", "server_item_shown",
              "resolution", "resolved_at", "resolved_by", "applied_version")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncRejection]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(model__in=viewable_models(request))

    def get_readonly_fields(self, request: HttpRequest, obj: SyncRejection | None = None) -> tuple[str, ...]:
        return self.fields

    @admin.display(description=gettext_lazy("resolution"), ordering="resolution")
    def resolution_shown(self, obj: SyncRejection) -> str:
        if obj.resolution:
            return str(obj.get_resolution_display())
        return str(_("open")) if obj.is_conflict else "—"

    @admin.display(description=gettext_lazy("client's item"))
    def client_item_shown(self, obj: SyncRejection) -> str:
        return _pretty(obj.client_item)

    @admin.display(description=gettext_lazy("server's item"))
    def server_item_shown(self, obj: SyncRejection) -> str:
        return _pretty(obj.server_item)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SyncRejection | None = None) -> bool:
        return False  # the retention (``purge_rejections``) removes entries

    @admin.action(permissions=["change"], description=gettext_lazy("Resolve: keep the server's row"))
    def keep_server_row(self, request: HttpRequest, queryset: QuerySet[SyncRejection]) -> None:
        done = 0
        for entry in queryset.filter(status__in=(409, 412), resolution=""):
            try:
                ledger.keep_server_row(entry, request.user if request.user.is_authenticated else None)
            except ledger.ResolveError as exc:  # resolved meanwhile, by another request
                self.message_user(request, f"{entry}: {exc}", messages.ERROR)
                continue
            done += 1
        self._report(request, queryset, done, _("Kept the server's row for %(count)d conflict(s)."))

    @admin.action(permissions=["change"], description=gettext_lazy("Resolve: apply the client's item"))
    def apply_client_item(self, request: HttpRequest, queryset: QuerySet[SyncRejection]) -> None:
        done = 0
        for entry in queryset.filter(status__in=(409, 412), resolution=""):
            app_label, _dot, model_name = entry.model.partition(".")
            if not request.user.has_perm(f"{app_label}.change_{model_name}"):
                self.message_user(
                    request, _("%(entry)s: you may not change this table.") % {"entry": entry}, messages.ERROR
                )
                continue
            try:
                ledger.apply_client_item(entry, request.user if request.user.is_authenticated else None)
            except (ledger.ResolveError, DRFValidationError) as exc:
                self.message_user(request, f"{entry}: {exc}", messages.ERROR)
                continue
            done += 1
        self._report(request, queryset, done, _("Applied the client's item for %(count)d conflict(s)."))

    def _report(self, request: HttpRequest, queryset: QuerySet[SyncRejection], done: int, text: str) -> None:
        self.message_user(request, text % {"count": done}, messages.SUCCESS if done else messages.WARNING)
        skipped = queryset.count() - done
        if skipped:
            self.message_user(
                request,
                _("%(count)d selected entries were not open conflicts or could not be applied.") % {"count": skipped},
                messages.WARNING,
            )


# -- the sync status page --------------------------------------------------------------------


@admin.register(SyncActivity)
class SyncStatusAdmin(GuardedAdminMixin, _SyncActivityAdminBase):
    """"Sync status" in the admin: one page with every table's figures and who synced when.

    Registered on ``SyncActivity`` so that it is listed under *Offline sync* like any model;
    its changelist is the status page. Tables appear only to users who may view them.
    """

    activity_limit = 500

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SyncActivity | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SyncActivity | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        from .retention import sync_models

        allowed = set(viewable_models(request))
        now = timezone.now()
        models_ = [m for m in sync_models() if request.user.is_superuser or m._meta.label_lower in allowed]
        horizons = dict(SyncHorizon.objects.values_list("table", "horizon"))
        open_conflicts = dict(
            SyncRejection.objects.filter(status__in=(409, 412), resolution="")
            .values("model")
            .annotate(n=Count("id"))
            .values_list("model", "n")
        )
        tables = []
        for model in models_:
            figures = model.all_objects.aggregate(
                live=Count("pk", filter=Q(deleted=False)),
                tombstones=Count("pk", filter=Q(deleted=True)),
                hour=Count("pk", filter=Q(updated_at__gte=now - dt.timedelta(hours=1))),
                day=Count("pk", filter=Q(updated_at__gte=now - dt.timedelta(days=1))),
                newest=Max("updated_at"),
            )
            label = model._meta.label_lower
            try:
                changelist: str | None = reverse(
                    f"{self.admin_site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist"
                )
            except NoReverseMatch:
                changelist = None
            tables.append(
                {
                    **figures,
                    "label": label,
                    "name": capfirst(str(model._meta.verbose_name_plural)),
                    "db_table": model._meta.db_table,
                    "horizon": horizons.get(model._meta.db_table),
                    "conflicts": open_conflicts.get(label, 0),
                    "changelist": changelist,
                }
            )
        visible = {m._meta.label_lower for m in models_}
        activity = list(
            SyncActivity.objects.filter(table__in=visible)
            .select_related("user")
            .order_by(Coalesce("last_push", "last_pull").desc(nulls_last=True), "id")[: self.activity_limit + 1]
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Sync status"),
            "opts": self.model._meta,
            "now": now,
            "tables": tables,
            "activity": activity[: self.activity_limit],
            "activity_truncated": len(activity) > self.activity_limit,
            "activity_limit": self.activity_limit,
            "ledger": reverse(f"{self.admin_site.name}:offline_sync_syncrejection_changelist"),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "offline_sync/admin/sync_status.html", context)
