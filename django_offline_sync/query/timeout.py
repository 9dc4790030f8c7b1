"""A time limit on the statements that read a list page and its count (``QUERY_TIMEOUT_MS``).

The static limits (length, depth, nodes, ``MAX_FILTER_STRING``) bound what one expression can
ask of one row; they cannot bound a table scan that is slow for its size, or a
``contains`` whose cost grows with the data. Each backend stops such a statement its own way:

* **PostgreSQL**: ``statement_timeout``, set with ``set_config(…, true)`` (``SET LOCAL``), so
  that it ends with its transaction; a lower timeout already in force (a role's or the
  session's) is kept. In autocommit mode with client-side binding (psycopg 3, Django's
  default) each statement is sent as ``SELECT set_config(…); <statement>`` in one message,
  which PostgreSQL runs as one implicit transaction: the setting covers that statement only,
  with no ``BEGIN``, no ``COMMIT`` and no round trip of its own (``carries_limit``); each
  statement's limit is what the block has left, so a page and its count share it. Inside a
  transaction, or with server-side binding, it is set once inside the transaction.
* **MariaDB**: each ``SELECT`` becomes ``SET STATEMENT max_statement_time=… FOR SELECT …``,
  again keeping a lower session value, with what the block has left.
* **MySQL**: each ``SELECT`` carries the ``/*+ MAX_EXECUTION_TIME(…) */`` optimizer hint, with
  what the block has left.
* **SQLite**, which has no statement timeout: a progress handler on the ``sqlite3``
  connection aborts the running statement once the block's deadline has passed, so the
  limit covers the page and the count together.

``time_limit`` installs the limit for the statements run inside it; ``is_timeout`` tells a
stopped statement from any other ``OperationalError``; ``carries_limit`` says whether
PostgreSQL's limit can go with each statement instead of a transaction. No Django settings
are read here.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from django.db import OperationalError, transaction

from ..backends import client_cursor, several_statements_per_message

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["SQLITE_PROGRESS_STEPS", "TimeLimit", "carries_limit", "is_read_conflict", "is_timeout", "time_limit"]

#: SQLite virtual-machine instructions between two deadline checks: a few rows, even when each
#: row calls an expensive string function (a check costs a few percent of a plain scan).
SQLITE_PROGRESS_STEPS = 100
_PG_QUERY_CANCELED = "57014"
_PG_SERIALIZATION_FAILURE = "40001"  # also what a hot standby cancels a conflicting query with
_MYSQL_TIMEOUTS = (1969, 3024)  # MariaDB ER_STATEMENT_TIMEOUT, MySQL ER_QUERY_TIMEOUT
_SELECT = re.compile(r"\s*(?:SELECT|WITH)\b", re.IGNORECASE)
_SELECT_KEYWORD = re.compile(r"^(\s*SELECT\b)", re.IGNORECASE)


class TimeLimit:
    """One ``time_limit`` block's state: whether SQLite's handler stopped a statement."""

    def __init__(self) -> None:
        self.fired = False


@contextmanager
def time_limit(
    connection: BaseDatabaseWrapper,
    timeout_ms: int,
    limit: TimeLimit,
    *,
    restore: bool = True,
    per_statement: bool = False,
) -> Iterator[None]:
    """Stop statements run in this block on ``connection`` after ``timeout_ms`` milliseconds.

    On PostgreSQL the caller must be inside a transaction (``transaction.atomic``): the
    setting is transaction-local. ``restore=False`` when that transaction ends right after
    the block (and the setting with it): the previous value is then not put back, one round
    trip fewer. ``per_statement=True`` outside any transaction, where ``carries_limit``
    holds: each statement then carries the limit in its own message, for a block that uses
    no named cursor (one declared outside a transaction outlives it, and runs unlimited).
    ``timeout_ms <= 0`` installs nothing.
    """
    if timeout_ms <= 0:
        yield
    elif connection.vendor == "postgresql" and per_statement and not connection.in_atomic_block:
        with connection.execute_wrapper(_postgresql_wrapper(connection, timeout_ms, limit)):
            yield
    elif connection.vendor == "postgresql":
        with _postgresql(connection, timeout_ms, restore):
            yield
    elif connection.vendor == "mysql":
        with connection.execute_wrapper(_mysql_wrapper(connection, timeout_ms, limit)):
            yield
    elif connection.vendor == "sqlite":
        with _sqlite(connection, timeout_ms, limit):
            yield
    else:  # pragma: no cover - other backends have no portable statement timeout
        yield


def is_timeout(connection: BaseDatabaseWrapper, exc: OperationalError, limit: TimeLimit) -> bool:
    """Whether ``exc`` is a statement the limit stopped (not a lost connection or a lock)."""
    if limit.fired:
        return True
    cause = exc.__cause__
    if connection.vendor == "postgresql":
        return (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) == _PG_QUERY_CANCELED
    if connection.vendor == "mysql":
        args = getattr(cause, "args", None) or exc.args
        return bool(args) and args[0] in _MYSQL_TIMEOUTS
    return False


def is_read_conflict(connection: BaseDatabaseWrapper, exc: OperationalError) -> bool:
    """Whether ``exc`` is a read PostgreSQL cancelled for a conflict, to be retried.

    A read-only statement under READ COMMITTED meets SQLSTATE 40001 only as a hot standby's
    recovery conflict (or under SERIALIZABLE, where the answer is the same: retry).
    """
    cause = exc.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return connection.vendor == "postgresql" and code == _PG_SERIALIZATION_FAILURE


def carries_limit(connection: BaseDatabaseWrapper) -> bool:
    """Whether each statement on PostgreSQL ``connection`` can carry the limit itself.

    That takes autocommit mode (a statement is its own transaction, ended with its message)
    and psycopg 3's client-side binding, Django's default: a statement with parameters bound
    by the server is a prepared statement, which cannot hold two commands. The caller checks
    that no transaction is open (``in_atomic_block``).

    Only at READ COMMITTED, Django's default: each statement then reads its own snapshot
    anyway, so a page and its ``$count`` gain nothing from sharing a transaction. A database
    set to REPEATABLE READ or SERIALIZABLE gets them in one transaction, one snapshot, as
    before.
    """
    if not several_statements_per_message(connection) or not connection.get_autocommit():
        return False
    from django.db.backends.postgresql.psycopg_any import IsolationLevel

    return getattr(connection, "isolation_level", None) in (None, IsolationLevel.READ_COMMITTED)


def _pg_limit_sql(timeout_ms: int) -> str:
    """``SELECT`` setting ``statement_timeout`` to ``timeout_ms`` for the current transaction,
    unless a lower one (not 0, which means none) is in force; its one column is the value
    before. ``current_setting`` shows the value with a unit (``0``, ``700ms``, ``5s``,
    ``1min``), which an ``interval`` reads; ``pg_settings`` would give bare milliseconds but
    lists every setting to find one (about 0.5 ms of the server's time per statement).
    ``OFFSET 0`` keeps the value read once, before ``set_config`` runs.
    """
    limit = int(timeout_ms)
    return (
        "SELECT s.v, set_config('statement_timeout', CASE WHEN s.v::interval BETWEEN "
        f"interval '1 millisecond' AND interval '{limit} milliseconds' THEN s.v ELSE '{limit}' END, true) "
        "FROM (SELECT current_setting('statement_timeout') AS v OFFSET 0) s"
    )


class _Budget:
    """The block's time, shared by its statements: each gets what the ones before it left.

    A statement timeout of its own would give a page and its ``$count`` the limit each, twice
    the limit for one request; SQLite's deadline covers the block whole, and so does this.
    """

    def __init__(self, timeout_ms: int, limit: TimeLimit) -> None:
        self.timeout_ms = timeout_ms
        self.deadline = time.monotonic() + timeout_ms / 1000
        self.limit = limit

    def left_ms(self) -> int:
        """Whole milliseconds left (at least 1); past the deadline, the block's timeout."""
        left = math.ceil((self.deadline - time.monotonic()) * 1000)
        if left < 1:
            self.limit.fired = True
            raise OperationalError(f"the {self.timeout_ms} ms time limit of this read has passed")
        return min(left, self.timeout_ms)


def _postgresql_wrapper(connection: BaseDatabaseWrapper, timeout_ms: int, limit: TimeLimit) -> Callable[..., Any]:
    """Each statement sent after the ``SELECT`` that sets the limit, in the same message.

    PostgreSQL runs the commands of one simple-query message as one implicit transaction, so
    the transaction-local setting applies to the statement and ends with it (a stopped
    statement ends it too); the statement's rows are the message's second result. Each
    statement's limit is the time the block has left (``_Budget``).
    """
    budget = _Budget(timeout_ms, limit)

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        limit_sql = _pg_limit_sql(budget.left_ms())
        cursor = context["cursor"].cursor
        if many or not isinstance(sql, str) or not client_cursor(cursor) or connection.in_atomic_block:
            # An executemany repeats its statement, a named cursor declares its one and a
            # composed statement (psycopg.sql) cannot be prefixed as text: such a statement
            # gets a transaction of its own, where the limit is set first. Within a
            # transaction opened inside the block, the limit is set in it and ends with it,
            # which is before the block's end.
            block = nullcontext() if connection.in_atomic_block else transaction.atomic(using=connection.alias)
            with block:
                with connection.cursor() as setter:
                    setter.cursor.execute(limit_sql)  # the driver's own cursor: not through this wrapper
                return execute(sql, params, many, context)
        result = execute(f"{limit_sql}; {sql}", params, many, context)
        cursor.nextset()  # past the setting's row, to the statement's own result
        return result

    return wrapper


@contextmanager
def _postgresql(connection: BaseDatabaseWrapper, timeout_ms: int, restore: bool) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(_pg_limit_sql(timeout_ms))
        row = cursor.fetchone()
    yield
    # Reached only when the block succeeded: a failed statement rolls the transaction (or the
    # caller's savepoint) back, and the setting with it. Within an outer transaction the
    # setting would outlive the savepoint, so put the previous value back.
    if restore and row is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [row[0]])


def _mysql_wrapper(connection: BaseDatabaseWrapper, timeout_ms: int, limit: TimeLimit) -> Callable[..., Any]:
    """Each ``SELECT`` limited to the time the block has left (``_Budget``)."""
    budget = _Budget(timeout_ms, limit)
    if getattr(connection, "mysql_is_mariadb", False):

        def limited(sql: str) -> str:
            if not _SELECT.match(sql):
                return sql
            seconds = f"{budget.left_ms() / 1000:.3f}"
            # A lower max_statement_time already in force (0 means none) is kept.
            return (
                f"SET STATEMENT max_statement_time = IF(@@max_statement_time > 0, "
                f"LEAST(@@max_statement_time, {seconds}), {seconds}) FOR {sql}"
            )

    else:

        def limited(sql: str) -> str:
            if not _SELECT_KEYWORD.match(sql):
                return sql
            return _SELECT_KEYWORD.sub(rf"\1 /*+ MAX_EXECUTION_TIME({budget.left_ms()}) */", sql, count=1)

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        return execute(limited(sql), params, many, context)

    return wrapper


@contextmanager
def _sqlite(connection: BaseDatabaseWrapper, timeout_ms: int, limit: TimeLimit) -> Iterator[None]:
    connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + timeout_ms / 1000

    def check() -> int:
        if time.monotonic() > deadline:
            limit.fired = True
            return 1  # non-zero aborts the statement: sqlite3.OperationalError("interrupted")
        return 0

    raw.set_progress_handler(check, SQLITE_PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, SQLITE_PROGRESS_STEPS)
