"""``SyncViewSet``: a DRF viewset that serves one ``SyncModel`` as a sync table.

Read it top to bottom; each operation is a short pipeline over parts that live elsewhere:

* the generation (``request.version``, set by ``ZumoVersioning``) and its policy
  (``self.generation``, ``generations.py``) own everything that differs between clients;
* a list is parse → data view → tombstones → filter backends → order → page → render;
* a write goes through the ``Writer`` (``writer.py``): lock + stamp → load → precondition →
  save → signal.

Register it with ``SyncRouter`` under ``/tables/``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django.core.exceptions import ImproperlyConfigured
from django.db.models import NOT_PROVIDED, QuerySet
from django.db.models.manager import BaseManager
from rest_framework import status
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer, Serializer
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.viewsets import GenericViewSet

from .activity import note as note_activity
from .concurrency import Precondition, etag_for, if_none_match_hits, parse_if_match
from .exceptions import BodyNotAllowed, EntityConflict, IdMismatch, ItemNotFound, exception_handler
from .filters import ODataFilterBackend
from .generations import Generation, ZumoVersioning, policy_for, settle_version
from .ledger import record_refusal
from .managers import SyncQuerySet
from .models import SyncModel, accepts_stamp
from .pagination import PageSource, SyncPagination
from .query import FieldMap, ODataQuery, parse_query
from .renderers import SyncContentNegotiation, SyncJSONRenderer
from .retention import HORIZON_HEADER, delta_boundary, horizon_column, horizon_of_pull
from .serializers import (
    Body,
    Representer,
    SyncModelSerializer,
    new_id_for,
    read_json,
    serializer_class_for,
    server_assigns_ids,
    split_body,
)
from .settings import get_settings
from .stamping import Stamp
from .wire import IDS_HEADER, SERVER_ASSIGNED_IDS, SYSTEM_WIRE_NAMES
from .writer import Writer, lookup_pk, row_by_pk

__all__ = ["SyncViewSet"]

#: DRF action → the operation named in ``operation_permission_classes``.
OPERATIONS: dict[str, str] = {
    "list": "read",
    "retrieve": "read",
    "create": "insert",
    "update": "update",
    "partial_update": "update",
    "destroy": "delete",
    "undelete": "undelete",
}


@dataclass(frozen=True)
class _Table:
    """What a view class serves, worked out once per class from its attributes."""

    model: type[SyncModel]
    representer: Representer
    field_map: FieldMap
    serializer_class: type[SyncModelSerializer]
    #: the class keeps ``get_queryset`` and the model ``all_objects`` (``SyncViewSet.plain_data_view``)
    plain_data_view: bool


def _column_defaults(serializer: Serializer[Any], model: type[SyncModel]) -> dict[str, Any]:
    """What a PUT (replace) writes into the columns its body leaves out, by wire name.

    Evaluated per request: a callable default (``uuid4``, ``timezone.now``) gives a new value
    each time, and a mutable one is never shared between requests.
    """
    by_name = {f.name: f for f in model._meta.concrete_fields}
    defaults: dict[str, Any] = {}
    for wire, serializer_field in serializer.fields.items():
        field = by_name.get(serializer_field.source or "")
        if field is None or serializer_field.read_only or field.name in SYSTEM_WIRE_NAMES:
            continue
        if field.default is not NOT_PROVIDED:
            default = field.get_default()
            defaults[wire] = default.pk if hasattr(default, "pk") else default
        elif field.null:
            defaults[wire] = None
    return defaults


if TYPE_CHECKING:
    _ViewSetBase = GenericViewSet[SyncModel]
else:  # generic in the stubs only
    _ViewSetBase = GenericViewSet


class SyncViewSet(_ViewSetBase):
    """Serve ``model`` (a ``SyncModel``) with the Azure Mobile Apps / Datasync protocol.

    Attributes, in the style of DRF's:

    * ``model`` (or ``queryset``): the table.
    * ``fields``: model field names exposed (``None``: every editable column); a foreign key
      may be named by its field name or its attname (``task`` or ``task_id``).
    * ``odata_fields``: model field names usable in ``$filter``/``$orderby`` (``None``: ``fields``).
    * ``soft_delete``: ``None`` follows ``OFFLINE_SYNC["SOFT_DELETE"]``.
    * ``operation_permission_classes``: ``{"read"|"insert"|"update"|"delete"|"undelete": [...]}``
      overriding ``permission_classes`` per operation.

    Hooks, as DRF's: ``get_queryset`` (the caller's data view), ``perform_create(serializer)``,
    ``perform_update(serializer)``, ``perform_destroy(instance, stamp)`` and
    ``perform_undelete(instance, stamp)``, each run inside the write's transaction.

    List statements are compiled once per query shape and reused with each request's values
    (``OFFLINE_SYNC["QUERY_CACHE_SIZE"]``, ``docs/odata.rst``). That is automatic only where
    it is safe: the view keeps this class's ``get_queryset``, ``filter_queryset`` and
    ``paginate_queryset`` and its ``filter_backends`` are ``[ODataFilterBackend]``. A view that
    scopes ``get_queryset`` per caller opts in with ``query_cache_key``, returning what its
    data view depends on (e.g. ``self.request.user.pk``), or None for no cache.
    """

    model: ClassVar[type[SyncModel] | None] = None
    fields: ClassVar[Sequence[str] | None] = None
    odata_fields: ClassVar[Sequence[str] | None] = None
    soft_delete: ClassVar[bool | None] = None
    operation_permission_classes: ClassVar[dict[str, list[type[BasePermission]]]] = {}
    versioning_class = None  # see determine_version
    renderer_classes = [SyncJSONRenderer, BrowsableAPIRenderer]
    # Bodies are read by serializers.read_json (JSON only, limits first); this tells the schema.
    parser_classes = [JSONParser]
    content_negotiation_class = SyncContentNegotiation
    filter_backends = [ODataFilterBackend]
    pagination_class = SyncPagination
    lookup_value_regex = "[^/]+"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Without these the table would silently lose $filter or its paging protocol.
        if not any(isinstance(b, type) and issubclass(b, ODataFilterBackend) for b in cls.filter_backends):
            raise ImproperlyConfigured(f"{cls.__name__}.filter_backends must include ODataFilterBackend.")
        if not (isinstance(cls.pagination_class, type) and issubclass(cls.pagination_class, SyncPagination)):
            raise ImproperlyConfigured(f"{cls.__name__}.pagination_class must be SyncPagination or a subclass.")

    # -- configuration (once per class) -------------------------------------------------
    @classmethod
    def _table(cls) -> _Table:
        return _table_of(cls)

    def get_queryset(self) -> QuerySet[Any]:
        """The caller's data view, soft-deleted rows included. Override to scope it per user."""
        # (read through getattr: the stubs type the class attribute as a manager descriptor)
        queryset: QuerySet[Any] | None = getattr(self, "queryset", None)
        if queryset is not None:
            return queryset.all()  # build it from ``all_objects`` so tombstones stay visible
        everything: QuerySet[Any] = self._table().model.all_objects.all()
        return everything

    @property
    def plain_data_view(self) -> bool:
        """Whether the data view is every row of the table, as ``get_queryset`` gives it
        unless overridden: the library's own ``get_queryset`` without a ``queryset``
        attribute, and the model's ``all_objects`` of the library's manager and queryset.
        The writer then loads a row with a statement compiled once (``rowsql``)."""
        return getattr(self, "queryset", None) is None and self._table().plain_data_view

    def query_cache_key(self) -> Hashable | None:
        """The caller's part of the key under which list statements are cached, or None to
        compile each list request's SQL afresh.

        A cached statement is the SQL of ``get_queryset()`` narrowed by the request's query,
        with only the query's values bound per request: whatever else ``get_queryset`` depends
        on must be in this key, or one caller could be served another's rows. The default is
        ``()`` (one statement for every caller) when this class's own ``get_queryset`` is in
        use over a ``queryset`` attribute or the library's own ``all_objects`` manager, and
        None when a subclass overrides it or the model's manager is a project's own (it could
        scope rows by request state the key does not see). A view that scopes rows to the user
        returns e.g. ``self.request.user.pk``; return None from a data view that the key cannot
        describe (one depending on the time of day, or on a lookup made per request).
        """
        if type(self).get_queryset is not SyncViewSet.get_queryset:
            return None
        if getattr(self, "queryset", None) is None and not _plain_manager(self._table().model):
            return None
        return ()

    def _query_cache_key(self) -> Hashable | None:
        """``query_cache_key()``, where nothing else the list pipeline runs is overridden: other
        filter backends read parameters the shape does not hold, and an overridden
        ``paginate_queryset`` (the view's or the paginator's) would be bypassed."""
        cls = type(self)
        if (
            cls.filter_queryset is not GenericViewSet.filter_queryset
            or cls.paginate_queryset is not GenericViewSet.paginate_queryset
            or list(self.filter_backends) != [ODataFilterBackend]
            or not isinstance(self.paginator, SyncPagination)
            or type(self.paginator).paginate_queryset is not SyncPagination.paginate_queryset
        ):
            return None
        return self.query_cache_key()

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return self.serializer_class or self._table().serializer_class

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        operation = OPERATIONS.get(getattr(self, "action", None) or "", "")
        classes = self.operation_permission_classes.get(operation, self.permission_classes)
        return [permission() for permission in classes]

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        """Errors in the caller's generation's body shape, unless the project has its own handler."""
        project: Callable[[Exception, dict[str, Any]], Response | None] = self.settings.EXCEPTION_HANDLER
        return exception_handler if project is drf_exception_handler else project

    # -- per request --------------------------------------------------------------------
    @property
    def generation(self) -> Generation:
        """The policy of the caller's generation (``request.version``)."""
        return policy_for(getattr(self.request, "version", None))

    @property
    def representer(self) -> Representer:
        return self._table().representer

    @cached_property
    def odata_query(self) -> ODataQuery:
        """The request's OData options, parsed once."""
        return parse_query(self.request.GET, self._table().field_map)

    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> tuple[str, ZumoVersioning]:
        """The caller's generation: DRF sets ``request.version`` from this (``ZumoVersioning``)."""
        scheme = ZumoVersioning()
        return scheme.determine_version(request, *args, **kwargs), scheme

    def perform_authentication(self, request: Request) -> None:
        # DRF runs determine_version, then this, then permissions and throttles: refuse a
        # mixed dialect first, as the reference servers do, before it costs a throttle slot.
        self.generation.validate_request(request)
        super().perform_authentication(request)

    def entity(self, obj: SyncModel) -> dict[str, Any]:
        """``obj`` as the caller's generation shows one row."""
        return self.generation.render(self.request, [self.representer.from_instance(obj)])[0]

    def _entity_response(self, obj: SyncModel, status_code: int = status.HTTP_200_OK, **headers: str) -> Response:
        response = Response(self.entity(obj), status=status_code, headers=headers or None)
        response["ETag"] = etag_for(obj.etag_version) or ""
        return response

    def _read_body(self, request: Request, url_id: str | None = None) -> Body:
        data = read_json(request, limit=get_settings().MAX_BODY_BYTES)
        return split_body(data, self.representer, self.generation.system_names, url_id=url_id)

    def _precondition(self, request: Request, body: Body | None = None) -> tuple[Precondition | None, bool]:
        """The expected version and whether it came from ``If-Match`` (which decides 412 vs 409)."""
        precondition = parse_if_match(request.headers.get("If-Match"))
        if precondition is not None:
            return precondition, True
        if body is not None:
            return self.generation.body_precondition(body.system), False
        return None, False

    @cached_property
    def _writer(self) -> Writer:
        return Writer(self, self._table().model)

    # -- read ---------------------------------------------------------------------------
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = self.odata_query  # parse (400 on a bad option)
        data_view = self.get_queryset()  # the caller's data view
        key = self._query_cache_key()
        using = data_view.db
        paginator = self.paginator
        if isinstance(paginator, SyncPagination) and delta_boundary(query.filter_node) is not None:
            # A delta pull reads the resync horizon in the page's own statement (retention.py).
            paginator.read_along = horizon_column(self._table().model, using)
        page: list[Any] | None
        if key is None:
            queryset = self._narrowed(data_view, query)
            page = self.paginate_queryset(queryset)  # one page, and the link to the next
            using = queryset.db
        else:
            # The same steps, run only if the page's statement is not in the shape cache.
            source = PageSource(
                data_view.model, using, lambda: self._narrowed(data_view, query),
                key=(type(self), key, query.include_deleted),
            )
            page = cast(list[Any], cast(SyncPagination, paginator).paginate_source(source, request, self))
        if page is None:  # pragma: no cover - __init_subclass__ requires SyncPagination
            raise ImproperlyConfigured(f"{type(self).__name__} has no paginator.")
        items = self.generation.render(request, page, query.select)  # the generation's shape
        response = self.get_paginated_response(items)
        # With the page, or after it, never before: retention.py says why that is safe.
        read = paginator.read_along_value if isinstance(paginator, SyncPagination) else None
        horizon_of_pull(response, self._table().model, query.filter_node, using, read=read)  # may resync
        return response

    def _narrowed(self, queryset: QuerySet[Any], query: ODataQuery) -> QuerySet[Any]:
        if not query.include_deleted:
            queryset = queryset.filter(deleted=False)  # tombstones only on request
        queryset = self.filter_queryset(queryset)  # $filter and any other backend
        return queryset.order_by(*query.order_by)  # $orderby, id last

    def retrieve(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        obj = row_by_pk(self.get_queryset(), lookup_pk(self._table().model, pk))
        if obj is None:
            raise ItemNotFound()
        self.check_object_permissions(request, obj)
        if obj.deleted and not self.generation.include_deleted(request):
            raise self.generation.deleted_error()
        current = obj.etag_version or ""
        if if_none_match_hits(request.headers.get("If-None-Match"), current):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag_for(current) or ""})
        return self._entity_response(obj)

    # -- insert -------------------------------------------------------------------------
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self._read_body(request)
        sent_id = new_id_for(self._table().model, body.id)
        context = {**self.get_serializer_context(), "sync_id": sent_id}
        serializer = self.get_serializer(data=body.columns, context=context)
        serializer.is_valid(raise_exception=True)
        plain = type(self).perform_create is SyncViewSet.perform_create
        instance = self._writer.insert(serializer, self.perform_create, sent_id, plain_create=plain)
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{instance.pk}")
        return self._entity_response(instance, status.HTTP_201_CREATED, Location=location)

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        """Override to stamp server-side values, e.g. ``serializer.save(owner=self.request.user)``."""
        serializer.save()

    # -- update (PATCH merges, PUT replaces) ----------------------------------------------
    def update(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        return self._write(request, pk, replace=True)

    def partial_update(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        return self._write(request, pk, replace=False)

    def _write(self, request: Request, pk: Any, *, replace: bool) -> Response:
        body = self._read_body(request, url_id=str(pk))
        if body.id is not None and str(body.id) != str(pk):
            raise IdMismatch(f"The id in the body ({body.id!r}) does not match the id in the URL ({pk!r}).")
        precondition, if_match_sent = self._precondition(request, body)
        with self._writer.row(pk) as row:
            undelete = row.obj.deleted and self.generation.undeletes_on_replace(
                request, replace=replace, precondition=precondition, sent_deleted=body.system.get("deleted")
            )
            row.check(precondition, if_match_sent=if_match_sent)
            context = {**self.get_serializer_context(), "stamp": row.stamp}
            serializer = self.get_serializer(row.obj, data=body.columns, partial=not replace, context=context)
            if replace and isinstance(serializer, Serializer):
                # A replace writes every column: what the body leaves out takes its default.
                serializer.initial_data = {**_column_defaults(serializer, self._table().model), **body.columns}
            serializer.is_valid(raise_exception=True)
            if undelete:
                # The serializer's validated_data is a dict; DRF's stubs type it as a Mapping.
                cast(dict[str, Any], serializer.validated_data)["deleted"] = False
            row._carry_commit(serializer, plain=type(self).perform_update is SyncViewSet.perform_update)
            self.perform_update(serializer)
            self._writer.committed(row.obj, "undelete" if undelete else "update")
        return self._entity_response(row.obj)

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        """Saves with the reserved stamp (``serializer.context["stamp"]``)."""
        serializer.save()

    # -- delete -------------------------------------------------------------------------
    def destroy(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        precondition, if_match_sent = self._precondition(request)
        with self._writer.row(pk) as row:
            if row.obj.deleted:
                raise self.generation.deleted_error()
            row.check(precondition, if_match_sent=if_match_sent)
            soft = get_settings().SOFT_DELETE if self.soft_delete is None else self.soft_delete
            row._carry_commit(plain=soft and type(self).perform_destroy is SyncViewSet.perform_destroy)
            _call_hook(self.perform_destroy, row.obj, row.stamp)
            self._writer.committed(row.obj, "delete")
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_destroy(self, instance: SyncModel, stamp: Stamp | None = None) -> None:
        """Soft delete (a tombstone devices pull), or remove the row with ``soft_delete=False``.

        ``stamp`` is the one reserved when the row was locked. An override with DRF's own
        signature, ``perform_destroy(self, instance)``, is called without it.
        """
        soft = get_settings().SOFT_DELETE if self.soft_delete is None else self.soft_delete
        if soft:
            _call_hook(instance.delete, None, stamp)
        else:
            instance.hard_delete()

    # -- undelete (POST /tables/{table}/{id}) ---------------------------------------------
    def undelete(self, request: Request, pk: Any = None, *args: Any, **kwargs: Any) -> Response:
        if read_json(request, limit=get_settings().MAX_BODY_BYTES, allow_empty=True) is not None:
            raise BodyNotAllowed("An undelete request must not have a body.")
        precondition, if_match_sent = self._precondition(request)
        with self._writer.row(pk) as row:
            row.check(precondition, if_match_sent=if_match_sent)
            if row.obj.deleted:
                row._carry_commit(plain=type(self).perform_undelete is SyncViewSet.perform_undelete)
                _call_hook(self.perform_undelete, row.obj, row.stamp)
                self._writer.committed(row.obj, "undelete")
        return self._entity_response(row.obj, self.generation.undelete_status)

    def perform_undelete(self, instance: SyncModel, stamp: Stamp | None = None) -> None:
        """Restore the row; ``stamp`` as for ``perform_destroy``."""
        _call_hook(instance.undelete, None, stamp)

    # -- responses ----------------------------------------------------------------------
    def handle_exception(self, exc: Exception) -> Response:
        settle_version(self)  # a 406 comes before DRF asks for the version
        if isinstance(exc, EntityConflict):
            # The protocol's answer, not an error body: the server's entity and its ETag (§9).
            response = Response(exc.entity, status=exc.status_code, headers={"ETag": exc.etag} if exc.etag else None)
        else:
            response = super().handle_exception(exc)
        record_refusal(self, exc, response)  # the ledger: after the write's transaction unwound
        return response

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        note_activity(self, response)  # last pull/push per user and table, at most once a minute
        response["Cache-Control"] = "no-cache"
        # Browser clients read these (§1.4); a CORS middleware adds the rest.
        response["Access-Control-Expose-Headers"] = f"ETag, Link, Location, {IDS_HEADER}, {HORIZON_HEADER}"
        if self._server_assigns_ids():
            # Tells clients up front that an offline insert (a client-chosen id) cannot succeed.
            response[IDS_HEADER] = SERVER_ASSIGNED_IDS
        # The view holds the response and the response's renderer_context holds the view: a
        # reference cycle that keeps every page's rows alive until a full GC pass and grew a
        # worker by ~60 MB over a 1M-row pull (bench/memory.py). Break it once it is sent.
        response._resource_closers.append(lambda: self._release(response))  # type: ignore[attr-defined]  # Django's, untyped
        return response

    def _server_assigns_ids(self) -> bool:
        try:
            model = self._table().model
        except ImproperlyConfigured:  # answered as an error already; check E030 reports it
            return False
        return server_assigns_ids(model)

    def _release(self, response: Response) -> None:
        for name in ("response", "request", "args", "kwargs", "odata_query"):
            self.__dict__.pop(name, None)
        response.renderer_context = None  # type: ignore[attr-defined]  # set by DRF, untyped


def _call_hook(hook: Callable[..., Any], instance: SyncModel | None, stamp: Stamp | None) -> None:
    """``hook(instance, stamp=stamp)``, or without the stamp where ``hook`` does not take one."""
    args = () if instance is None else (instance,)
    if stamp is not None and accepts_stamp(hook):
        hook(*args, stamp=stamp)
    else:
        hook(*args)


def _plain_manager(model: type[SyncModel]) -> bool:
    """Whether ``model.all_objects.all()`` is every row: the library's manager, unchanged."""
    manager = model.all_objects
    return type(manager).get_queryset is BaseManager.get_queryset and manager._queryset_class is SyncQuerySet


@cache
def _table_of(view_class: type[SyncViewSet]) -> _Table:
    """The model, row representer, OData field map and serializer of a view class."""
    model = view_class.model or (view_class.queryset.model if view_class.queryset is not None else None)
    if model is None or not issubclass(model, SyncModel):
        raise ImproperlyConfigured(
            f"{view_class.__name__} needs `model = <a SyncModel subclass>` (or a `queryset` of one)."
        )
    fields = tuple(view_class.fields) if view_class.fields is not None else None
    odata = tuple(view_class.odata_fields) if view_class.odata_fields is not None else fields
    try:
        return _Table(
            model=model,
            representer=Representer(model, fields),
            field_map=FieldMap.for_model(model, odata),
            serializer_class=serializer_class_for(model, fields),
            plain_data_view=view_class.get_queryset is SyncViewSet.get_queryset and _plain_manager(model),
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{view_class.__name__}: {exc}") from exc
