"""Pulls from PostgreSQL streaming replicas: a Django database router for the sync tables.

Install it and name the replicas' aliases::

    DATABASES = {"default": {...primary...}, "replica1": {...}, "replica2": {...}}
    DATABASE_ROUTERS = ["django_offline_sync.replicas.ReplicaRouter"]
    OFFLINE_SYNC = {"READ_DATABASES": ["replica1", "replica2"]}

Reads of ``SyncModel`` tables (pull lists, ``$count``, reads by id) then go to one of the
replicas, chosen once per request so that a list page and its count come from one server.
Everything else goes to the primary (``ReplicaRouter.primary``, the ``default`` database):

* writes, and the clock (``stamping``), whose row lock orders the commits;
* every read a write makes: the writer (``writer.py``) loads the row it is about to change,
  and the entity a 409/412 answers with, from the database it writes to, under the table's
  lock, never from a replica that may lag;
* any read made while the primary has a transaction open (``transaction.atomic`` on it,
  or ``ATOMIC_REQUESTS``): such code reads what it is about to write;
* tables of other apps (users, tokens, sessions): authentication must see a password change
  or a revoked token at once.

Why a replica may serve pulls without losing rows: stamps are commit-ordered (a row committed
later has a larger stamp, ``docs/gap-free-pull.rst``) and a streaming replica shows a prefix
of the primary's commit order, so whatever a replica lacks is stamped above everything it
shows. A cursor or delta token taken from one replica is therefore a valid position on any
other, and on the primary: what lags arrives in a later pull. ``docs/scaling.rst`` has the
argument, read-your-writes, and the deployment advice.

One thing a position does not carry is how far the database that served the page had got. A
next link followed on a database *behind* that one (page 1 from the primary, page 2 from a
lagging replica, through a load balancer without affinity) would find a row that was updated
meanwhile at its old place, below the cursor, and at its new place nowhere: the pull would end
without a row that every server showed before the pull began. So a cursor also carries the
table's clock as the serving database showed it (``watermark_column``, in the page's own
statement) and the next page is read from a database that shows at least that
(``database_at``), else from the primary: the pages of one pull then come from ever newer
states, as on a single server.
"""

from __future__ import annotations

import random
from typing import Any

from asgiref.local import Local
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL

from .settings import get_settings
from .stamping import clock_key, last_stamp_sql, uses_clock
from .wire_sql import scalar_text_column

__all__ = [
    "ReplicaRouter",
    "at_watermark",
    "database_at",
    "high_water",
    "reads_replica",
    "watermark",
    "watermark_column",
]

# The replica of the current request: per thread, and per task under ASGI (asgiref's Local, as
# Django's own connections use).
_chosen = Local()


def _forget_choice(**kwargs: Any) -> None:
    _chosen.alias = None


request_started.connect(_forget_choice)
request_finished.connect(_forget_choice)


def _is_sync_model(model: type[Model]) -> bool:
    from .models import SyncModel  # models imports the settings chain; import on use

    return issubclass(model, SyncModel)


class ReplicaRouter:
    """Sync-table reads to ``OFFLINE_SYNC["READ_DATABASES"]``, the rest to ``primary``.

    With ``READ_DATABASES`` empty (the default) it routes everything to ``primary``, so it can
    stay installed on a site without replicas. Subclass and set ``primary`` when the sync
    tables live in another database than ``default``; override ``choose`` to pick replicas
    another way (by load, by region).
    """

    #: The database the replicas follow: every write, lock and clock goes here.
    primary: str = DEFAULT_DB_ALIAS

    def choose(self, replicas: tuple[str, ...]) -> str:
        """The replica of the current request: one at random, kept until the request ends.

        Random spreads the load without shared state between app servers. Keeping one per
        request makes a page, its ``$count`` and its next-link cursor come from one server.
        Outside a request (a shell, a task queue) the choice is kept by the thread until a
        request starts on it.
        """
        alias: str | None = getattr(_chosen, "alias", None)
        if alias is None or alias not in replicas:
            alias = _chosen.alias = random.choice(replicas)
        return alias

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if not _is_sync_model(model):
            return None
        replicas = get_settings().READ_DATABASES
        if not replicas or connections[self.primary].in_atomic_block:
            return self.primary
        return self.choose(replicas)

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        # Explicit, not None: Django's fallback is the database an instance was read from,
        # which for a row read from a replica would be the replica.
        return self.primary if _is_sync_model(model) else None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # A replica holds the primary's rows: objects read from either may be related.
        pool = {self.primary, *get_settings().READ_DATABASES}
        if obj1._state.db in pool and obj2._state.db in pool:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        # A replica is read-only; it receives the schema by replication.
        return False if db in get_settings().READ_DATABASES else None


# -- the database a next page may be read from -------------------------------------------------


def high_water(model: type[Model], using: str) -> int | None:
    """The last stamp of ``model``'s table as database ``using`` shows it (its clock row).

    On a replica that is how far it has replayed this table: it shows every write stamped at
    or below it (stamps are commit-ordered) and none above. ``None`` before the table's first
    write.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(last_stamp_sql(connection), [clock_key(model)])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def watermark(model: type[Model], using: str) -> int | None:
    """The ``watermark`` of a cursor for a page of ``model`` just read from database ``using``.

    Read after the page, so it is at or above the state the page was read from; too high is
    safe (the next page may go to the primary when a replica would have done), too low is not.
    ``None`` with ``STAMPING = "now"``, which promises no order to keep.
    """
    if not uses_clock():
        return None
    return high_water(model, using)


def watermark_column(model: type[Model], using: str) -> RawSQL | None:
    """``watermark`` as one more column of a page's own statement (``None`` with
    ``STAMPING = "now"``).

    An uncorrelated scalar subquery on the clock's primary key, run once per statement in the
    statement's snapshot: exactly the state the page was read from, which is what a cursor
    must promise (no lower); and no round trip of its own on every page with a next link.
    Raw SQL, as ``retention.horizon_column``, and typed as text for the same reason: an
    integer output field gives every row an ``int()`` converter, and one converter makes
    Django copy each row of the page; the one value used is converted by the caller.
    """
    if not uses_clock():
        return None
    return scalar_text_column(last_stamp_sql(connections[using]), clock_key(model))


def reads_replica(model: type[Model], using: str) -> bool:
    """Whether reading ``model`` from ``using`` reads another database than its writes go to."""
    return bool(using != router.db_for_write(model))


def database_at(model: type[Model], using: str, mark: int | None) -> str:
    """``using`` if it shows ``model``'s clock at ``mark`` or later, else the write database
    (the primary), which shows everything any replica does.

    The check reads the replica before the page does, and a replica only moves forward, so the
    page's state holds every write of the state that issued ``mark``. A replica that has not
    replayed the table's clock row yet shows the clock at 0: it answers a pull from the epoch
    (a device's first, ``updatedAt ge 1970-01-01``), as every replica does. Sending that pull
    to the primary instead would make the replica behind the device's token from its first
    page on, and mixing the two databases within a pull is what ``docs/scaling.rst``
    ("Replicas and next links") says is not exact.
    """
    if mark is None or not uses_clock():
        return using
    primary: str = router.db_for_write(model)
    if using == primary:
        return using
    shown = high_water(model, using) or 0
    return using if shown >= mark else primary


def at_watermark(queryset: QuerySet[Any], mark: int | None) -> QuerySet[Any]:
    """``queryset``, or the same query on the primary when its database is behind ``mark``
    (``database_at``)."""
    db = database_at(queryset.model, queryset.db, mark)
    return queryset if db == queryset.db else queryset.using(db)
