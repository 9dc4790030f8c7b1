"""Stamps for ``updated_at`` and ``version`` that make pulls gap-free.

With ``STAMPING = "clock"`` (the default) every write takes its stamp from a per-table clock
row, ``SyncClock``, in the same transaction as the write::

    UPDATE offline_sync_clock SET last_ms = GREATEST(now_ms + n - 1, last_ms + n) WHERE table = …

The UPDATE holds the clock row's lock until the writing transaction commits, so a second
writer of the same table waits and then receives a strictly larger stamp. Hence, within one
table:

* stamps are unique (at millisecond precision) and strictly increase in commit order;
* a reader whose snapshot contains a row stamped ``s`` also contains every row stamped
  below ``s`` (that row's transaction committed first).

A puller that has seen everything up to ``(updated_at, id)`` therefore can never later
meet a newly committed row below its cursor: no late commit, no tie, no gap. The cost is
that writers of one table serialize from their first stamp until commit; ``bench/`` measures
it. ``STAMPING = "now"`` restores the reference servers' behaviour (wall clock at save time),
which the stress test uses to show that it does lose rows.

The version is the stamp itself in clock mode (like SQL Server's ``rowversion``, a counter
that changes on every write), and a random 63-bit value in "now" mode.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time

from django.db import connections, transaction

from .settings import sync_settings

UTC = dt.timezone.utc


def now_ms() -> int:
    """Milliseconds since the epoch from the application clock."""
    return time.time_ns() // 1_000_000


def ms_to_datetime(ms: int) -> dt.datetime:
    """An aware UTC datetime for a millisecond stamp (exact, no float rounding)."""
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ms)


def datetime_to_ms(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def truncate_ms(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def clock_key(model: type) -> str:
    """Proxy models share their concrete table, and so their clock."""
    return model._meta.concrete_model._meta.db_table


def uses_clock() -> bool:
    return sync_settings.STAMPING == "clock"


def reserve(model: type, count: int = 1, using: str = "default") -> list[tuple[int, int]]:
    """Reserve ``count`` stamps for ``model``; returns ``[(updated_ms, version), …]``.

    Must run inside the writing transaction (callers wrap it in ``atomic``), so that in
    clock mode the clock row stays locked until that transaction commits.
    """
    if count <= 0:
        return []
    if not uses_clock():
        ms = now_ms()
        return [(ms, secrets.randbits(63)) for _ in range(count)]
    if not connections[using].in_atomic_block:  # pragma: no cover - a programming error
        raise RuntimeError("stamping.reserve() must run inside transaction.atomic()")
    key = clock_key(model)
    now = now_ms()
    last = _advance(using, key, now + count - 1, count)
    if last is None:
        # First write to this table: create its clock row (a concurrent creator is fine:
        # ON CONFLICT DO NOTHING, then both go through the locking UPDATE).
        from .models import SyncClock

        SyncClock.objects.using(using).bulk_create([SyncClock(table=key, last_ms=0)], ignore_conflicts=True)
        last = _advance(using, key, now + count - 1, count)
    assert last is not None
    first = last - count + 1
    return [(ms, ms) for ms in range(first, last + 1)]


def _advance(using: str, key: str, floor: int, step: int) -> int | None:
    """``last_ms = max(floor, last_ms + step)`` for ``key``; the new value, or None if no row.

    Hand-written SQL (two parameters, quoted names) because this statement runs on every
    write while the clock lock is held: ``UPDATE … RETURNING`` is one round trip where the
    ORM needs an UPDATE and a SELECT, and skips the ORM's per-call query compilation.
    """
    from .models import SyncClock

    connection = connections[using]
    qn = connection.ops.quote_name
    table, column, key_column = qn(SyncClock._meta.db_table), qn("last_ms"), qn("table")
    greatest = "MAX" if connection.vendor == "sqlite" else "GREATEST"
    update = f"UPDATE {table} SET {column} = {greatest}(%s, {column} + %s) WHERE {key_column} = %s"
    with connection.cursor() as cursor:
        if connection.vendor in ("postgresql", "sqlite"):
            cursor.execute(update + f" RETURNING {column}", [floor, step, key])
            row = cursor.fetchone()
            return None if row is None else int(row[0])
        cursor.execute(update, [floor, step, key])
        if cursor.rowcount == 0:
            return None
        cursor.execute(f"SELECT {column} FROM {table} WHERE {key_column} = %s", [key])
        return int(cursor.fetchone()[0])


def lock(model: type, using: str = "default") -> None:
    """Take the table's clock lock without consuming a stamp.

    Bulk writers call this before choosing the rows they will stamp, so that the set of
    rows cannot change under them between the choice and the write.
    """
    if not uses_clock():
        return
    key = clock_key(model)
    if _advance(using, key, 0, 0) is None:  # max(0, last + 0): a write that changes nothing
        from .models import SyncClock

        SyncClock.objects.using(using).bulk_create([SyncClock(table=key, last_ms=0)], ignore_conflicts=True)
        _advance(using, key, 0, 0)


def atomic(using: str) -> transaction.Atomic:
    """The transaction a stamped write runs in (joins an outer one, no savepoint)."""
    return transaction.atomic(using=using, savepoint=False)
