"""A time limit on the statements that read a list page and its count (``QUERY_TIMEOUT_MS``).

The static limits (length, depth, nodes, ``MAX_FILTER_STRING``) bound what one expression can
ask of one row; they cannot bound a table scan that is slow for its size, or a
``contains`` whose cost grows with the data. Each backend stops such a statement its own way:

* **PostgreSQL**: ``statement_timeout``, set with ``set_config(…, true)`` (``SET LOCAL``)
  inside the caller's transaction, so it ends with it; a lower timeout already in force
  (a role's or the session's) is kept.
* **MariaDB**: each ``SELECT`` becomes ``SET STATEMENT max_statement_time=… FOR SELECT …``,
  again keeping a lower session value.
* **MySQL**: each ``SELECT`` carries the ``/*+ MAX_EXECUTION_TIME(…) */`` optimizer hint.
* **SQLite**, which has no statement timeout: a progress handler on the ``sqlite3``
  connection aborts the running statement once the block's deadline has passed, so the
  limit covers the page and the count together.

``time_limit`` installs the limit for the statements run inside it; ``is_timeout`` tells a
stopped statement from any other ``OperationalError``. No Django settings are read here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import OperationalError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["SQLITE_PROGRESS_STEPS", "TimeLimit", "is_read_conflict", "is_timeout", "time_limit"]

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
    connection: BaseDatabaseWrapper, timeout_ms: int, limit: TimeLimit, *, restore: bool = True
) -> Iterator[None]:
    """Stop statements run in this block on ``connection`` after ``timeout_ms`` milliseconds.

    On PostgreSQL the caller must be inside a transaction (``transaction.atomic``): the
    setting is transaction-local. ``restore=False`` when that transaction ends right after
    the block (and the setting with it): the previous value is then not put back, one round
    trip fewer. ``timeout_ms <= 0`` installs nothing.
    """
    if timeout_ms <= 0:
        yield
    elif connection.vendor == "postgresql":
        with _postgresql(connection, timeout_ms, restore):
            yield
    elif connection.vendor == "mysql":
        with connection.execute_wrapper(_mysql_wrapper(connection, timeout_ms)):
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


@contextmanager
def _postgresql(connection: BaseDatabaseWrapper, timeout_ms: int, restore: bool) -> Iterator[None]:
    with connection.cursor() as cursor:
        # pg_settings gives the value in milliseconds; 0 means no timeout.
        cursor.execute(
            "SELECT s.setting, set_config('statement_timeout', "
            "CASE WHEN s.setting::bigint BETWEEN 1 AND %s THEN s.setting ELSE %s END, true) "
            "FROM pg_settings s WHERE s.name = 'statement_timeout'",
            [timeout_ms, str(timeout_ms)],
        )
        row = cursor.fetchone()
    yield
    # Reached only when the block succeeded: a failed statement rolls the transaction (or the
    # caller's savepoint) back, and the setting with it. Within an outer transaction the
    # setting would outlive the savepoint, so put the previous value back.
    if restore and row is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [row[0]])


def _mysql_wrapper(connection: BaseDatabaseWrapper, timeout_ms: int) -> Callable[..., Any]:
    if getattr(connection, "mysql_is_mariadb", False):
        seconds = f"{timeout_ms / 1000:.3f}"
        # A lower max_statement_time already in force (0 means none) is kept.
        prefix = (
            f"SET STATEMENT max_statement_time = IF(@@max_statement_time > 0, "
            f"LEAST(@@max_statement_time, {seconds}), {seconds}) FOR "
        )

        def limited(sql: str) -> str:
            return prefix + sql if _SELECT.match(sql) else sql

    else:
        hint = rf"\1 /*+ MAX_EXECUTION_TIME({int(timeout_ms)}) */"

        def limited(sql: str) -> str:
            return _SELECT_KEYWORD.sub(hint, sql, count=1)

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
