"""``SyncViewSet``: a DRF viewset that serves one ``SyncModel`` as a sync table.

It detects the client generation per request, parses the OData query once, applies the
data view (``get_queryset``) to every lookup, and renders every answer, errors included,
in the caller's dialect. Register it with ``SyncRouter`` under ``/tables/``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import NOT_PROVIDED, QuerySet
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from . import generations
from .exceptions import Conflict, ODataError
from .filters import ODataFilterBackend
from .mixins import (
    CreateMixin,
    DestroyMixin,
    ListMixin,
    RetrieveMixin,
    UndeleteMixin,
    UpdateMixin,
    WriteMixin,
)
from .models import SyncModel
from .pagination import ODataPagination, pull_boundary
from .query import FieldMap, parse_query, resolve_page_size
from .query.options import include_deleted_option
from .serializers import Representer, new_id_for, representer_for, serializer_class_for
from .settings import sync_settings

OPERATIONS = {
    "list": "read",
    "retrieve": "read",
    "create": "insert",
    "update": "update",
    "partial_update": "update",
    "destroy": "delete",
    "undelete": "undelete",
}


class SyncViewSet(
    ListMixin, RetrieveMixin, CreateMixin, UpdateMixin, DestroyMixin, UndeleteMixin, WriteMixin, GenericViewSet
):
    """Serve ``model`` (a ``SyncModel``) with the Azure Mobile Apps / Datasync protocol.

    Attributes, in the style of DRF's:

    * ``model`` (or ``queryset``): the table.
    * ``fields``: model field names exposed (``None``: every editable column).
    * ``odata_fields``: model field names usable in ``$filter``/``$orderby`` (``None``: ``fields``).
    * ``soft_delete``: ``None`` follows ``OFFLINE_SYNC["SOFT_DELETE"]``.
    * ``operation_permission_classes``: ``{"read"|"insert"|"update"|"delete"|"undelete": [...]}``
      overriding ``permission_classes`` per operation.
    """

    model: ClassVar[type[SyncModel] | None] = None
    fields: ClassVar[list[str] | tuple[str, ...] | None] = None
    odata_fields: ClassVar[list[str] | tuple[str, ...] | None] = None
    soft_delete: ClassVar[bool | None] = None
    operation_permission_classes: ClassVar[dict[str, list[Any]]] = {}
    filter_backends = [ODataFilterBackend]
    pagination_class = ODataPagination
    lookup_value_regex = "[^/]+"

    # -- configuration ------------------------------------------------------------------
    def get_model(self) -> type[SyncModel]:
        model = self.model or (self.queryset.model if self.queryset is not None else None)
        if model is None or not issubclass(model, SyncModel):
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs `model = <a SyncModel subclass>` (or a `queryset` of one)."
            )
        return model

    def get_queryset(self) -> QuerySet:
        """The caller's data view, soft-deleted rows included. Override to scope it per user."""
        if self.queryset is not None:
            return self.queryset.all()  # build it from ``all_objects`` so tombstones stay visible
        return self.get_model().all_objects.all()

    def get_serializer_class(self) -> type:
        if self.serializer_class is not None:
            return self.serializer_class
        cls = type(self)
        cached = cls.__dict__.get("_auto_serializer")
        if cached is None:
            cached = serializer_class_for(self.get_model(), self.fields)
            cls._auto_serializer = cached  # type: ignore[attr-defined]
        return cached

    def get_representer(self) -> Representer:
        return representer_for(self.get_model(), tuple(self.fields) if self.fields is not None else None)

    def get_field_map(self) -> FieldMap:
        cls = type(self)
        cached = cls.__dict__.get("_field_map")
        if cached is None:
            allowed = self.odata_fields if self.odata_fields is not None else self.fields
            cached = FieldMap.for_model(self.get_model(), allowed)
            cls._field_map = cached  # type: ignore[attr-defined]
        return cached

    def get_soft_delete(self) -> bool:
        return sync_settings.SOFT_DELETE if self.soft_delete is None else self.soft_delete

    def get_column_defaults(self) -> dict[str, Any]:
        """What a PUT (replace) writes into columns the body leaves out, by wire name."""
        defaults: dict[str, Any] = {}
        by_name = {f.name: f for f in self.get_model()._meta.concrete_fields}
        for wire, serializer_field in self.get_serializer().fields.items():
            field = by_name.get(serializer_field.source)
            if field is None or serializer_field.read_only or field.name in SyncModel.SYSTEM_FIELDS:
                continue
            if field.default is not NOT_PROVIDED:
                default = field.get_default()
                defaults[wire] = default.pk if hasattr(default, "pk") else default
            elif field.null:
                defaults[wire] = None
        return defaults

    def get_permissions(self) -> list[Any]:
        operation = OPERATIONS.get(getattr(self, "action", None) or "", "")
        classes = self.operation_permission_classes.get(operation, self.permission_classes)
        return [permission() for permission in classes]

    # -- per request --------------------------------------------------------------------
    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        self.adapter = generations.detect(request)
        self.adapter.validate()
        super().initial(request, *args, **kwargs)

    def get_odata_query(self) -> Any:
        query = getattr(self, "_odata_query", None)
        if query is None:
            query = parse_query(self.request.GET, self.get_field_map(), generation=self.adapter.name)
            self._odata_query = query
        return query

    def get_page_window(self, query: Any) -> tuple[int, int, int | None]:
        return resolve_page_size(query.top, self.adapter.name), query.skip, query.top

    def include_deleted_requested(self) -> bool:
        """``__includeDeleted`` on an id request, read as lists read it (400 if not a boolean)."""
        return include_deleted_option(self.request.GET)

    def pull_boundary(self, query: Any) -> Any:
        """``T`` when this is a v1/v2 pull page (see ``ODataPagination._boundary``), else None.

        The pull shape: ``… updatedAt ge T`` with tombstones asked for, as every v1/v2 client's
        pull sends. Ordinary paging of a ``ge`` query keeps positional ``$skip``.
        """
        if self.adapter.name == "v3" or not query.include_deleted:
            return None
        return pull_boundary(query.filter_node)

    def new_id(self, sent: Any) -> Any:
        return new_id_for(self.get_model(), sent)

    def entity(self, obj: Any) -> dict[str, Any]:
        return self.adapter.render(self.get_representer().from_instance(obj))

    # -- responses ----------------------------------------------------------------------
    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-cache"
        # Browser clients read these (PROTOCOL.md §1.4); a CORS middleware adds the rest.
        response["Access-Control-Expose-Headers"] = "ETag, Link, Location"
        # The view holds the response and the response's renderer_context holds the view: a
        # reference cycle that keeps every page's rows alive until a full GC pass and grew a
        # worker by ~60 MB over a 1M-row pull (bench/memory.py). Break it once it is sent.
        response._resource_closers.append(lambda: self._release(response))
        return response

    def _release(self, response: Any) -> None:
        for name in ("response", "request", "args", "kwargs"):
            self.__dict__.pop(name, None)
        response.renderer_context = None

    def handle_exception(self, exc: Exception) -> Response:
        adapter = getattr(self, "adapter", None) or generations.V2Adapter(self.request)
        if isinstance(exc, Conflict):
            response = Response(exc.entity, status=exc.status_code)
            if exc.etag:
                response["ETag"] = exc.etag
            return response
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.APIException):
            message, extra = _describe(exc)
            response.data = adapter.error_payload(response.status_code, message, extra)
        return response


def _describe(exc: exceptions.APIException) -> tuple[str, dict[str, Any]]:
    """A one-line message and structured details for any DRF exception."""
    extra: dict[str, Any] = {}
    if isinstance(exc, ODataError):
        extra = {k: v for k, v in exc.as_dict().items() if v is not None}
        return str(exc.detail), extra
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict):
        errors = {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
        extra["errors"] = errors
        parts = [f"{field}: {' '.join(messages)}" for field, messages in errors.items()]
        return "Invalid item. " + "; ".join(parts), extra
    if isinstance(detail, list):
        return " ".join(str(d) for d in detail), extra
    return str(detail), extra

