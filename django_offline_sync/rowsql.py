"""The three single-row statements of a write, compiled once per model instead of per write.

A table write runs the same statements every time: load the row by primary key, then UPDATE
it (or INSERT a new one). Django builds each of them anew on every call (a queryset clone, a
``filter(pk=…)``, then the SQL compiler), which was about a fifth of an update's CPU and a
tenth of an insert's (``bench/cpu.py --profile``). Here the SQL text of each statement is
made once per model, database alias and column list (by Django's own compiler, so quoting,
placeholders and converters are Django's), and only the parameters change from one write to
the next.

Nothing else about a save changes: ``SyncModel`` plugs these in at Django's
``_do_update``/``_do_insert`` hooks, below ``save()``, so an overridden ``save()``, the
``pre_save``/``post_save`` signals and ``update_fields`` all work as before. Anything these
statements do not cover falls back to the ORM, which then behaves exactly as Django does: a
value that is an expression (``F()``, ``Now()``) or a model instance, a field with its own
placeholder (spatial fields), a prepared value that is itself SQL, a model with parents
(multi-table inheritance), a custom base manager, ``select_on_save``, an INSERT that must
return columns (an ``AutoField`` key), and databases other than SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeAlias

from django.db import DatabaseError, DataError, connections, models
from django.db.models.query import ModelIterable
from django.db.transaction import TransactionManagementError

from . import stamping
from .backends import client_cursor

__all__ = ["RowGone", "RowLoader", "insert_row", "insert_stamped_row", "row_loader", "update_row"]

#: Vendors whose single-row INSERT and UPDATE are plain ``INSERT … VALUES`` / ``UPDATE … SET``.
VENDORS: Final = frozenset({"sqlite", "postgresql"})

#: Python types a value of which is never SQL, an expression or a model instance: the common
#: case is decided with one type lookup instead of two ``hasattr`` probes.
_PLAIN: Final = frozenset(
    {str, int, bool, float, type(None), dt.datetime, dt.date, dt.time, dt.timedelta, Decimal, uuid.UUID, bytes}
)


def _plain(value: Any) -> bool:
    if type(value) in _PLAIN:
        return True
    return not hasattr(value, "resolve_expression") and not hasattr(value, "prepare_database_save")


def _simple_table(model: type[models.Model]) -> bool:
    meta = model._meta
    return not meta.parents and meta.base_manager_name is None and not meta.select_on_save and meta.pk is not None


# A string: Field is generic in the stubs only, not at run time.
_Key: TypeAlias = "tuple[type[models.Model], str, tuple[models.Field[Any, Any], ...]]"


def _statement(cache: dict[_Key, str | None], key: _Key, build: Any, connection: Any) -> str | None:
    """The statement of ``key`` (model, alias, fields), built once by ``build``; None: not cacheable."""
    sql = cache.get(key, "")
    if sql == "":
        sql = cache[key] = build(key[0], connection, key[2])
    return sql


#: ``(field class, value type)`` pairs whose prepared value is the value itself, on every
#: backend: Django's ``get_db_prep_save`` for these exact classes only runs ``to_python`` on
#: them, which returns a ``str`` (``CharField``, ``TextField``), a ``bool`` (``BooleanField``)
#: or ``None`` unchanged, and no backend adapts them. Skipping those calls saves a tenth of
#: the parameters' preparation; every other pair, subclasses of these fields included, goes
#: through Django.
_UNCHANGED: Final = frozenset(
    {
        (models.CharField, str),
        (models.CharField, type(None)),
        (models.TextField, str),
        (models.TextField, type(None)),
        (models.BooleanField, bool),
        (models.BooleanField, type(None)),
    }
)


def _prepared(pairs: Any, connection: Any) -> list[Any] | None:
    """The parameters of ``(field, value)`` pairs as Django's compilers prepare them for a
    save, or None when a value is not plain data (see the module docstring)."""
    params = []
    for field, value in pairs:
        if (type(field), type(value)) in _UNCHANGED:
            params.append(value)
            continue
        if not _plain(value):
            return None
        prepared = field.get_db_prep_save(value, connection=connection)
        if hasattr(prepared, "as_sql"):
            return None
        params.append(prepared)
    return params


_UPDATES: dict[_Key, str | None] = {}
_INSERTS: dict[_Key, str | None] = {}


def update_row(
    model: type[models.Model],
    using: str,
    pk: Any,
    values: list[tuple[models.Field[Any, Any], Any, Any]],
    *,
    commit: bool = False,
) -> bool | None:
    """``UPDATE table SET … WHERE pk = …`` with Django's ``_do_update`` values.

    Returns whether a row was updated, or ``None`` when the ORM must do it (see the module
    docstring), having run no statement.

    ``commit``: the UPDATE is the last statement of the transaction, which its caller leaves
    to commit with it, ``UPDATE …; COMMIT`` in one message where the cursor sends several
    statements in one (``stamping.reads_with_lock`` said the connection can): one round trip
    fewer. The transaction is then over, and the ``atomic`` block around it commits nothing
    more (psycopg's ``commit()`` sends nothing on an idle connection); any further statement
    is refused until ``end_of_write``. An error in either statement is raised from here: a
    failed UPDATE leaves the transaction failed (the block's ``ROLLBACK`` ends it), a failed
    COMMIT (a deferred constraint) has ended it, as it would at the block's commit.
    """
    if not values:
        return None
    connection = connections[using]
    sql = _statement(_UPDATES, (model, using, tuple(field for field, _, _ in values)), _update_sql, connection)
    params = None if sql is None else _prepared(((field, value) for field, _, value in values), connection)
    if sql is None or params is None:
        return None
    pk_field = model._meta.pk
    assert pk_field is not None
    params.append(pk_field.get_db_prep_value(pk_field.get_prep_value(pk), connection, prepared=True))
    with connection.cursor() as cursor:
        if commit and client_cursor(cursor.cursor):
            cursor.execute(f"{sql}; COMMIT", params)
            # Until the writer's block ends, a statement would run in a transaction of its own.
            connection.execute_wrappers.append(_refuse_after_commit)
            if cursor.rowcount <= 0:  # the UPDATE's, the message's first result
                raise RowGone(f"{model._meta.label} {pk!r} was deleted while it was written.")
            return True
        cursor.execute(sql, params)
        return bool(cursor.rowcount > 0)


#: Set on an instance (by ``LockedRow._carry_commit``, to the database alias) whose next UPDATE
#: is the last statement of the writer's transaction: it carries the ``COMMIT``
#: (``update_row(commit=True)``).
COMMIT_WITH_UPDATE: Final = "_offline_sync_commit_with_update"


def _refuse_after_commit(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    raise TransactionManagementError(
        "A statement after the COMMIT that the write's UPDATE carried: it would not commit with the"
        " row. Whatever writes more than the row must keep the writer's transaction (override"
        " perform_update, perform_destroy or perform_undelete, or connect a post_save receiver)."
    )


def end_of_write(using: str) -> None:
    """The writer's block is over: statements are allowed again (``update_row(commit=True)``)."""
    wrappers = connections[using].execute_wrappers
    if _refuse_after_commit in wrappers:
        wrappers.remove(_refuse_after_commit)


class RowGone(DatabaseError):
    """An UPDATE that carried its transaction's ``COMMIT`` found no row: another connection
    deleted it (outside the table's clock) after it was read. Nothing of the write is left
    uncommitted but the clock's advance (a stamp no row has, which pulls never miss), and
    Django's way out, an INSERT of the row, would run after the commit, in a transaction of
    its own: the write is refused instead (``Writer.row``: 404)."""


def _update_sql(model: type[models.Model], connection: Any, fields: tuple[models.Field[Any, Any], ...]) -> str | None:
    if connection.vendor not in VENDORS or not _simple_table(model):
        return None
    if any(hasattr(field, "get_placeholder") or field.model is not model._meta.concrete_model for field in fields):
        return None
    qn = connection.ops.quote_name
    pk_field = model._meta.pk
    assert pk_field is not None
    assignments = ", ".join(f"{qn(field.column)} = %s" for field in fields)
    table = qn(model._meta.db_table)
    return f"UPDATE {table} SET {assignments} WHERE {table}.{qn(pk_field.column)} = %s"


def insert_row(
    obj: models.Model, using: str, fields: list[models.Field[Any, Any]], returning_fields: Any, raw: bool
) -> bool:
    """``INSERT INTO table (…) VALUES (…)`` with Django's ``_do_insert`` arguments.

    Returns False when the ORM must do it (see the module docstring), having run no statement.
    """
    if raw or returning_fields:
        return False
    model = obj._meta.concrete_model
    assert model is not None
    connection = connections[using]
    sql = _statement(_INSERTS, (model, using, tuple(fields)), _insert_sql, connection)
    # pre_save then prepare, field by field, as Django's insert compiler does
    params = None if sql is None else _prepared(((f, f.pre_save(obj, True)) for f in fields), connection)
    if sql is None or params is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return True


#: The columns an insert takes from its stamp (``SyncModel.stamp_from``).
STAMPED: Final = frozenset({"created_at", "updated_at", "version"})

_STAMPED_INSERTS: dict[_Key, str | None] = {}


def insert_stamped_row(obj: models.Model, using: str, fields: list[models.Field[Any, Any]], clock: str) -> int | None:
    """On PostgreSQL: take the stamp from table ``clock``'s clock and INSERT the row, in one statement.

    ``WITH clock AS (INSERT INTO offline_sync_clock … ON CONFLICT DO UPDATE SET last_ms =
    GREATEST(now, last_ms + 1) RETURNING last_ms) INSERT INTO table (…) VALUES (…, stamp, …)``:
    the clock row's lock is taken as by ``stamping.reserve`` (and held until commit), the stamp
    is the same ``max(now, last + 1)``, and the row is written with it, one round trip where
    there were two. The upsert also creates a table's first clock row. Returns the stamp's
    milliseconds (the caller sets the instance's fields from them), or None when the caller
    must stamp and insert the usual way, having run no statement.
    """
    model = obj._meta.concrete_model
    assert model is not None
    connection = connections[using]
    notify = stamping.notifies(using)
    cache, build = (_NOTIFYING_INSERTS, _notifying_insert_sql) if notify else (_STAMPED_INSERTS, _stamped_insert_sql)
    sql = _statement(cache, (model, using, tuple(fields)), build, connection)
    unstamped = (f for f in fields if f.attname not in STAMPED)
    values = None if sql is None else _prepared(((f, f.pre_save(obj, True)) for f in unstamped), connection)
    if sql is None or values is None:
        return None
    params: list[Any] = [clock, stamping.now_ms(), *values]
    if notify:  # the change event of the stamp, as stamping.reserve queues it
        params += stamping.notify_params(clock)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except DataError as exc:
        # The statement's own refusal of a clock past the end of time (``_stamped_insert_sql``):
        # it failed as a whole, so nothing was written, even in autocommit.
        _, marker, last = str(exc).partition(_CLOCK_EXHAUSTED + " ")
        if marker:
            digits = last[: len(last) - len(last.lstrip("0123456789"))]
            raise stamping.ClockExhausted(clock, int(digits or stamping.MAX_MS + 1)) from exc
        raise
    assert row is not None
    return int(row[0])


#: The text the stamped INSERT fails with where its stamp would be past ``wire.MAX_MS``.
_CLOCK_EXHAUSTED: Final = "offline_sync: clock past the latest timestamp"


def _stamped_insert_sql(
    model: type[models.Model], connection: Any, fields: tuple[models.Field[Any, Any], ...]
) -> str | None:
    if connection.vendor != "postgresql" or _insert_sql(model, connection, fields) is None:
        return None
    if {field.attname for field in fields} & STAMPED != STAMPED:
        return None
    qn = connection.ops.quote_name
    clock_table, last, table_column = qn(stamping.CLOCK_TABLE), qn("last_ms"), qn("table")
    # A stamp past the latest timestamp a row can have (``stamping.ClockExhausted``) makes the
    # statement fail before it writes: a cast of text to bigint, evaluated only then. Else, in
    # autocommit, a row stamped in year 10000 would commit before Python could refuse it.
    stamp_ms = (
        f"(SELECT CASE WHEN {last} <= {int(stamping.MAX_MS)} THEN {last}"
        f" ELSE CAST('{_CLOCK_EXHAUSTED} ' || {last} AS bigint) END FROM {qn('clock')})"
    )
    stamp_at = f"(SELECT TIMESTAMPTZ 'epoch' + {last} * INTERVAL '1 millisecond' FROM {qn('clock')})"
    values = [
        (stamp_ms if field.attname == "version" else stamp_at) if field.attname in STAMPED else "%s"
        for field in fields
    ]
    columns = ", ".join(qn(field.column) for field in fields)
    version = next(field for field in fields if field.attname == "version")
    return (
        f"WITH {qn('clock')} AS (INSERT INTO {clock_table} ({table_column}, {last}) VALUES (%s, %s)"
        f" ON CONFLICT ({table_column}) DO UPDATE SET {last} = GREATEST(EXCLUDED.{last}, {clock_table}.{last} + 1)"
        f" RETURNING {last})"
        f" INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({', '.join(values)})"
        f" RETURNING {qn(version.column)}"
    )


_NOTIFYING_INSERTS: dict[_Key, str | None] = {}


def _notifying_insert_sql(
    model: type[models.Model], connection: Any, fields: tuple[models.Field[Any, Any], ...]
) -> str | None:
    """``_stamped_insert_sql`` that also queues the stamp's change event (``stamping.notifies``)."""
    sql = _stamped_insert_sql(model, connection, fields)
    if sql is None:
        return None
    version = next(field for field in fields if field.attname == "version")
    return f"{sql}, {stamping.notify_sql(connection.ops.quote_name(version.column))}"


def _insert_sql(model: type[models.Model], connection: Any, fields: tuple[models.Field[Any, Any], ...]) -> str | None:
    if connection.vendor not in VENDORS or not _simple_table(model) or not fields:
        return None
    if any(hasattr(field, "get_placeholder") or field.model is not model._meta.concrete_model for field in fields):
        return None
    qn = connection.ops.quote_name
    columns = ", ".join(qn(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({placeholders})"


@dataclass(frozen=True)
class RowLoader:
    """``SELECT <every column> FROM table WHERE pk = %s LIMIT 1`` and how to make its row an instance.

    Made by Django's compiler from ``QuerySet(model).filter(pk=…)[:1]``, so the columns, the
    converters (SQLite's datetimes and booleans) and the instance (``Model.from_db``) are the
    ORM's own.
    """

    model: type[models.Model]
    sql: str
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]

    def load(self, using: str, pk: Any) -> Any:
        """The row with primary key ``pk`` as a model instance, or None."""
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self._params(connection, pk))
            row = cursor.fetchone()
        return None if row is None else self._instance(connection, using, row)

    def params(self, using: str, pk: Any) -> list[Any]:
        """``sql``'s one parameter: ``pk`` as the database takes it."""
        return self._params(connections[using], pk)

    def instance(self, using: str, row: Sequence[Any]) -> Any:
        """A row of ``sql`` as the model instance the ORM makes of it."""
        return self._instance(connections[using], using, row)

    def _params(self, connection: Any, pk: Any) -> list[Any]:
        pk_field = self.model._meta.pk
        assert pk_field is not None
        return [pk_field.get_db_prep_value(pk_field.get_prep_value(pk), connection, prepared=True)]

    def _instance(self, connection: Any, using: str, row: Sequence[Any]) -> Any:
        if self.converters:
            row = list(row)
            for pos, convs, expression in self.converters:
                value = row[pos]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[pos] = value
        return self.model.from_db(using, list(self.attnames), row)


_LOADERS: dict[tuple[type[models.Model], str], RowLoader | None] = {}

_SENTINEL_PK: Final = "0"


def row_loader(model: type[models.Model], using: str) -> RowLoader | None:
    """The cached ``RowLoader`` of ``model`` on ``using``, or None where the ORM must load.

    For the queryset ``model.all_objects.all()`` only: the caller checks that its data view is
    that one (``SyncViewSet``'s own ``get_queryset``, no ``queryset`` attribute, the
    library's manager and queryset classes).
    """
    key = (model, using)
    if key not in _LOADERS:
        _LOADERS[key] = _build_loader(model, using)
    return _LOADERS[key]


def _build_loader(model: type[models.Model], using: str) -> RowLoader | None:
    connection = connections[using]
    pk_field = model._meta.pk
    if connection.vendor not in VENDORS or pk_field is None or not isinstance(pk_field, models.CharField):
        return None
    queryset: models.QuerySet[Any] = models.QuerySet(model, using=using).filter(pk=_SENTINEL_PK)[:1]
    if queryset._iterable_class is not ModelIterable:  # pragma: no cover - a plain QuerySet
        return None
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    if list(params) != [_SENTINEL_PK] or compiler.klass_info is None or compiler.annotation_col_map:
        return None
    select_fields = compiler.klass_info["select_fields"]
    start, end = select_fields[0], select_fields[-1] + 1
    if start != 0 or end != len(compiler.select):
        return None
    attnames = tuple(column[0].target.attname for column in compiler.select)
    converters = compiler.get_converters([column[0] for column in compiler.select])
    return RowLoader(
        model=model,
        sql=sql,
        attnames=attnames,
        converters=tuple((pos, tuple(convs), expression) for pos, (convs, expression) in converters.items()),
    )
