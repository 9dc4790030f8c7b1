"""Paging for table queries: ``$skip``/``$top``, counts, and next-page links.

Where the order is the pull order, ``(updatedAt, id)`` or ``id`` alone, the next page is a
signed keyset cursor (``cursor.py``): a page costs an index range scan whatever the table size,
and rows updated mid-pull can be neither skipped nor cycled. Any other ``$orderby`` falls
back to ``$skip``. v3 gets the link in ``nextLink``; v1/v2 in a ``Link`` header (§3.4).
v1/v2 pull queries page themselves with ``$skip``; see ``ODataPagination.boundary_skip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import datetime as dt

from django.db.models import F, OrderBy, Q, QuerySet, Subquery
from rest_framework.pagination import BasePagination

from . import cursor as cursors
from .settings import sync_settings
from .stamping import datetime_to_ms, ms_to_datetime

KEYSET_UPDATED = ("updated_at", "id")
KEYSET_ID = ("id",)


@dataclass
class Page:
    rows: list[tuple[Any, ...]]
    count: int | None
    next_link: str | None
    next_url: str | None  # absolute, for the v1/v2 Link header


def _term_name(term: Any) -> tuple[str, bool] | None:
    """(field, descending) for an ``order_by`` term, or ``None`` if it is an expression."""
    if isinstance(term, str):
        return (term[1:], True) if term.startswith("-") else (term, False)
    if isinstance(term, OrderBy) and isinstance(term.expression, F):
        return term.expression.name, term.descending
    if isinstance(term, F):
        return term.name, False
    return None


def keyset_of(order_by: list[Any], pk_name: str = "id") -> tuple[str, ...] | None:
    names = [_term_name(t) for t in order_by]
    if any(n is None or n[1] for n in names):
        return None
    fields = tuple("id" if n[0] in (pk_name, "pk") else n[0] for n in names)  # type: ignore[index]
    if fields in (KEYSET_UPDATED, KEYSET_ID):
        return fields
    return None


def _param(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"name": name, "required": False, "in": "query", "description": description, "schema": {"type": schema_type}}


class ODataPagination(BasePagination):
    """Slices a filtered, ordered queryset into one page and builds the link to the next."""

    cursor_param = cursors.CURSOR_PARAM
    #: Apply a v1/v2 pull's ``$skip`` to the rows still at its boundary stamp (see ``_boundary``).
    boundary_skip = True

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

    def paginate(
        self,
        queryset: QuerySet,
        request: Any,
        *,
        columns: list[str],
        select: list[Any] | None = None,
        take: int,
        skip: int,
        top: int | None,
        count: bool,
        order_by: list[Any],
        boundary: dt.datetime | None = None,
    ) -> Page:
        params = [(k, v) for k, vs in request.GET.lists() for v in vs]
        digest = cursors.query_digest(params, request.path)
        keyset = keyset_of(order_by, queryset.model._meta.pk.name)
        token = next((v for k, v in params if k == self.cursor_param), None)
        current = cursors.load(token, digest) if token is not None else None
        if current is not None and keyset is None:
            current = None  # a cursor only makes sense for the keyset orders
        remaining = current.remaining if current is not None and current.remaining is not None else top
        if remaining is not None:
            take = min(take, remaining)

        total: int | None = None
        if count:
            total = current.count if current is not None and current.count is not None else queryset.count()

        qs = queryset
        if current is not None:
            qs = qs.filter(self._after(current, keyset))
            skip = 0
        elif self.boundary_skip and boundary is not None and skip > 0 and keyset == KEYSET_UPDATED:
            qs, skip = self._boundary(qs, boundary, skip), 0
        rows = list(qs.values_list(*(select or columns))[skip : skip + take + 1]) if take > 0 else []
        has_more = len(rows) > take
        rows = rows[:take]
        left = None if remaining is None else remaining - len(rows)
        if not has_more or (left is not None and left <= 0) or not rows:
            return Page(rows, total, None, None)

        next_params = [(k, v) for k, v in params if k.lower() not in ("$skip", "$top", self.cursor_param.lower())]
        if keyset is not None:
            last = dict(zip(columns, rows[-1]))
            updated = last.get("updated_at")
            new_cursor = cursors.Cursor(
                updated_ms=stamp_ms(updated) if keyset == KEYSET_UPDATED and updated is not None else None,
                last_id=str(last["id"]),
                count=total,
                remaining=left,
            )
            if keyset == KEYSET_UPDATED and updated is None:
                next_params.append(("$skip", str(skip + len(rows))))
                if left is not None:
                    next_params.append(("$top", str(left)))
            else:
                next_params.append((self.cursor_param, cursors.dump(new_cursor, digest)))
        else:
            next_params.append(("$skip", str(skip + len(rows))))
            if left is not None:
                next_params.append(("$top", str(left)))
        query_string = urlencode(next_params, safe="$(),'*:")
        absolute = request.build_absolute_uri(request.path) + "?" + query_string
        return Page(rows, total, self.format_next_link(request, query_string, absolute), absolute)

    @staticmethod
    def _boundary(queryset: QuerySet, boundary: dt.datetime, skip: int) -> QuerySet:
        """A v1/v2 pull's ``$skip``, applied to the rows still at the boundary stamp ``T``.

        Every v1/v2 client (.NET, JS, Android, iOS; PROTOCOL.md §4.1-§4.2) sends
        ``updatedAt ge T`` with ``$skip=n`` only after reading ``n`` rows that all had
        ``updatedAt == T``. If one of them was updated meanwhile it moved to the end, and a
        positional skip would jump over a newer row, which the client's next token then
        passes for good. Skipping past the ``n``-th id still at ``T`` gives the same page
        when nothing moved and loses nothing when something did (exact with the clock's
        unique stamps). One statement, so one snapshot.
        """
        nth = queryset.filter(updated_at=boundary).order_by("pk").values("pk")[skip - 1 : skip]
        return queryset.filter(Q(updated_at__gt=boundary) | Q(updated_at=boundary, pk__gt=Subquery(nth)))

    @staticmethod
    def _after(current: cursors.Cursor, keyset: tuple[str, ...] | None) -> Q:
        if keyset == KEYSET_ID or current.updated_ms is None:
            return Q(pk__gt=current.last_id)
        at = ms_to_datetime(current.updated_ms)
        # The redundant `updated_at >= at` is what makes this an index range scan: without it
        # PostgreSQL reads from the query's own lower bound and filters out every row already
        # sent, so the k-th page of a pull would cost k pages.
        return Q(updated_at__gte=at) & (Q(updated_at__gt=at) | Q(pk__gt=current.last_id))

    @staticmethod
    def format_next_link(request: Any, query_string: str, absolute: str) -> str:
        """The v3 ``nextLink`` in the form the calling client can follow (PROTOCOL.md §3.4)."""
        options = request.headers.get("X-ZUMO-Options", "")
        if "nextlink=path" in options.replace(" ", "").lower():
            return request.path + "?" + query_string
        if request.headers.get("User-Agent", "").startswith("Datasync/"):
            return query_string
        style = sync_settings.NEXT_LINK_FORMAT
        if style == "path":
            return request.path + "?" + query_string
        if style == "absolute":
            return absolute
        return query_string


def stamp_ms(value: dt.datetime | str) -> int:
    """Milliseconds of an ``updated_at`` read as a datetime or as its wire string."""
    if isinstance(value, str):  # "YYYY-MM-DDTHH:MM:SS.mmmZ" from wire_sql
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime_to_ms(value)


def pull_boundary(node: Any) -> dt.datetime | None:
    """``T`` when a ``$filter`` has the v1/v2 pull shape ``… and updatedAt ge <datetime T>``.

    Looks at the top-level conjuncts of the parsed tree (the clients AND their own filter in
    front) for ``updatedAt``/``__updatedAt`` ``ge`` a datetime literal.
    """
    from .query.nodes import BinaryOp, BoolOp, Literal, Property

    if node is None:
        return None
    conjuncts = node.operands if isinstance(node, BoolOp) and node.op == "and" else (node,)
    for term in reversed(conjuncts):
        if (
            isinstance(term, BinaryOp)
            and term.op == "ge"
            and isinstance(term.left, Property)
            and term.left.name.lower().lstrip("_") == "updatedat"
            and isinstance(term.right, Literal)
            and isinstance(term.right.value, dt.datetime)
        ):
            value = term.right.value
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
            value = value.astimezone(dt.timezone.utc)
            return value.replace(microsecond=value.microsecond - value.microsecond % 1000)
    return None
