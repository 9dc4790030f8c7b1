"""Tombstone retention: purge old soft-deleted rows, and the resync horizon it leaves behind.

A tombstone (a soft-deleted row) is how a delete reaches devices: they pull it and drop their
copy. Kept for ever, tombstones make a busy table grow without end; purged, they can no
longer reach a device that was offline when they were written. ``purge_tombstones`` removes
the tombstones older than a retention and records, per table, the **horizon**: the newest
``updated_at`` of a tombstone it removed. A pull whose delta boundary (the ``updatedAt gt/ge
T`` its ``$filter`` starts from) is not past the horizon may have missed a purged tombstone;
its list responses carry ``X-Offline-Sync-Horizon`` (``docs/protocol.rst`` §13.1) and the
Python client answers with a full resync of the table. ``docs/fleet.rst`` is the operator's
guide.

Safe under concurrent syncing, by construction:

* each batch is its own short transaction (no long locks, no long snapshot);
* the horizon is committed *before* the batch's tombstones are deleted, and a list request
  reads the horizon in its page's own statement (``horizon_column``), or *after* its page
  where that statement returned no row: a puller that did not see a purged tombstone always
  sees a horizon that covers it (below);
* the DELETE re-checks ``deleted`` and ``updated_at`` itself: a tombstone undeleted or
  written since it was chosen has a new stamp and stays;
* a tombstone another row still references (a foreign key) is kept, never cascaded.

Why one statement is as safe as a read after the page: a statement reads one snapshot
(PostgreSQL and MySQL/MariaDB take one per statement, subqueries included; SQLite holds one
read transaction for the whole statement). A purge commits the horizon in one transaction and
deletes the tombstones in a later one, so every snapshot that lacks a purged tombstone already
holds the horizon that covers it. The page and its horizon therefore agree, exactly as a
horizon read after the page would (that read sees a snapshot at least as new as the page's).
It saves the page a round trip and a query of its own: every delta pull page has a boundary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from django.apps import apps
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models.expressions import RawSQL
from django.http.response import HttpResponseBase
from django.utils import timezone

from .models import SyncHorizon, SyncModel
from .query.nodes import Node
from .query.pull import updated_at_term
from .stamping import clock_key
from .wire import format_timestamp
from .wire_sql import scalar_text_column

__all__ = [
    "HORIZON_HEADER",
    "PurgeReport",
    "delta_boundary",
    "horizon_column",
    "horizon_of",
    "horizon_of_pull",
    "needs_resync",
    "purge_tombstones",
    "sync_models",
]

#: The response header naming the horizon (a wire timestamp), ``docs/protocol.rst`` §13.1.
HORIZON_HEADER: Final = "X-Offline-Sync-Horizon"

#: Rows deleted per transaction: small enough that a batch holds its locks for milliseconds.
DEFAULT_BATCH_SIZE: Final = 500


@dataclass
class PurgeReport:
    """What ``purge_tombstones`` did (or, with ``dry_run``, would do) to one table."""

    table: str
    label: str
    purged: int = 0
    kept_referenced: int = 0
    horizon: dt.datetime | None = None
    dry_run: bool = False


def sync_models() -> list[type[SyncModel]]:
    """Every concrete synced table, once (proxies share their concrete model's table)."""
    found: dict[str, type[SyncModel]] = {}
    for model in apps.get_models():
        if issubclass(model, SyncModel) and not model._meta.proxy and model._meta.managed:
            found.setdefault(clock_key(model), model)
    return sorted(found.values(), key=lambda m: m._meta.label_lower)


def _reverse_relations(model: type[SyncModel]) -> list[tuple[type[models.Model], str]]:
    """(model, column) of every foreign key pointing at ``model`` (many-to-many tables too)."""
    relations: list[tuple[type[models.Model], str]] = []
    for field in model._meta.get_fields(include_hidden=True):
        if field.auto_created and not field.concrete and (field.one_to_many or field.one_to_one):
            related, remote = field.related_model, field.remote_field  # the ForeignKey on the other model
            if isinstance(related, type) and isinstance(remote, models.ForeignKey):  # one-to-one too
                relations.append((related, str(remote.attname)))
    return relations


def _referenced(model: type[SyncModel], pks: list[Any], using: str) -> set[Any]:
    """The ``pks`` some other row still points at: purging them would cascade or fail."""
    found: set[Any] = set()
    for related, column in _reverse_relations(model):
        found.update(
            related._base_manager.using(using).filter(**{f"{column}__in": pks}).values_list(column, flat=True)
        )
    return found


def _advance_horizon(key: str, newest: dt.datetime, using: str) -> dt.datetime:
    """Raise ``key``'s horizon to ``newest`` (never lower it) in a transaction of its own."""
    with transaction.atomic(using=using):
        row, _ = SyncHorizon.objects.using(using).select_for_update().get_or_create(
            table=key, defaults={"horizon": newest}
        )
        if newest > row.horizon:
            row.horizon = newest
            row.save(using=using, update_fields=["horizon"])
    return row.horizon


def purge_tombstones(
    model: type[SyncModel],
    older_than: dt.timedelta,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: dt.datetime | None = None,
) -> PurgeReport:
    """Remove ``model``'s tombstones last written more than ``older_than`` ago.

    Batches of ``batch_size`` rows, oldest first, each in its own transaction after the
    horizon that covers it is committed (see the module docstring for why that order).
    """
    using = router.db_for_write(model)
    cutoff = (now or timezone.now()) - older_than
    report = PurgeReport(clock_key(model), model._meta.label, dry_run=dry_run)
    candidates = model.all_objects.using(using).filter(deleted=True, updated_at__lt=cutoff)
    if dry_run:
        report.purged = candidates.count()
        newest = candidates.aggregate(newest=models.Max("updated_at"))["newest"]
        report.horizon = horizon_of(model, using=using)
        if newest is not None and (report.horizon is None or newest > report.horizon):
            report.horizon = newest
        return report
    position: models.Q = models.Q()  # keyset: after the last row looked at, so kept rows are passed once
    while True:
        oldest_first = candidates.filter(position).order_by("updated_at", "pk")
        batch = list(oldest_first.values_list("pk", "updated_at")[:batch_size])
        if not batch:
            break
        last_pk, last_at = batch[-1]
        position = models.Q(updated_at__gt=last_at) | models.Q(updated_at=last_at, pk__gt=last_pk)
        referenced = _referenced(model, [pk for pk, _ in batch], using)
        if referenced:
            report.kept_referenced += len(referenced)
            batch = [(pk, at) for pk, at in batch if pk not in referenced]
            if not batch:
                continue
        pks = [pk for pk, _ in batch]
        report.horizon = _advance_horizon(report.table, max(at for _, at in batch), using)
        try:
            with transaction.atomic(using=using):
                # Re-checked here: a row undeleted or rewritten since it was chosen has a new stamp.
                gone = model.all_objects.using(using).filter(pk__in=pks, deleted=True, updated_at__lt=cutoff)
                count: int = gone._raw_delete(using)  # no cascade, no soft delete
        except IntegrityError:
            # A row referencing one of these was written meanwhile (the foreign key refused
            # the delete): keep the whole batch, the next run will look again.
            report.kept_referenced += len(pks)
            continue
        if count:
            report.purged += count
            SyncHorizon.objects.using(using).filter(table=report.table).update(
                purged=models.F("purged") + count, purged_at=timezone.now()
            )
    return report


def horizon_of(model: type[SyncModel], *, using: str | None = None) -> dt.datetime | None:
    """``model``'s horizon, or None if none of its tombstones was ever purged."""
    db = using or router.db_for_read(model)
    found: dt.datetime | None = (
        SyncHorizon.objects.using(db).filter(table=clock_key(model)).values_list("horizon", flat=True).first()
    )
    return found


def delta_boundary(node: Node | None) -> tuple[dt.datetime, bool] | None:
    """``(T, inclusive)`` when a ``$filter`` starts a delta pull: ``… and updatedAt gt/ge T``.

    Every client ANDs its own filter in front of the boundary (v1/v2 ``ge``, v3 ``gt``,
    ``docs/protocol.rst`` §4), so only the top-level conjuncts are looked at.
    """
    found = updated_at_term(node, ("gt", "ge"), last=False)
    return None if found is None else (found[0], found[1] == "ge")


def needs_resync(boundary: tuple[dt.datetime, bool] | None, horizon: dt.datetime | None) -> bool:
    """Whether a pull from ``boundary`` may have missed a tombstone purged up to ``horizon``.

    ``updatedAt gt T`` has seen every row stamped up to ``T``: it missed nothing if the
    horizon is at or before ``T``. ``ge T`` may not have seen all of ``T`` itself.
    """
    if boundary is None or horizon is None:
        return False
    at, inclusive = boundary
    return horizon >= at if inclusive else horizon > at


def horizon_of_pull(
    response: HttpResponseBase,
    model: type[SyncModel],
    node: Node | None,
    using: str,
    *,
    read: tuple[Any] | None = None,
) -> None:
    """Add ``X-Offline-Sync-Horizon`` to a list response whose pull may have missed a purge.

    Only a delta pull (a ``$filter`` with a boundary) is looked at. ``read`` is the
    ``horizon_column`` value as the page's own statement returned it, in a 1-tuple; without
    it (the page had no row, or a custom paginator left the column out) the horizon costs one
    primary-key read here, after the page.
    """
    boundary = delta_boundary(node)
    if boundary is None:
        return
    horizon = _from_db(read[0], using) if read is not None else horizon_of(model, using=using)
    if needs_resync(boundary, horizon):
        assert horizon is not None
        response[HORIZON_HEADER] = format_timestamp(horizon)


def horizon_column(model: type[SyncModel], using: str) -> RawSQL:
    """``model``'s horizon (NULL if none) as one more column of a pull page's statement.

    An uncorrelated scalar subquery on ``SyncHorizon``'s primary key: every database runs it
    once per statement, in the statement's snapshot (the module docstring says why that is
    safe). Raw SQL rather than a ``Subquery``: it is compiled on every pull page. Typed as
    text so that Django converts no row's value: one row's is converted, by ``_from_db``.
    """
    quote = connections[using].ops.quote_name
    sql = f"SELECT {quote('horizon')} FROM {quote(SyncHorizon._meta.db_table)} WHERE {quote('table')} = %s"
    return scalar_text_column(sql, clock_key(model))


#: What ``_from_db`` asks each backend for its ``DateTimeField`` converters with (stateless).
_DATETIME_VALUE: Final = RawSQL("", (), output_field=models.DateTimeField())


def _from_db(value: Any, using: str) -> dt.datetime | None:
    """A ``horizon`` column value as the driver returned it, converted as Django converts a
    ``DateTimeField`` (SQLite text, MySQL's naive UTC, PostgreSQL's aware datetime)."""
    if value is None:
        return None
    connection = connections[using]
    expression = _DATETIME_VALUE
    for convert in connection.ops.get_db_converters(expression) + expression.get_db_converters(connection):
        value = convert(value, expression, connection)
    horizon: dt.datetime = value
    return horizon


_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> dt.timedelta:
    """A command line's age: ``90d``, ``12h``, ``30m``, ``45s``, ``2w``, plain seconds, or any
    form Django's ``parse_duration`` reads (``3 00:00:00``, ISO 8601 ``P3D``). ``ValueError``
    when it is none of them or not positive."""
    from django.utils.dateparse import parse_duration

    value = text.strip().lower()
    age: dt.timedelta | None
    try:
        if value[-1:] in _UNITS and value[:-1].isdigit():
            age = dt.timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])
        elif value.isdigit():
            age = dt.timedelta(seconds=int(value))
        else:
            age = parse_duration(text.strip())
    except OverflowError as exc:
        raise ValueError(f"{text!r} is too long an age") from exc
    if age is None:
        raise ValueError(f"{text!r} is not an age; write e.g. 90d, 12h, 30m or 3600")
    if age <= dt.timedelta(0):
        raise ValueError(f"{text!r}: the age must be positive")
    return age


def command_age(older_than: str | None, setting: str, what: str) -> dt.timedelta:
    """The age a purge command removes past: ``--older-than`` when given, else the retention
    setting ``OFFLINE_SYNC[setting]``. ``CommandError`` (which the management command prints)
    when the argument is not an age or the setting is off."""
    from django.core.management.base import CommandError

    from .settings import get_settings

    if older_than is not None:
        try:
            return parse_age(older_than)
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from exc
    retention: dt.timedelta | None = getattr(get_settings(), setting)
    if retention is None:
        raise CommandError(f"{what} retention is off: set OFFLINE_SYNC[{setting!r}] or pass --older-than.")
    return retention


def find_models(names: Iterable[str]) -> list[type[SyncModel]]:
    """The synced tables named by label (``tasks.Task``), model name or table name; ``LookupError``
    naming the first unknown one."""
    models_ = sync_models()
    chosen: list[type[SyncModel]] = []
    for name in names:
        wanted = name.strip().lower()
        match = next(
            (
                m
                for m in models_
                if wanted in (m._meta.label_lower, m._meta.model_name, clock_key(m).lower())
            ),
            None,
        )
        if match is None:
            known = ", ".join(m._meta.label for m in models_) or "none"
            raise LookupError(f"No synced table {name!r}. Synced tables: {known}.")
        if match not in chosen:
            chosen.append(match)
    return chosen
