"""Query shapes: a list request's SQL compiled once per shape, its values bound per request.

A device pulls page after page of the same query with a new timestamp each time
(``updatedAt ge datetimeoffset'…'`` with ``$orderby=updatedAt&$top=50``). Building the page's
queryset (``filter``, ``order_by``, ``values_list``, slicing) and compiling it to SQL was some
30 % of such a request's CPU, and its result differs between two pages only in the values of
the literals. So the SQL is kept per *shape*: the request with the values of its literals
lifted out.

* The translator (``translator.Translator``) turns each literal compared with a column or an
  expression (``updatedAt ge <T>``, ``text eq 'x'``) into a ``SlotValue``: a ``Value`` that,
  while a template is compiled, stands in the SQL's parameters as a marker instead of its
  value. ``filter_shape`` is the ``$filter`` tree with those literals replaced by their kind
  and the type they were bound as; every other literal (``in`` lists, ``substring``
  arguments, arithmetic, a constant predicate) stays in the shape with its value, since it
  can change the SQL's text or structure. The list page adds its own slots: the keyset
  cursor's stamp and id, the v1/v2 pull boundary (``pagination.SyncPagination``).
* ``SqlTemplate`` is the compiled statement with, for each parameter, either a constant or
  the slot whose value goes there (converted by the slot's output field for the current
  connection, as ``Value.as_sql`` converts it).
* ``ShapeCache`` is the LRU of templates (``QUERY_CACHE_SIZE`` entries per process), keyed by
  what the list pipeline knows changes the SQL (``pagination.SyncPagination``).

Translation still runs on every request, so every 400 a bad query gives is raised by the same
code as before. The statement is executed with the values of this request only; a shape
whose SQL cannot be templated (a marker that does not come out as a single ``%s`` parameter,
or a slot whose value reached the SQL without its marker) is executed the ordinary way and
remembered as such.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final
from weakref import WeakKeyDictionary

from django.core.signals import setting_changed
from django.db.models import Value

from .lru import LRUCache
from .nodes import BinaryOp, BoolOp, Call, In, Literal, Node, Not, Property, walk

__all__ = [
    "NOT_TEMPLATABLE",
    "ShapeCache",
    "Slot",
    "SlotValue",
    "SqlTemplate",
    "compile_template",
    "filter_shape",
    "shape_cache",
]

# Set while a template is compiled: a ``SlotValue`` then emits its marker as its parameter.
_TEMPLATING: ContextVar[bool] = ContextVar("offline_sync_templating", default=False)


@dataclass(frozen=True, slots=True)
class Slot:
    """The marker a ``SlotValue`` leaves among a template's parameters."""

    index: int
    output_field: Any


class SlotValue(Value):
    """A literal's value in a query, bindable per request (see the module docstring).

    Outside a template compilation it is an ordinary ``Value``.
    """

    def __init__(self, value: Any, output_field: Any, index: int) -> None:
        super().__init__(value, output_field=output_field)
        self.slot_index = index

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        sql, params = super().as_sql(compiler, connection)
        if not _TEMPLATING.get():
            return sql, params
        if sql != "%s" or len(params) != 1:
            raise _NotTemplatable()
        return sql, [Slot(self.slot_index, self.output_field)]


class _NotTemplatable(Exception):
    """A slot whose SQL is not one plain parameter (the statement is run the ordinary way)."""


@contextmanager
def _templating() -> Iterator[None]:
    token = _TEMPLATING.set(True)
    try:
        yield
    finally:
        _TEMPLATING.reset(token)


@dataclass(frozen=True, slots=True)
class SqlTemplate:
    """A compiled ``SELECT`` with parameter slots, and what reading its rows needs."""

    sql: str
    #: per parameter: ``(None, constant)`` or ``(slot, None)``
    params: tuple[tuple[Slot | None, Any], ...]
    #: the selected expressions, for the backend's and fields' converters
    fields: tuple[Any, ...]
    #: the selected columns when the statement has more (Django's extra select), else None
    trim: int | None
    #: ``_converters`` per connection (connections are per thread; this outlives none of them)
    converters: WeakKeyDictionary[Any, list[tuple[int, tuple[list[Any], Any]]]] = field(
        default_factory=WeakKeyDictionary, compare=False, repr=False
    )

    def bind(self, values: Sequence[Any], connection: Any) -> list[Any]:
        """The statement's parameters for this request's slot ``values``."""
        bound: list[Any] = []
        for slot, constant in self.params:
            if slot is None:
                bound.append(constant)
            else:
                bound.append(slot.output_field.get_db_prep_value(values[slot.index], connection=connection))
        return bound

    def rows(self, values: Sequence[Any], connection: Any) -> list[tuple[Any, ...]]:
        """Execute with ``values``: the rows as ``list(queryset.values_list(…))`` gives them."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.bind(values, connection))
            fetched = cursor.fetchall()
        if self.trim is not None:
            fetched = [row[: self.trim] for row in fetched]
        converters = self.converters.get(connection)
        if converters is None:
            converters = self.converters[connection] = _converters(self.fields, connection)
        if not converters:
            return [tuple(row) for row in fetched]
        result = []
        for raw in fetched:
            row = list(raw)
            for position, (functions, expression) in converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
            result.append(tuple(row))
        return result


def _converters(fields: Sequence[Any], connection: Any) -> list[tuple[int, tuple[list[Any], Any]]]:
    """As ``SQLCompiler.get_converters``, for the connection of this request (the template
    outlives the connection it was compiled on, and connections are per thread)."""
    found = []
    for position, expression in enumerate(fields):
        if expression:
            backend = connection.ops.get_db_converters(expression)
            own = expression.get_db_converters(connection)
            if backend or own:
                found.append((position, (backend + own, expression)))
    return found


class _NotTemplatableMarker:
    def __repr__(self) -> str:
        return "NOT_TEMPLATABLE"


#: Cached for a shape whose statement cannot be templated: run it the ordinary way.
NOT_TEMPLATABLE: Final = _NotTemplatableMarker()


def compile_template(queryset: Any, using: str, slots: int) -> SqlTemplate | _NotTemplatableMarker | None:
    """The template of ``queryset`` (a sliced ``values_list``) whose ``SlotValue`` are numbered
    ``0 … slots - 1``; ``NOT_TEMPLATABLE`` if its statement cannot be one; None if compiling
    failed (the ordinary evaluation raises the error as it always has; nothing is cached)."""
    compiler = queryset.query.get_compiler(using=using)
    try:
        with _templating():
            sql, params = compiler.as_sql()
    except _NotTemplatable:
        return NOT_TEMPLATABLE
    except Exception:
        return None
    col_count = compiler.col_count
    fields = tuple(s[0] for s in compiler.select[:col_count])
    if not sql or compiler.has_composite_fields(list(fields)):
        return NOT_TEMPLATABLE  # (results_iter treats them otherwise: leave them to it)
    # Every slot must come out as a marker: one bound some other way would leave the first
    # request's value in the template as a constant.
    if {p.index for p in params if isinstance(p, Slot)} != set(range(slots)):
        return NOT_TEMPLATABLE
    slotted = tuple((p, None) if isinstance(p, Slot) else (None, p) for p in params)
    return SqlTemplate(sql=sql, params=slotted, fields=fields, trim=_trim_of(compiler))


def _trim_of(compiler: Any) -> int | None:
    """The selected columns when the statement has more (Django's extra select), else None."""
    return int(compiler.col_count) if compiler.has_extra_select else None


# -- the shape of a $filter --------------------------------------------------------------------


def filter_shape(node: Node | None, slots: dict[int, str]) -> Hashable:
    """``node`` without its positions and with each slotted literal's value lifted out.

    ``slots`` maps ``id(literal)`` of every literal the translator turned into a ``SlotValue``
    to the type it was bound as; any other literal keeps its value (and its source text: the
    text of a decimal decides the value it gets against each column type).
    """
    if node is None:
        return None
    parts: list[Hashable] = []
    for current in walk(node):
        if isinstance(current, Literal):
            bound = slots.get(id(current))
            if bound is None:
                parts.append(("L", current.kind, type(current.value).__name__, current.value, current.text))
            else:
                parts.append(("S", current.kind, bound))
        elif isinstance(current, Property):
            parts.append(("P", current.name))
        elif isinstance(current, BinaryOp):
            parts.append(("B", current.op))
        elif isinstance(current, BoolOp):
            parts.append(("O", current.op, len(current.operands)))
        elif isinstance(current, Not):
            parts.append(("N",))
        elif isinstance(current, Call):
            parts.append(("C", current.name, len(current.args)))
        elif isinstance(current, In):
            parts.append(("I", len(current.items)))
        else:  # a node kind this function does not know: never shared
            parts.append(("?", id(current)))
    return tuple(parts)


# -- the cache -------------------------------------------------------------------------------


class ShapeCache(LRUCache[Hashable, "SqlTemplate | _NotTemplatableMarker"]):
    """A thread-safe LRU of ``SqlTemplate`` (or ``NOT_TEMPLATABLE``) by shape key."""


#: The process's cache of list statements (``QUERY_CACHE_SIZE`` entries at most).
shape_cache: Final = ShapeCache()


def _clear(**kwargs: Any) -> None:
    # Any setting may change the SQL (USE_TZ, DATABASES, OFFLINE_SYNC): start again.
    shape_cache.clear()


setting_changed.connect(_clear)
