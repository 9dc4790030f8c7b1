"""Database-side wire formatting for list pages: timestamps (and versions) as wire strings.

On a pull the three timestamps of a row are most of its cost when parsed into ``datetime``
by the driver (Django's PostgreSQL loader is a Python subclass that bypasses psycopg's C
loader) and formatted back in Python. Letting the database emit ``YYYY-MM-DDTHH:MM:SS.mmmZ``
directly gives byte-identical JSON for a fraction of the work. Other backends fall back to
the Python converters in ``serializers``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.db.models import CharField, Func
from django.db.models.expressions import Col, RawSQL


@lru_cache(maxsize=256)
def scalar_text_column(sql: str, param: str) -> RawSQL:
    """``(sql)`` with its one parameter as one more column of a page's statement, typed as
    text so that Django converts no row's value (the caller converts the one it uses).

    One expression per (SQL, parameter), shared: a query resolves a copy of it, never the
    expression itself, and building it (a ``CharField`` among it) on every page was a
    measurable part of a small page's CPU. The SQL text is the vendor's own (its quoting), so
    the key says everything the expression depends on.
    """
    return RawSQL(f"({sql})", (param,), output_field=CharField())


# Vendors whose DATETIME text this module can format in SQL.
TIMESTAMP_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})
VERSION_VENDORS = frozenset({"postgresql"})


def _pg_timestamp(sql: str) -> str:
    return f"to_char({sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def _sqlite_timestamp(sql: str) -> tuple[str, int]:
    """The SQL and how many times it names ``sql`` (its parameters repeat as often)."""
    # Django stores 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: padding with
    # '.000' and keeping 23 characters covers both without a CASE on length(), which counts
    # the characters. Four string operations a value instead of six (a 1000-row page has
    # 4000 of them; callgrind: about a tenth of each value's cost).
    return f"substr(replace({sql}, ' ', 'T') || '.000', 1, 23) || 'Z'", 1


def _pg_version(sql: str) -> str:
    return f"encode(int8send({sql}), 'base64')"


class WireTimestamp(Func):
    """A DateTimeField column as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, milliseconds), or NULL."""

    arity = 1
    output_field = CharField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        return _pg_timestamp(sql), params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        text, repeat = _sqlite_timestamp(sql)
        return text, tuple(params) * repeat

    def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        # DATETIME(6) holds UTC when USE_TZ is on; '%%' because the backend formats params.
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CONCAT(LEFT(DATE_FORMAT({sql}, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), 23), 'Z')", params


class KeyTimestamp(WireTimestamp):
    """A page's ``updated_at`` key column, of which only the last row's is read (for the next
    page's cursor): ``WireTimestamp`` except on SQLite, where it is the stored text, turned
    into the wire form by ``key_timestamp`` for that one row instead of in SQL for every row
    (about a twelfth of a 1000-row page's instructions)."""

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        # CAST: an expression has no declared type, so the sqlite3 module does not parse it
        # into a datetime (Django registers a converter for "datetime" columns).
        return f"CAST({sql} AS TEXT)", params


def key_timestamp(value: str | None, vendor: str) -> str | None:
    """A ``KeyTimestamp`` value as ``WireTimestamp`` gives it: on SQLite, ``_sqlite_timestamp``
    in Python."""
    if value is None or vendor != "sqlite":
        return value
    return (value.replace(" ", "T") + ".000")[:23] + "Z"


class WireVersion(Func):
    """A BigInteger version as base64 of its 8 big-endian bytes (``encode_version`` in SQL);
    with a second column, the imported version where that is not NULL (``wire.wire_version``)."""

    output_field = CharField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        if len(self.source_expressions) == 1:
            return _pg_version(sql), params
        imported, imported_params = compiler.compile(self.source_expressions[1])
        return f"COALESCE({imported}, {_pg_version(sql)})", (*imported_params, *params)


# -- whole rows as JSON ----------------------------------------------------------------------
#
# A pulled page is most of a server's work, and most of that is turning each column into its
# JSON text. ``WireRow`` lets the database write a row's wire JSON itself (SQLite
# ``json_object``, PostgreSQL ``json_build_object``), so the page's body is the rows' texts
# joined: no per-value Python conversion, no encoding. Each column kind is written exactly as
# the Python converters in ``serializers`` write it; a model with a column kind not listed
# here is served by the Python path. ``tests/test_wire_sql.py`` compares both paths value by
# value on every backend.

#: Django internal types whose JSON the database can write as the Python path does.
_ROW_KINDS: dict[str, str] = {
    "CharField": "text", "TextField": "text", "SlugField": "text", "EmailField": "text", "URLField": "text",
    "GenericIPAddressField": "text", "FilePathField": "text", "FileField": "text", "ImageField": "text",
    "IntegerField": "int", "SmallIntegerField": "int", "BigIntegerField": "int", "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int", "PositiveBigIntegerField": "int",
    "AutoField": "int", "BigAutoField": "int", "SmallAutoField": "int",
    "FloatField": "float", "DecimalField": "decimal", "BooleanField": "bool", "NullBooleanField": "bool",
    "DateTimeField": "timestamp", "DateField": "text", "UUIDField": "uuid", "JSONField": "json",
}
#: Vendors ``WireRow`` compiles for.
ROW_VENDORS = frozenset({"sqlite", "postgresql"})
# SQLite's default SQLITE_MAX_FUNCTION_ARG is 127 (one key and one value per column) and
# PostgreSQL's json_build_object takes at most 100 arguments.
_MAX_COLUMNS = 50
#: The SQLite function ``WireRow`` calls for versions (registered on each new connection).
SQLITE_VERSION_FUNCTION = "offline_sync_version"


def row_kind(field: Any) -> str | None:
    """How ``WireRow`` writes ``field``: its kind, or None if only the Python path can."""
    if field.name == "version":
        return "version"
    target = field.target_field if field.is_relation else field
    kind = _ROW_KINDS.get(target.get_internal_type())
    if kind == "int" and target.primary_key:
        return "int_id"  # integer ids travel as strings (every client's id is a string)
    return kind


def supports_rows(fields: list[Any], vendor: str) -> bool:
    return vendor in ROW_VENDORS and len(fields) <= _MAX_COLUMNS and all(row_kind(f) for f in fields)


class WireRow(Func):
    """One row as its wire JSON object text: ``{"id": …, "text": …, …, "deleted": …}``
    (UTF-8 ``bytes`` on SQLite, ``str`` elsewhere)."""

    output_field = CharField()

    def __init__(self, wire_names: list[str], fields: list[Any], imported: Any = None) -> None:
        """``imported``: the model's ``imported_version`` field, if it has one; the version is
        then that column where it is not NULL."""
        from django.db.models import F

        self.wire_names = wire_names
        self.fields = fields
        self.imported = imported
        self.kinds = [row_kind(f) for f in fields]
        self._columns = [*fields, imported] if imported is not None else list(fields)
        # Shared with the per-query copies (``copy()`` is shallow), so the SQL is built once.
        self._sql_by_alias: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}
        super().__init__(*(F(f.attname) for f in self._columns))

    def resolve_expression(
        self, query: Any = None, allow_joins: bool = True, reuse: Any = None, summarize: bool = False,
        for_save: bool = False,
    ) -> Any:
        """The columns of the queried table, resolved directly: the general path resolves each
        ``F()`` through Django's join machinery, a third of a small page's query building."""
        model = getattr(query, "model", None)
        if model is None or any(f.model._meta.concrete_model is not model._meta.concrete_model for f in self._columns):
            return super().resolve_expression(query, allow_joins, reuse, summarize, for_save)
        resolved = self.copy()
        alias = query.get_initial_alias()
        resolved.set_source_expressions([f.get_col(alias) for f in self._columns])
        return resolved

    def _members(self, compiler: Any, connection: Any, value: Any) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        expressions = list(self.source_expressions)
        imported = expressions.pop() if self.imported is not None else None
        for name, kind, expression in zip(self.wire_names, self.kinds, expressions, strict=True):
            sql, sql_params = compiler.compile(expression)
            text, repeat = value(kind, sql)
            member_params = list(sql_params) * repeat
            if kind == "version" and imported is not None:
                imported_sql, imported_params = compiler.compile(imported)
                text = f"COALESCE({imported_sql}, {text})"
                member_params = [*imported_params, *member_params]
            key = name.replace("'", "''")
            parts.append(f"'{key}', {text}")
            params.extend(member_params)
        return ", ".join(parts), params

    def _cached(
        self, compiler: Any, connection: Any, build: Callable[[Any, Any], tuple[str, Any]]
    ) -> tuple[str, Any]:
        """``build``'s SQL, kept per table alias: when every member is a plain column (as
        ``resolve_expression`` leaves them) the text depends on nothing else, and composing
        it (compiling each column, quoting each name) was a tenth of a small page's CPU."""
        columns: list[Any] = self.source_expressions
        if not all(type(c) is Col for c in columns):
            return build(compiler, connection)
        key = (connection.vendor, tuple((c.alias, c.target.column) for c in columns))
        found = self._sql_by_alias.get(key)
        if found is None:
            sql, params = build(compiler, connection)
            found = (sql, tuple(params))
            if len(self._sql_by_alias) < 64:  # aliases are few (the table's, a subquery's)
                self._sql_by_alias[key] = found
        return found[0], list(found[1])

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        return self._cached(compiler, connection, self._as_sqlite)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        return self._cached(compiler, connection, self._as_postgresql)

    def _as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        def value(kind: str | None, sql: str) -> tuple[str, int]:
            if kind == "bool":
                return f"CASE WHEN {sql} IS NULL THEN NULL WHEN {sql} THEN json('true') ELSE json('false') END", 2
            if kind == "timestamp":
                return _sqlite_timestamp(sql)
            if kind == "version":
                return f"{SQLITE_VERSION_FUNCTION}({sql})", 1
            if kind == "int_id":
                return f"CAST({sql} AS TEXT)", 1
            if kind in ("float", "decimal"):
                # json_object writes a REAL with 15 significant digits, which loses precision.
                # SQLite's own conversion is not correctly rounded at 17 digits (46 of 20,000
                # random doubles came back different); at 18 every one of 100,000 round-tripped
                # to the same double as Python's shortest form. A DECIMAL is read back by Django
                # with 15 digits, so it keeps 15. Infinity has no JSON form (orjson writes null).
                # '%%': Django formats a statement's SQL with its parameters to log it (DEBUG,
                # CaptureQueriesContext), where a bare '%' raises; its cursor turns '%%' into '%'.
                digits = 18 if kind == "float" else 15
                return (
                    f"CASE WHEN {sql} IS NULL OR abs({sql}) > 1.7976931348623157e308 THEN NULL "
                    f"ELSE json(printf('%%!.{digits}g', {sql})) END"
                ), 4
            if kind == "uuid":  # stored as 32 hex digits; the wire has the dashed form
                return (
                    f"substr({sql}, 1, 8) || '-' || substr({sql}, 9, 4) || '-' || substr({sql}, 13, 4) || '-' "
                    f"|| substr({sql}, 17, 4) || '-' || substr({sql}, 21, 12)"
                ), 5
            if kind == "json":
                return f"json({sql})", 1
            return sql, 1

        members, params = self._members(compiler, connection, value)
        # As a BLOB the sqlite3 module hands the text over as bytes, which orjson.Fragment
        # takes as they are, instead of decoding every row's UTF-8 into a str (a fortieth of
        # a 1000-row page's instructions).
        return f"CAST(json_object({members}) AS BLOB)", params

    def _as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        def value(kind: str | None, sql: str) -> tuple[str, int]:
            if kind == "timestamp":
                return _pg_timestamp(sql), 1
            if kind == "version":
                return _pg_version(sql), 1
            if kind == "int_id":
                return f"({sql})::text", 1
            if kind == "float":
                return f"({sql})::float8", 1
            if kind == "decimal":
                # A numeric goes into the JSON as its exact text (``1.2500``), as the Python path
                # writes a Decimal; NaN and the infinities (no JSON form) as null.
                return f"CASE WHEN ({sql}) IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE ({sql}) END", 2
            if kind == "uuid":
                return f"({sql})::text", 1
            return sql, 1

        members, params = self._members(compiler, connection, value)
        return f"json_build_object({members})::text", params
