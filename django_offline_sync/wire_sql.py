"""Database-side wire formatting for list pages: timestamps (and versions) as wire strings.

On a pull the three timestamps of a row are most of its cost when parsed into ``datetime``
by the driver (Django's PostgreSQL loader is a Python subclass that bypasses psycopg's C
loader) and formatted back in Python. Letting the database emit ``YYYY-MM-DDTHH:MM:SS.mmmZ``
directly gives byte-identical JSON for a fraction of the work. Other backends fall back to
the Python converters in ``serializers``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Func

# Vendors whose DATETIME text this module can format in SQL.
TIMESTAMP_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})
VERSION_VENDORS = frozenset({"postgresql"})


class WireTimestamp(Func):
    """A DateTimeField column as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, milliseconds), or NULL."""

    arity = 1
    output_field = CharField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"to_char({sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        # Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC.
        sql, params = compiler.compile(self.source_expressions[0])
        text = (
            f"CASE WHEN length({sql}) = 19 THEN replace({sql}, ' ', 'T') || '.000Z' "
            f"ELSE substr(replace({sql}, ' ', 'T'), 1, 23) || 'Z' END"
        )
        return text, tuple(params) * 4

    def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        # DATETIME(6) holds UTC when USE_TZ is on; '%%' because the backend formats params.
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CONCAT(LEFT(DATE_FORMAT({sql}, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), 23), 'Z')", params


class WireVersion(Func):
    """A BigInteger version as base64 of its 8 big-endian bytes (``encode_version`` in SQL)."""

    arity = 1
    output_field = CharField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"encode(int8send({sql}), 'base64')", params
