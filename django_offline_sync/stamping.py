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

import secrets
import time
from typing import Any, Final, NamedTuple

from django.core.signals import setting_changed
from django.db import connections, transaction

from .backends import client_cursor, several_statements_per_message
from .settings import get_settings
from .wire import MAX_MS, datetime_to_ms, format_timestamp, ms_to_datetime, truncate_ms

# ``MAX_MS``, ``datetime_to_ms``, ``ms_to_datetime`` and ``truncate_ms`` are re-exported from ``wire``.
__all__ = [
    "CLOCK_TABLE",
    "EVENTS_CHANNEL",
    "MAX_MS",
    "ClockExhausted",
    "Stamp",
    "advance_to",
    "atomic",
    "clock_key",
    "datetime_to_ms",
    "last_stamp_sql",
    "lock",
    "ms_to_datetime",
    "notifies",
    "notify_params",
    "notify_sql",
    "now_ms",
    "reads_with_lock",
    "reserve",
    "reserve_reading",
    "truncate_ms",
    "uses_clock",
]

#: The clock's table (``SyncClock._meta.db_table``); the SQL below names it directly so that
#: this module needs no model (``models`` imports this module, not the reverse).
CLOCK_TABLE: Final = "offline_sync_clock"

#: The PostgreSQL channel of change events (``events.CHANNEL``); a payload is
#: ``"<clock key> <stamp ms>"``.
EVENTS_CHANNEL: Final = "offline_sync"


class ClockExhausted(RuntimeError):
    """A table's clock has no later stamp left: its next one would be after ``wire.MAX_MS``.

    Never reached by writes that take the wall clock: only a clock moved to the end of time
    by hand (``offline_sync_clock.last_ms``) or by an import of a row stamped there (which
    ``import_sync_table`` refuses) gets here. The write is refused (a server error, its
    transaction rolled back); the message says what to fix.
    """

    def __init__(self, key: str, last: int) -> None:
        super().__init__(
            f"The sync clock of table {key!r} is at {last} ms, past {format_timestamp(ms_to_datetime(MAX_MS))}, "
            "the latest timestamp a row can have: no write to the table can be stamped. Its clock row "
            f"({CLOCK_TABLE}.last_ms) was moved there by hand or by importing a row stamped at the end of "
            "time: set it back to the table's real newest stamp, and correct the rows stamped that late."
        )
        self.key = key
        self.last = last


def _checked(key: str, last: int) -> int:
    """``last``, the clock's new value, if a stamp that late is a timestamp; else ``ClockExhausted``."""
    if last > MAX_MS:
        raise ClockExhausted(key, last)
    return last


class Stamp(NamedTuple):
    """One write's ``updated_at`` (milliseconds since the epoch) and ``version``."""

    ms: int
    version: int


def now_ms() -> int:
    """Milliseconds since the epoch from the application clock."""
    return time.time_ns() // 1_000_000


def clock_key(model: type) -> str:
    """Proxy models share their concrete table, and so their clock."""
    return str(model._meta.concrete_model._meta.db_table)  # type: ignore[attr-defined]


def uses_clock() -> bool:
    return get_settings().STAMPING == "clock"


def reserve(model: type, count: int = 1, using: str = "default") -> list[Stamp]:
    """Reserve ``count`` stamps for ``model``, in increasing order.

    Must run inside the writing transaction (callers wrap it in ``atomic``), so that in
    clock mode the clock row stays locked until that transaction commits.
    """
    if count <= 0:
        return []
    if not uses_clock():
        ms = now_ms()
        return [Stamp(ms, secrets.randbits(63)) for _ in range(count)]
    if not connections[using].in_atomic_block:  # pragma: no cover - a programming error
        raise RuntimeError("stamping.reserve() must run inside transaction.atomic()")
    key = clock_key(model)
    now = now_ms()
    notify = notifies(using)
    last = _advance(using, key, now + count - 1, count, notify=notify)
    if last is None:
        # First write to this table: create its clock row (a concurrent creator is fine:
        # the insert ignores conflicts, then both go through the locking UPDATE).
        _create_clock_row(using, key)
        last = _advance(using, key, now + count - 1, count, notify=notify)
    assert last is not None
    first = _checked(key, last) - count + 1
    return [Stamp(ms, ms) for ms in range(first, last + 1)]


def reads_with_lock(using: str) -> bool:
    """Whether a write on ``using`` can lock the clock and read its row in one message
    (``reserve_reading``): clock stamping, on a connection that sends several statements in
    one message (``backends.several_statements_per_message``). Known once per database
    until a setting changes: it is asked on every update and delete."""
    found = _READS_WITH_LOCK.get(using)
    if found is None:
        found = _READS_WITH_LOCK[using] = stamps_in_insert(using) and several_statements_per_message(
            connections[using]
        )
    return found


def stamps_in_insert(using: str) -> bool:
    """Whether an insert on ``using`` can take its stamp in the ``INSERT`` statement itself
    (``rowsql.insert_stamped_row``): clock stamping on PostgreSQL. Known once per database
    until a setting changes: it is asked on every insert."""
    found = _STAMPS_IN_INSERT.get(using)
    if found is None:
        found = _STAMPS_IN_INSERT[using] = uses_clock() and connections[using].vendor == "postgresql"
    return found


#: ``reads_with_lock`` and ``stamps_in_insert`` per database alias, forgotten when any setting changes.
_READS_WITH_LOCK: dict[str, bool] = {}
_STAMPS_IN_INSERT: dict[str, bool] = {}


def _forget(**kwargs: Any) -> None:
    _READS_WITH_LOCK.clear()
    _STAMPS_IN_INSERT.clear()


setting_changed.connect(_forget, weak=False)


def reserve_reading(model: type, using: str, sql: str, params: list[Any]) -> tuple[Stamp, Any] | None:
    """``reserve(model, 1, using)`` and the first row of ``sql`` read after it, in one message
    to the database, where ``reads_with_lock(using)``: ``(stamp, row or None)``, or None where
    the clock has no row yet (the caller then reserves and reads as usual).

    An update or a delete locks the clock and then reads the row it writes: two statements in
    a row on every such write, so where the driver allows two statements in one message they
    go together, the clock first, as when sent apart: one round trip fewer. The statements
    must run in a transaction that holds the lock until it commits (callers are in
    ``atomic``). ``docs/gap-free-pull.rst`` says why the row is still read after the lock.
    """
    connection = connections[using]
    if not connection.in_atomic_block:  # pragma: no cover - a programming error
        raise RuntimeError("stamping.reserve_reading() must run inside transaction.atomic()")
    key = clock_key(model)
    notify = notifies(using)
    update, select = _advance_sql(connection, notify)
    if select is not None:  # pragma: no cover - PostgreSQL has RETURNING
        return None
    with connection.cursor() as cursor:
        if not client_cursor(cursor.cursor):
            return None
        cursor.execute(f"{update}; {sql}", [*_advance_params(key, now_ms(), 1, notify), *params])
        clock = cursor.fetchone()
        if not cursor.nextset():  # pragma: no cover - the message holds two statements
            raise RuntimeError("stamping.reserve_reading(): the row's statement gave no result")
        row = cursor.fetchone()
    if clock is None:  # no clock row yet: nothing was locked, so the row read proves nothing
        return None
    ms = _checked(key, int(clock[0]))
    return Stamp(ms, ms), row


def notifies(using: str) -> bool:
    """Whether a stamp taken on ``using`` announces itself to the change events' listeners.

    On PostgreSQL with ``EVENTS`` on, the statement that takes a write's stamp also queues
    ``pg_notify(EVENTS_CHANNEL, "<clock key> <stamp>")``. PostgreSQL delivers a notification
    only when (and if) its transaction commits, so a listener learns of the write exactly as
    from a notification sent after the commit (``docs/events.rst``), without a statement, a
    round trip and a transaction of its own after every write. ``EVENTS_NOTIFY_IN_WRITE =
    False`` leaves it to ``events.notify_committed``, after the commit.
    """
    settings = get_settings()
    return settings.EVENTS and settings.EVENTS_NOTIFY_IN_WRITE and connections[using].vendor == "postgresql"


def _advance(using: str, key: str, floor: int, step: int, *, notify: bool = False) -> int | None:
    """``last_ms = max(floor, last_ms + step)`` for ``key``; the new value, or None if no row.

    Hand-written SQL (two parameters, quoted names) because this statement runs on every
    write while the clock lock is held: ``UPDATE … RETURNING`` is one round trip where the
    ORM needs an UPDATE and a SELECT, and skips the ORM's per-call query compilation.
    With ``notify`` (PostgreSQL only, see ``notifies``) it also queues the change event of
    the new value.
    """
    connection = connections[using]
    update, select = _advance_sql(connection, notify)
    with connection.cursor() as cursor:
        cursor.execute(update, _advance_params(key, floor, step, notify))
        if select is None:  # UPDATE … RETURNING
            row = cursor.fetchone()
            return None if row is None else int(row[0])
        if cursor.rowcount == 0:
            return None
        cursor.execute(select, [key])
        row = cursor.fetchone()
        return None if row is None else int(row[0])


def _advance_params(key: str, floor: int, step: int, notify: bool) -> list[Any]:
    """The parameters of ``_advance_sql``'s ``UPDATE``, in their order."""
    return [floor, step, key, *notify_params(key)] if notify else [floor, step, key]


#: (database backend class, notify) → ``_advance``'s statements (built once: they run on
#: every write).
_ADVANCE_SQL: dict[tuple[type, bool], tuple[str, str | None]] = {}


def _advance_sql(connection: Any, notify: bool) -> tuple[str, str | None]:
    """The clock's ``UPDATE`` (with ``RETURNING`` where the database has it) and, without it,
    the ``SELECT`` that reads the new value."""
    statements = _ADVANCE_SQL.get((type(connection), notify))
    if statements is None:
        qn = connection.ops.quote_name
        table, column, key_column = qn(CLOCK_TABLE), qn("last_ms"), qn("table")
        greatest = "MAX" if connection.vendor == "sqlite" else "GREATEST"
        update = f"UPDATE {table} SET {column} = {greatest}(%s, {column} + %s) WHERE {key_column} = %s"
        if notify:  # PostgreSQL: the payload is the key, a space and the new value
            statements = (update + f" RETURNING {column}, {notify_sql(column)}", None)
        elif connection.vendor in ("postgresql", "sqlite"):
            statements = (update + f" RETURNING {column}", None)
        else:
            statements = (update, last_stamp_sql(connection))
        _ADVANCE_SQL[(type(connection), notify)] = statements
    return statements


def notify_sql(stamp_sql: str) -> str:
    """``pg_notify`` of the change event whose stamp is ``stamp_sql``; its two parameters are
    ``notify_params``'s."""
    return f"pg_notify(%s, CAST(%s AS text) || CAST({stamp_sql} AS text))"


def notify_params(key: str) -> list[str]:
    """The parameters of ``notify_sql`` for clock ``key``: the channel and the payload's
    prefix (the key and a space; the stamp follows)."""
    return [EVENTS_CHANNEL, f"{key} "]


def last_stamp_sql(connection: Any) -> str:
    """``SELECT`` of a table's last stamp from its clock row; one parameter, the clock key."""
    qn = connection.ops.quote_name
    return f"SELECT {qn('last_ms')} FROM {qn(CLOCK_TABLE)} WHERE {qn('table')} = %s"


def _create_clock_row(using: str, key: str) -> None:
    """Insert ``key``'s clock row at 0 unless a concurrent writer already did."""
    connection = connections[using]
    qn = connection.ops.quote_name
    insert = f"INTO {qn(CLOCK_TABLE)} ({qn('table')}, {qn('last_ms')}) VALUES (%s, 0)"
    if connection.vendor == "mysql":
        sql = f"INSERT IGNORE {insert}"
    else:  # PostgreSQL, SQLite ≥ 3.24
        sql = f"INSERT {insert} ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])


def lock(model: type, using: str = "default") -> None:
    """Take the table's clock lock without consuming a stamp.

    Bulk writers call this before choosing the rows they will stamp, so that the set of
    rows cannot change under them between the choice and the write.
    """
    if not uses_clock():
        return
    key = clock_key(model)
    if _advance(using, key, 0, 0) is None:  # max(0, last + 0): a write that changes nothing
        _create_clock_row(using, key)
        _advance(using, key, 0, 0)


def advance_to(model: type, ms: int, using: str = "default") -> int:
    """Lock the table's clock, move it forward to at least ``ms``, and return its value.

    For writers that bring their own timestamps (``import_sync_table`` keeps the
    ``updatedAt`` another server gave a row): every stamp handed out afterwards is later.
    ``advance_to(model, 0)`` only locks and reads. Must run inside the writing transaction.
    """
    key = clock_key(model)
    last = _advance(using, key, ms, 0)  # max(ms, last + 0)
    if last is None:
        _create_clock_row(using, key)
        last = _advance(using, key, ms, 0)
    assert last is not None
    return _checked(key, last)


def atomic(using: str) -> transaction.Atomic:
    """The transaction a stamped write runs in (joins an outer one, no savepoint)."""
    return transaction.atomic(using=using, savepoint=False)
