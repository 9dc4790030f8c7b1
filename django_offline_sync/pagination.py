"""Paging for table queries: ``$skip``/``$top``, counts, and next-page links, on DRF's contract.

``SyncPagination.paginate_queryset(queryset, request, view)`` returns one page of wire dicts
and ``get_paginated_response(data)`` the generation's list answer. Where the order is the pull
order, ``(updatedAt, id)`` or ``id`` alone, the next page is a signed keyset cursor
(``cursor.py``): a page costs an index range scan whatever the table size, and rows updated
mid-pull can be neither skipped nor cycled. Any other ``$orderby`` falls back to ``$skip``.
v1/v2 pull pages apply their ``$skip`` past the boundary stamp (``query.pull.past_boundary``).
Where the link goes (``nextLink`` or a ``Link`` header) is the generation's choice.
A cursor also carries the serving database's clock, and a replica answers a page only if it
shows that clock, or the delta token of a first page (``replicas.database_at``; several app
servers, read replicas).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlencode

import orjson
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import Count, DateTimeField, Model, Q, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from . import cursor as cursors
from . import replicas
from .generations import Generation, Item
from .query.options import ODataQuery, evaluation_guard
from .query.pull import KEYSET_UPDATED, after_condition, after_stamp, keyset_of, past_boundary, pull_floor
from .query.shapes import SlotValue, SqlTemplate, compile_template, shape_cache
from .renderers import SyncJSONRenderer
from .serializers import Representer
from .settings import get_settings
from .wire import datetime_to_ms, parse_timestamp
from .wire_sql import KeyTimestamp, key_timestamp

__all__ = ["PageSource", "PagedView", "SyncPagination"]

#: The field a stamp bound as a slot is converted by (as ``updated_at``'s own lookups convert it).
_STAMP_FIELD: Final = DateTimeField()


@dataclass
class PageSource:
    """The rows a list page is cut from: a queryset built only when the page needs it.

    ``key``: the view's part of the shape-cache key (``SyncViewSet.query_cache_key``), or None
    to build and compile the page's statement on every request.
    """

    model: type[Model]
    db: str
    build: Callable[[], QuerySet[Any]]
    key: Hashable | None = None
    _built: QuerySet[Any] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, queryset: QuerySet[Any]) -> PageSource:
        return cls(queryset.model, queryset.db, lambda: queryset)

    def queryset(self) -> QuerySet[Any]:
        if self._built is None:
            self._built = self.build()
        return self._built


def _count(queryset: QuerySet[Any], boundary: dt.datetime | None = None, held: int = 0) -> int:
    """The rows ``queryset`` holds: exactly, or PostgreSQL's planner estimate when that is above
    ``COUNT_ESTIMATE_ABOVE`` (a count reads every matching row; an estimate reads none).

    On a v1/v2 pull page (``updatedAt ge boundary``) the ``held`` rows at the boundary stamp
    that the client already has are left out, in the same statement: the count is what the
    pull has still to bring, not the repeat that ``ge`` sends again (docs/protocol.rst §4.1).
    """
    threshold = get_settings().COUNT_ESTIMATE_ABOVE
    if threshold and connections[queryset.db].vendor == "postgresql":
        plan = json.loads(queryset.order_by().explain(format="json"))
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        if estimate > threshold:
            return estimate
    if boundary is None or held <= 0:
        return queryset.count()
    counts = queryset.order_by().aggregate(rows=Count("pk"), at_boundary=Count("pk", filter=Q(updated_at=boundary)))
    rows, at_boundary = int(counts["rows"]), int(counts["at_boundary"])
    return rows - min(held, at_boundary)


def _on(source: PageSource, db: str) -> Callable[[], QuerySet[Any]]:
    """``source``'s queryset, read from database ``db`` (the primary, for a replica behind)."""
    return lambda: source.queryset().using(db)


class PagedView(Protocol):
    """What ``SyncPagination`` needs from the view (``SyncViewSet`` provides it)."""

    @property
    def generation(self) -> Generation: ...
    @property
    def odata_query(self) -> ODataQuery: ...
    @property
    def representer(self) -> Representer: ...


def _param(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"name": name, "required": False, "in": "query", "description": description, "schema": {"type": schema_type}}


class SyncPagination(BasePagination):
    """Slices a filtered, ordered queryset into one page and builds the link to the next."""

    cursor_param = cursors.CURSOR_PARAM
    #: Apply a v1/v2 pull's ``$skip`` to the rows still at its boundary stamp.
    boundary_skip = True

    def __init__(self) -> None:
        self.count: int | None = None
        self.next_query: str | None = None
        self.request: Request | None = None
        self.generation: Generation | None = None
        #: One more column for the page's statement (an expression the view sets before
        #: paging: the resync horizon, ``retention.horizon_column``), and the value it held,
        #: as a 1-tuple, once a page with at least one row has been read.
        self.read_along: Any = None
        self.read_along_value: tuple[Any] | None = None

    # DRF's stub ties a page's items to the queryset's rows; ours are wire dicts built from them.
    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Item] | list[orjson.Fragment]:
        """One page: wire dicts, or the rows' JSON as the database wrote it (``orjson.Fragment``)."""
        return self.paginate_source(PageSource.of(queryset), request, view)

    def paginate_source(
        self, source: PageSource, request: Request, view: Any = None
    ) -> list[Item] | list[orjson.Fragment]:
        """``paginate_queryset`` for a queryset built only if needed; with ``source.key``, the
        page's statement comes from the shape cache (``query.shapes``) where it can."""
        if view is None:
            raise ImproperlyConfigured("SyncPagination pages a SyncViewSet's list: pass the view.")
        paged: PagedView = view
        query, representer = paged.odata_query, paged.representer
        self.request, self.generation = request, paged.generation
        take = paged.generation.page_size(query.top)
        params = [(k, v) for k, vs in request.GET.lists() for v in vs]
        digest = cursors.query_digest(params, request.path, caller=cursors.caller_of(request))
        pk_field = source.model._meta.pk
        assert pk_field is not None
        keyset = keyset_of(query.order_by, pk_field.name)
        token = next((v for k, v in params if k == self.cursor_param), None)
        current = cursors.load(token, digest) if token is not None else None
        if current is not None and keyset is None:
            current = None  # a cursor only makes sense for the keyset orders
        remaining = current.remaining if current is not None and current.remaining is not None else query.top
        if remaining is not None:
            take = min(take, remaining)

        if replicas.reads_replica(source.model, source.db):
            # Never answer from a replica behind what the device has already seen: the state
            # that read the cursor's page (its watermark), or the row its delta token came from.
            if current is not None:
                seen = current.watermark if current.watermark is not None else current.updated_ms
            else:
                floor = pull_floor(query.filter_node)
                seen = None if floor is None else datetime_to_ms(floor)
            # (per statement: each read here is one statement, and needs no transaction: see below)
            with evaluation_guard(using=source.db, per_statement=True):
                db = replicas.database_at(source.model, source.db, seen)
            if db != source.db:
                source = PageSource(source.model, db, _on(source, db), key=source.key)

        # What narrows the page beyond the caller's query: (kind, its values and their fields).
        skip = query.skip
        condition: tuple[Any, ...] | None = None
        extra: list[tuple[Any, Any]] = []
        boundary, held = None, 0
        if current is not None and keyset is not None:
            at = after_stamp(keyset, current.updated_ms)
            condition, skip = ("after", at is None), 0
            extra = [(at, _STAMP_FIELD)] if at is not None else []
            extra.append((current.last_id, pk_field))
        elif self.boundary_skip and (skip > 0 or query.count) and keyset == KEYSET_UPDATED:
            boundary = paged.generation.pull_boundary(query)
            # The client holds the rows at the boundary it skips, or (no $skip) the row whose
            # stamp is its token: with clock stamps, the one row at that stamp.
            held = max(skip, 1)
            if boundary is not None and skip > 0:
                condition, skip = ("boundary", skip), 0
                extra = [(boundary, _STAMP_FIELD)]

        vendor = connections[source.db].vendor
        row_json = representer.row_json(vendor) if self._json_rows_wanted(request, paged, query) else None
        if row_json is not None:
            # The database writes each row's JSON; the key columns come along for the cursor.
            key_columns = ["updated_at", "id"]
        else:
            plan, converters = representer.select_plan(vendor)
            key_columns = representer.attnames
        along = self.read_along
        # The next page's cursor carries how far this database was (replicas.watermark), read
        # in the page's own statement: only keyset orders issue cursors.
        mark_column = replicas.watermark_column(source.model, source.db) if keyset is not None else None
        extra_columns = (along is not None) + (mark_column is not None)

        values = (*query.slot_values, *(value for value, _ in extra))

        def page_queryset(*, slotted: bool) -> QuerySet[Any]:
            """The page's rows (one more than the page), values bound as slots if ``slotted``."""
            qs = source.queryset()
            bound = [
                SlotValue(value, field, len(query.slot_values) + i) if slotted else value
                for i, (value, field) in enumerate(extra)
            ]
            if condition is not None and condition[0] == "after":
                qs = qs.filter(after_condition(None if condition[1] else bound[0], bound[-1]))
            elif condition is not None:
                qs = past_boundary(qs, bound[0], condition[1])
            select: list[Any] = [KeyTimestamp("updated_at"), "pk", row_json] if row_json is not None else list(plan)
            if along is not None:
                select.append(along)  # after the row's own columns, which keep their places
            if mark_column is not None:
                select.append(mark_column)  # last
            return qs.values_list(*select)[skip : skip + take + 1]

        template = None
        size = get_settings().QUERY_CACHE_SIZE
        if source.key is not None and size > 0 and take > 0:
            key = (
                source.key, type(self), paged.generation, source.db, vendor, query.shape,
                keyset, condition, skip, take, row_json is not None, along is not None, mark_column is not None,
            )
            entry = shape_cache.get(key)
            if entry is None:
                entry = compile_template(page_queryset(slotted=True), source.db, len(values))
                if entry is not None:  # (None: it failed to compile, which the ordinary path reports)
                    shape_cache.put(key, entry, size)
            template = entry if isinstance(entry, SqlTemplate) else None

        # Per statement: on PostgreSQL the page's statement, and the count's, each carry the
        # timeout in their own message, without a BEGIN and a COMMIT around them. Nothing here
        # needs one transaction: the page's horizon and watermark are columns of its own
        # statement (one snapshot); the count and the page are separate transactions on SQLite
        # and MariaDB already (and separate snapshots under PostgreSQL's READ COMMITTED even in
        # one); the replica was chosen above.
        with evaluation_guard(using=source.db, per_statement=True):
            if query.count:
                known = current.count if current is not None else None
                self.count = known if known is not None else _count(source.queryset(), boundary, held)
            # One row more than the page: whether a next page exists, without an empty last page.
            if take <= 0:
                rows: list[Any] = []
            elif template is not None:
                rows = template.rows(values, connections[source.db])
            else:
                rows = list(page_queryset(slotted=False))
        mark: int | None = None
        if rows and extra_columns:
            first = rows[0]
            if along is not None:
                self.read_along_value = (first[-extra_columns],)
            if mark_column is not None and first[-1] is not None:
                mark = int(first[-1])
            if row_json is None:
                rows = [row[:-extra_columns] for row in rows]
        has_more = len(rows) > take
        rows = rows[:take]
        left = None if remaining is None else remaining - len(rows)
        if has_more and rows and (left is None or left > 0):
            last = rows[-1][: len(key_columns)]  # (a row may carry the imported version last)
            if row_json is not None:
                last = (key_timestamp(last[0], vendor), *last[1:])
            self.next_query = self._next_query(params, digest, keyset, key_columns, last, skip, len(rows), left, mark)
        if row_json is not None:
            return [orjson.Fragment(row[2]) for row in rows]
        return [representer.from_values(row, converters) for row in rows]

    @staticmethod
    def _json_rows_wanted(request: Request, view: PagedView, query: ODataQuery) -> bool:
        """Rows written by the database go out as they are: only to the orjson renderer, and
        only where the generation shows the v2/v3 wire rows unchanged."""
        renderer = getattr(request, "accepted_renderer", None)
        return (
            isinstance(renderer, SyncJSONRenderer)
            and "indent" not in (getattr(request, "accepted_media_type", "") or "")
            and view.generation.renders_as_is(query.select)
        )

    def _next_query(
        self,
        params: list[tuple[str, str]],
        digest: str,
        keyset: tuple[str, ...] | None,
        columns: list[str],
        last_row: tuple[Any, ...],
        skip: int,
        sent: int,
        left: int | None,
        mark: int | None = None,
    ) -> str:
        """The query string of the next page: a keyset cursor where the order allows, else ``$skip``."""
        next_params = [(k, v) for k, v in params if k.lower() not in ("$skip", "$top", self.cursor_param.lower())]
        last = dict(zip(columns, last_row, strict=True))
        updated = last.get("updated_at")  # a wire string where the database formats it, else a datetime
        if keyset is not None and not (keyset == KEYSET_UPDATED and updated is None):
            stamp = None
            if keyset == KEYSET_UPDATED:
                assert updated is not None
                stamp = datetime_to_ms(parse_timestamp(updated) if isinstance(updated, str) else updated)
            cursor = cursors.Cursor(
                updated_ms=stamp,
                last_id=str(last["id"]),
                count=self.count,
                remaining=left,
                watermark=mark,
            )
            next_params.append((self.cursor_param, cursors.dump(cursor, digest)))
        else:
            next_params.append(("$skip", str(skip + sent)))
            if left is not None:
                next_params.append(("$top", str(left)))
        return urlencode(next_params, safe="$(),'*:")

    def get_paginated_response(self, data: list[Item]) -> Response:
        if self.generation is None or self.request is None:
            raise ImproperlyConfigured("get_paginated_response follows paginate_queryset.")
        return self.generation.list_response(self.request, data, self.count, self.next_query)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            _param("$top", "Rows wanted (at most the generation's maximum; above it: 400).", "integer"),
            _param("$skip", "Rows to skip.", "integer"),
            _param("$inlinecount", "v1/v2: `allpages` wraps the answer as {results, count}."),
            _param("$count", "v3: `true` fills `count` in {items, count, nextLink}.", "boolean"),
            _param("__includeDeleted", "`true` includes soft-deleted rows (tombstones).", "boolean"),
            _param(self.cursor_param, "Opaque continuation token from a nextLink or Link header."),
        ]

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "oneOf": [
                schema,
                {"type": "object", "properties": {"results": schema, "count": {"type": "integer"}}},
                {
                    "type": "object",
                    "properties": {
                        "items": schema,
                        "count": {"type": "integer", "nullable": True},
                        "nextLink": {"type": "string", "nullable": True},
                    },
                },
            ]
        }
