"""The pull order: keyset conditions and the v1/v2 pull boundary, as ORM conditions.

Every client pulls in ``(updatedAt, id)`` order (``docs/protocol.rst`` §4). Two things follow:

* a page can continue *after* the last row sent (``after``), an index range scan whatever the
  table size, where ``OFFSET`` re-reads every row already sent;
* a v1/v2 client pages with ``updatedAt ge T`` and ``$skip``; ``past_boundary`` applies that
  ``$skip`` to the rows still at ``T``, so that a row updated mid-pull cannot make it skip a
  newer one (§4.4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from django.db.models import F, Model, OrderBy, Q, QuerySet, Subquery

from ..wire import UTC, ms_to_datetime, truncate_ms
from .nodes import BinaryOp, BoolOp, Literal, Node, Property

__all__ = [
    "KEYSET_ID",
    "KEYSET_UPDATED",
    "after",
    "after_condition",
    "after_stamp",
    "keyset_of",
    "past_boundary",
    "pull_boundary",
    "pull_floor",
    "updated_at_term",
]

KEYSET_UPDATED: Final = ("updated_at", "id")
KEYSET_ID: Final = ("id",)

_M = TypeVar("_M", bound=Model)


def _term_name(term: Any) -> tuple[str, bool] | None:
    """(field, descending) for an ``order_by`` term, or ``None`` if it is an expression."""
    if isinstance(term, str):
        return (term[1:], True) if term.startswith("-") else (term, False)
    if isinstance(term, OrderBy) and isinstance(term.expression, F):
        return str(term.expression.name), term.descending  # type: ignore[attr-defined]  # F.name is untyped in the stubs
    if isinstance(term, F):
        return str(term.name), False  # type: ignore[attr-defined]
    return None


def keyset_of(order_by: Sequence[Any], pk_name: str = "id") -> tuple[str, ...] | None:
    """``KEYSET_UPDATED`` or ``KEYSET_ID`` when ``order_by`` is a pull order, else None."""
    fields: list[str] = []
    for term in order_by:
        named = _term_name(term)
        if named is None or named[1]:
            return None
        fields.append("id" if named[0] in (pk_name, "pk") else named[0])
    keyset = tuple(fields)
    return keyset if keyset in (KEYSET_UPDATED, KEYSET_ID) else None


def after(keyset: tuple[str, ...], updated_ms: int | None, last_id: str) -> Q:
    """The rows after ``(updated_ms, last_id)`` in ``keyset`` order."""
    return after_condition(after_stamp(keyset, updated_ms), last_id)


def after_stamp(keyset: tuple[str, ...], updated_ms: int | None) -> dt.datetime | None:
    """The stamp ``after`` compares with: None in the id order."""
    return None if keyset == KEYSET_ID or updated_ms is None else ms_to_datetime(updated_ms)


def after_condition(at: Any, last_id: Any) -> Q:
    """``after`` from its values (or expressions binding them, ``query.shapes``): ``at`` is
    ``after_stamp``'s, None in the id order."""
    if at is None:
        return Q(pk__gt=last_id)
    # The redundant `updated_at >= at` is what makes this an index range scan: without it
    # PostgreSQL reads from the query's own lower bound and filters out every row already
    # sent, so the k-th page of a pull would cost k pages.
    return Q(updated_at__gte=at) & (Q(updated_at__gt=at) | Q(pk__gt=last_id))


def past_boundary(queryset: QuerySet[_M], boundary: Any, skip: int) -> QuerySet[_M]:
    """A v1/v2 pull's ``$skip``, applied to the rows still at the boundary stamp ``T``.

    Every v1/v2 client (.NET, JS, Android, iOS; §4.1-§4.2) sends ``updatedAt ge T`` with
    ``$skip=n`` only after reading ``n`` rows that all had ``updatedAt == T``. If one of them
    was updated meanwhile it moved to the end, and a positional skip would jump over a newer
    row, which the client's next token then passes for good. Skipping past the ``n``-th id
    still at ``T`` gives the same page when nothing moved and loses nothing when something
    did (exact with the clock's unique stamps). One statement, so one snapshot.
    ``boundary`` is a datetime, or an expression binding one (``query.shapes``).
    """
    nth = queryset.filter(updated_at=boundary).order_by("pk").values("pk")[skip - 1 : skip]
    return queryset.filter(Q(updated_at__gt=boundary) | Q(updated_at=boundary, pk__gt=Subquery(nth)))


def pull_boundary(node: Node | None) -> dt.datetime | None:
    """``T`` when a ``$filter`` has the v1/v2 pull shape ``… and updatedAt ge <datetime T>``.

    Looks at the top-level conjuncts of the parsed tree (the clients AND their own filter in
    front) for ``updatedAt``/``__updatedAt`` ``ge`` a datetime literal.
    """
    return _updated_at_bound(node, ("ge",))


def pull_floor(node: Node | None) -> dt.datetime | None:
    """``T`` when a ``$filter`` asks for rows from a delta token on: ``updatedAt ge T`` (v1/v2)
    or ``updatedAt gt T`` (v3), as a top-level conjunct. The client holds rows up to ``T``,
    so a read replica that answers it must show ``T`` (``replicas.at_watermark``)."""
    return _updated_at_bound(node, ("ge", "gt"))


def _updated_at_bound(node: Node | None, ops: tuple[str, ...]) -> dt.datetime | None:
    found = updated_at_term(node, ops)
    return None if found is None else found[0]


def updated_at_term(node: Node | None, ops: tuple[str, ...], *, last: bool = True) -> tuple[dt.datetime, str] | None:
    """``(T, op)`` of the top-level conjunct ``updatedAt <op> <datetime T>`` (``op`` in ``ops``),
    ``T`` in UTC at millisecond precision: the last such conjunct, or the first with
    ``last=False``. The clients AND their own filter in front of the pull's boundary."""
    if node is None:
        return None
    conjuncts = node.operands if isinstance(node, BoolOp) and node.op == "and" else (node,)
    for term in reversed(conjuncts) if last else conjuncts:
        if (
            isinstance(term, BinaryOp)
            and term.op in ops
            and isinstance(term.left, Property)
            and term.left.name.lower().lstrip("_") == "updatedat"
            and isinstance(term.right, Literal)
            and isinstance(term.right.value, dt.datetime)
        ):
            value = term.right.value
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return truncate_ms(value.astimezone(UTC)), term.op
    return None
