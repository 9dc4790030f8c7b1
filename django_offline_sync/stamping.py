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
from django.db.models import F, Value
from django.db.models.functions import Greatest

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
    from .models import SyncClock

    key = clock_key(model)
    clocks = SyncClock.objects.using(using).filter(table=key)
    now = now_ms()
    updated = clocks.update(last_ms=Greatest(Value(now + count - 1), F("last_ms") + count))
    if not updated:
        # First write to this table: create its clock row (a concurrent creator is fine:
        # ON CONFLICT DO NOTHING, then both go through the locking UPDATE).
        SyncClock.objects.using(using).bulk_create([SyncClock(table=key, last_ms=0)], ignore_conflicts=True)
        clocks.update(last_ms=Greatest(Value(now + count - 1), F("last_ms") + count))
    last = clocks.values_list("last_ms", flat=True).get()
    first = last - count + 1
    return [(ms, ms) for ms in range(first, last + 1)]


def lock(model: type, using: str = "default") -> None:
    """Take the table's clock lock without consuming a stamp.

    Bulk writers call this before choosing the rows they will stamp, so that the set of
    rows cannot change under them between the choice and the write.
    """
    if not uses_clock():
        return
    from .models import SyncClock

    key = clock_key(model)
    clocks = SyncClock.objects.using(using).filter(table=key)
    if not clocks.update(last_ms=F("last_ms")):
        SyncClock.objects.using(using).bulk_create([SyncClock(table=key, last_ms=0)], ignore_conflicts=True)
        clocks.update(last_ms=F("last_ms"))


def atomic_for(model: type, using: str):
    """The transaction a stamped write runs in (joins an outer one, no savepoint)."""
    return transaction.atomic(using=using, savepoint=False)
