"""Reads all the OData query options of one request into an ``ODataQuery``.

This is where the pure parser meets HTTP: every ``ODataSyntaxError`` becomes an
``ODataError`` (400) naming the option, the position and what was expected. Page sizes
differ per client generation and live with the generation policies (``generations.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, DataError, IntegrityError, OperationalError, connections, transaction
from django.db.models import OrderBy, Q

from ..exceptions import ODataError, QueryTimeout, ReadConflict
from ..settings import get_settings
from .errors import ODataSyntaxError
from .fields import FieldMap
from .lru import LRUCache
from .nodes import Node, OrderTerm
from .parser import parse_orderby, parse_select
from .reparse import parse_filter_reusing
from .shapes import filter_shape
from .timeout import TimeLimit, carries_limit, is_read_conflict, is_timeout, time_limit
from .translator import SlotRecorder, translate_filter, translate_orderby

T = TypeVar("T")
# ASCII spaces and digits only: \s and \d also match what int() refuses (U+001C, Arabic digits).
_INTEGER = re.compile(r"[ \t\r\n\f\v]*\+?[0-9]+[ \t\r\n\f\v]*")
_MAX_SKIP = 2**53
_TRUE_VALUES, _FALSE_VALUES = ("true", "1"), ("false", "0", "")


@dataclass(frozen=True, eq=False)
class ODataQuery:
    """Everything a list request asked for, parsed, validated and translated."""

    filter: Q | None
    order_by: list[str | OrderBy]
    order_terms: tuple[OrderTerm, ...]
    skip: int
    top: int | None
    select: tuple[str, ...] | None
    count: bool
    include_deleted: bool
    filter_node: Node | None = None
    #: The request's options with the values bound per request lifted out (``query.shapes``):
    #: two requests of one shape compile to the same SQL but for ``slot_values``.
    shape: Hashable = None
    #: The values of the ``$filter``'s ``SlotValue``, by slot index.
    slot_values: tuple[Any, ...] = ()


def _option(option: str, func: Callable[[], T]) -> T:
    try:
        return func()
    except ODataSyntaxError as exc:
        raise ODataError(exc.message, option=option, position=exc.position, expected=exc.expected) from exc


def query_param(params: Mapping[str, str], name: str) -> str | None:
    """The value of the query parameter ``name``, ignoring case (§1.3, §3.2); None if absent."""
    found = _get(params, name)
    return None if found is None else found[1]


def _get(params: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The first parameter called ``name``, ignoring case, as (sent name, value)."""
    if name in params:
        return name, params[name]
    lowered = name.lower()
    for key in params:
        if key.lower() == lowered:
            return key, params[key]
    return None


def parse_int_option(option: str, value: str, *, maximum: int = _MAX_SKIP) -> int:
    """A non-negative integer option value (``$skip``, ``$top``), else ``ODataError``."""
    if not _INTEGER.fullmatch(value):
        stripped = value.lstrip()
        raise ODataError(
            "Expected a non-negative integer", option=option,
            position=len(value) - len(stripped), expected="a non-negative integer",
        )
    # Leading zeros stripped first: int() refuses more than 4300 digits, zeros included.
    digits = value.strip(" \t\r\n\f\v").lstrip("+").lstrip("0") or "0"
    number = int(digits) if len(digits) <= len(str(maximum)) else maximum + 1
    if number > maximum:
        raise ODataError(
            f"The value must be at most {maximum}", option=option, position=0, expected=f"at most {maximum}"
        )
    return number


def parse_bool_option(option: str, value: str) -> bool:
    """``true``/``false`` (any case), ``1``/``0``; an empty value is false; anything else is 400."""
    lowered = value.strip().lower()
    if lowered in _TRUE_VALUES:
        return True
    if lowered in _FALSE_VALUES:
        return False
    raise ODataError("Expected true or false", option=option, position=0, expected="true or false")


@contextmanager
def evaluation_guard(
    option: str = "$filter", using: str | None = None, *, timeout_ms: int | None = None, per_statement: bool = False
) -> Iterator[None]:
    """Run a translated query under a time limit, turning a range error into a 400.

    Integer arithmetic is checked statically, but float arithmetic on stored values can
    still leave the double range; PostgreSQL raises (``value out of range``) where SQLite
    returns infinity. Evaluate the queryset (page and count) inside this block. Inside a
    transaction it takes a savepoint, so the failed statement does not abort the request's
    transaction.

    Each statement is stopped after ``timeout_ms`` milliseconds (default ``QUERY_TIMEOUT_MS``;
    0 disables), raising ``QueryTimeout`` (503) rather than a 500: see ``query.timeout``.
    On PostgreSQL the block runs in a transaction, where the timeout is set; with
    ``per_statement=True``, for a block whose statements need no transaction in common and use
    no named (server-side) cursor, each statement carries the timeout in its own message where
    it can (autocommit, client-side binding: ``query.timeout.carries_limit``), which saves the
    ``BEGIN`` and ``COMMIT`` round trips.
    """
    alias = using or DEFAULT_DB_ALIAS
    connection = connections[alias]
    if timeout_ms is None:
        timeout_ms = get_settings().QUERY_TIMEOUT_MS
    outer = connection.in_atomic_block
    per_statement = per_statement and not outer and carries_limit(connection)
    transactional = outer or (timeout_ms > 0 and connection.vendor == "postgresql" and not per_statement)
    block = transaction.atomic(using=alias) if transactional else nullcontext()
    limit = TimeLimit()
    try:
        # A transaction of the block's own ends with it, and PostgreSQL's timeout with it.
        with block, time_limit(connection, timeout_ms, limit, restore=outer, per_statement=per_statement):
            yield
    except OperationalError as exc:
        if is_timeout(connection, exc, limit):
            raise QueryTimeout(timeout_ms) from exc
        if is_read_conflict(connection, exc):
            raise ReadConflict() from exc
        raise
    except (DataError, IntegrityError) as exc:
        # MySQL/MariaDB report a double out of range (error 1690) as an IntegrityError;
        # a SELECT cannot violate a constraint, so here it is always a range error.
        raise ODataError(
            "The query could not be evaluated: a value went out of range",
            option=option,
            expected="arithmetic that stays within the range of a double",
        ) from exc


#: A ``$orderby`` text (and the limits it was read under) → (the field map it was translated
#: against, its terms, its ``order_by``): a pull sends the same one on every page. Only texts
#: that parsed and translated are kept, and only where ``order_by`` is column names.
_orderings: Final[LRUCache[tuple[Any, ...], tuple[FieldMap, tuple[OrderTerm, ...], tuple[str | OrderBy, ...]]]] = (
    LRUCache()
)
setting_changed.connect(lambda **kwargs: _orderings.clear(), weak=False)


def parse_query(params: Mapping[str, str], field_map: FieldMap) -> ODataQuery:
    """Parse ``$filter $orderby $skip $top $select $inlinecount $count __includeDeleted``.

    Option names are matched exactly except ``__includeDeleted``, whose name ignores case
    (the .NET and v3 servers do). Other parameters are left to the caller. ``$top`` is
    returned as sent; the generation's ``page_size`` applies the limits.
    """
    settings = get_settings()
    limits = {
        "max_length": settings.MAX_FILTER_LENGTH,
        "max_depth": settings.MAX_FILTER_DEPTH,
        "max_nodes": settings.MAX_FILTER_NODES,
    }
    # A string column without max_length holds whatever a write could carry: the largest
    # body an insert or an update accepts (a character takes at least one byte). A batch's
    # body may be larger, but each of its items is held to MAX_BODY_BYTES as its single
    # request is.
    costs = {
        "max_string": settings.MAX_FILTER_STRING,
        "max_search": settings.MAX_FILTER_SEARCH,
        "text_length": settings.MAX_BODY_BYTES,
    }
    filter_q: Q | None = None
    filter_node: Node | None = None
    slots = SlotRecorder()
    raw_filter = params.get("$filter")
    if raw_filter is not None and raw_filter.strip():
        filter_node = _option(
            "$filter", lambda: parse_filter_reusing(raw_filter, **limits, size=settings.QUERY_CACHE_SIZE)
        )
        node = filter_node
        filter_q = _option("$filter", lambda: translate_filter(node, field_map, **costs, slots=slots))

    raw_orderby = params.get("$orderby")
    ordering_key = (id(field_map), raw_orderby, *limits.values(), *costs.values())
    ordering = _orderings.get(ordering_key)
    if ordering is not None and ordering[0] is field_map:
        terms, order_by = ordering[1], list(ordering[2])
    else:
        terms = ()
        if raw_orderby is not None and raw_orderby.strip():
            terms = _option("$orderby", lambda: parse_orderby(raw_orderby, **limits))
        order_by = _option("$orderby", lambda: translate_orderby(terms, field_map, **costs))
        if all(isinstance(term, str) for term in order_by) and settings.QUERY_CACHE_SIZE > 0:
            # Column names only: nothing of them is shared state a queryset could change.
            _orderings.put(ordering_key, (field_map, terms, tuple(order_by)), settings.QUERY_CACHE_SIZE)

    skip = 0
    if params.get("$skip") is not None:
        skip = parse_int_option("$skip", params["$skip"])
    top = None
    if params.get("$top") is not None:
        top = parse_int_option("$top", params["$top"], maximum=2**63 - 1)

    select = None
    raw_select = params.get("$select")
    if raw_select is not None and raw_select.strip():
        names = _option("$select", lambda: parse_select(raw_select))
        select = _option("$select", lambda: _resolve_select(raw_select, names, field_map))

    return ODataQuery(
        filter=filter_q,
        order_by=order_by,
        order_terms=terms,
        skip=skip,
        top=top,
        select=select,
        count=_count(params),
        include_deleted=include_deleted_option(params),
        filter_node=filter_node,
        # $orderby and $select as sent: their literals (rare) are never lifted.
        shape=(filter_shape(filter_node, slots.kinds), raw_orderby, select),
        slot_values=tuple(slots.values),
    )


def _resolve_select(raw: str, names: tuple[str, ...], field_map: FieldMap) -> tuple[str, ...] | None:
    if "*" in names:
        return None
    result: list[str] = []
    for name in names:
        info = field_map.resolve(name, raw.find(name))
        if info.wire_name not in result:
            result.append(info.wire_name)
    return tuple(result)


def _count(params: Mapping[str, str]) -> bool:
    count = False
    inline = params.get("$inlinecount")
    if inline is not None:
        value = inline.strip().lower()
        if value not in ("allpages", "none"):
            raise ODataError(
                "$inlinecount must be allpages or none", option="$inlinecount", position=0,
                expected="allpages or none",
            )
        count = value == "allpages"
    if params.get("$count") is not None:
        count = parse_bool_option("$count", params["$count"]) or count
    return count


def include_deleted_option(params: Mapping[str, str]) -> bool:
    """``__includeDeleted`` (any case) as a boolean; a non-boolean value is a 400."""
    found = _get(params, "__includeDeleted")
    if found is None:
        return False
    name, value = found
    return parse_bool_option(name, value)
