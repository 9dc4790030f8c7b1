"""Experiment: let the database write the wire form of timestamps (and, on PostgreSQL, versions).

Measured by ``BENCH_DJANGO_SETTINGS=experiments.wire_sql_settings`` with any bench; the
default settings measure the code as it is. What it changes, for pull pages only:

* every DateTimeField column of a page is selected as ``to_char(col AT TIME ZONE 'UTC',
  'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`` on PostgreSQL, or as a string rewrite of the stored text
  on SQLite, so no datetime is parsed by the driver and none is formatted in Python;
* on PostgreSQL the version is selected as ``encode(int8send(version), 'base64')``;
* converters pass strings through, and the keyset cursor reads its stamp from the string.

Why: on PostgreSQL Django registers its own ``timestamptz`` loader (a Python subclass, so
psycopg's C loader is bypassed) and every timestamp is parsed by a regex and then formatted
back by ``format_datetime``; three timestamps a row made that the largest cost of a row.
"""

from __future__ import annotations

from django.db.models import CharField, DateTimeField, Func

from django_offline_sync import pagination, serializers

_PG_TS = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
_SQLITE_TS = ("CASE WHEN length({0}) = 19 THEN replace({0}, ' ', 'T') || '.000Z' "
              "ELSE substr(replace({0}, ' ', 'T'), 1, 23) || 'Z' END")


class WireTimestamp(Func):
    arity = 1
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return _PG_TS.format(sql), params

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return _SQLITE_TS.format(sql), tuple(params) * 3


class WireVersion(Func):
    arity = 1
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"encode(int8send({sql}), 'base64')", params


def _wire_queryset(qs):
    vendor = qs.db and __import__("django.db", fromlist=["connections"]).connections[qs.db].vendor
    if vendor not in ("postgresql", "sqlite"):
        return qs
    model = qs.model
    datetimes = {f.attname for f in model._meta.concrete_fields if isinstance(f, DateTimeField)}
    base = type(qs)

    class WireQuerySet(base):
        def values_list(self, *fields, **kwargs):
            if not fields or kwargs or any(not isinstance(f, str) for f in fields):
                return super().values_list(*fields, **kwargs)
            exprs = []
            for name in fields:
                if name in datetimes:
                    exprs.append(WireTimestamp(name))
                elif name == "version" and vendor == "postgresql":
                    exprs.append(WireVersion(name))
                else:
                    exprs.append(name)
            return super().values_list(*exprs)

    qs = qs._chain()
    qs.__class__ = WireQuerySet
    return qs


def _ms_of(value):
    if isinstance(value, str):  # "YYYY-MM-DDTHH:MM:SS.mmmZ"
        import datetime as dt

        return _orig_datetime_to_ms(dt.datetime.fromisoformat(value[:-1] + "+00:00"))
    return _orig_datetime_to_ms(value)


def _passthrough(conv):
    if conv is None:
        return None
    return lambda v: v if v is None or v.__class__ is str else conv(v)


_orig_datetime_to_ms = pagination.datetime_to_ms
_orig_paginate = pagination.ODataPagination.paginate
_orig_converter_for = serializers.converter_for


def apply_keyset() -> None:
    """Experiment 2: a sargable keyset condition for the v3 nextLink page.

    ``updated_at > t OR (updated_at = t AND id > i)`` is not an index range: PostgreSQL scans
    from the query's own lower bound and filters out every row already sent, so the k-th
    page of a pull reads k pages. Adding the implied ``updated_at >= t`` bounds the scan.
    """
    from django.db.models import Q

    from django_offline_sync import pagination as pg

    def _after(current, keyset):
        if keyset == pg.KEYSET_ID or current.updated_ms is None:
            return Q(pk__gt=current.last_id)
        at = pg.ms_to_datetime(current.updated_ms)
        return Q(updated_at__gte=at) & (Q(updated_at__gt=at) | Q(pk__gt=current.last_id))

    pg.ODataPagination._after = staticmethod(_after)


def apply() -> None:
    def paginate(self, queryset, request, **kwargs):
        return _orig_paginate(self, _wire_queryset(queryset), request, **kwargs)

    def converter_for(field):
        conv = _orig_converter_for(field)
        if field.name == "version" or isinstance(field, DateTimeField):
            return _passthrough(conv)
        return conv

    pagination.ODataPagination.paginate = paginate
    pagination.datetime_to_ms = _ms_of
    serializers.converter_for = converter_for
    serializers.representer_for.cache_clear()
