"""Django's SQLite backend, with writers from every process queueing in the kernel.

``ENGINE = "django_offline_sync.backends.sqlite3"`` with ``transaction_mode`` ``IMMEDIATE``
(or ``EXCLUSIVE``). SQLite admits one writer at a time, and a writer that finds the lock
taken waits in SQLite's busy handler, which sleeps in steps of 1, 2, 5, 10 … up to 100 ms and
retries: with two server processes writing, a write often slept tens of milliseconds after
the lock had come free, and throughput fell with it (``docs/benchmarks.rst``). Here each
transaction first takes an exclusive ``flock`` on a lock file beside the database
(``<name>-writer.lock``), and only then runs ``BEGIN IMMEDIATE``; it lets go once the
transaction commits or rolls back. A waiting writer is woken by the kernel the moment the
previous one is done, in any process or thread (each connection has its own lock file
descriptor).

Nothing else changes: SQLite's own lock still decides (the flock only orders the queue in
front of it), reads never take the flock, and a writer that outwaits the connection's
``timeout`` option goes on to ``BEGIN`` and SQLite's own handling, as without this backend.
In-memory databases, the other transaction modes and platforms without ``fcntl`` behave as
Django's backend does.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from django.db.backends.sqlite3 import base

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["DatabaseWrapper"]

#: Transaction modes whose BEGIN takes SQLite's write lock, which the queue then stands for.
QUEUED_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})
# Polling the lock (with LOCK_NB) rather than blocking on it keeps the connection's timeout
# honoured (a blocking flock cannot time out); the first retry comes after 50 µs and the
# interval stays below 1 ms, against SQLite's sleeps of up to 100 ms.
_FIRST_WAIT = 0.00005
_MAX_WAIT = 0.001


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_lock_fd: int | None = None
    _writer_lock_held: bool = False

    def get_new_connection(self, conn_params: Any) -> Any:
        """Django's connection, retried while SQLite says the database is locked.

        Opening can meet another process's lock before any busy handler applies (the
        ``init_command``'s ``PRAGMA journal_mode=WAL`` while a writer holds the database was
        seen answering "database is locked" at once). A new connection is one a request is
        waiting on, so it retries, up to the connection's ``timeout`` as a transaction would.
        """
        deadline = time.monotonic() + float(conn_params.get("timeout", 5.0))
        wait = _FIRST_WAIT
        while True:
            try:
                return super().get_new_connection(conn_params)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(wait)
            wait = min(wait * 2, 0.01)

    def _writer_lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        mode = getattr(self, "transaction_mode", None)  # set by Django's get_connection_params()
        if fcntl is None or mode not in QUEUED_MODES or self.is_in_memory_db():
            return None
        if name.startswith("file:"):  # a URI filename: the path part, without the query
            name = name[len("file:") :].split("?", 1)[0]
        return f"{name}-writer.lock"

    def _acquire_writer_lock(self) -> None:
        if self._writer_lock_fd is None:
            path = self._writer_lock_path()
            if path is None:
                return
            self._writer_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5.0))
        deadline = time.monotonic() + timeout
        wait = _FIRST_WAIT
        while True:
            try:
                fcntl.flock(self._writer_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return  # SQLite's busy handler decides from here
                time.sleep(wait)
                wait = min(wait * 2, _MAX_WAIT)
            else:
                self._writer_lock_held = True
                return

    def _release_writer_lock(self) -> None:
        if self._writer_lock_held:
            self._writer_lock_held = False
            assert self._writer_lock_fd is not None
            fcntl.flock(self._writer_lock_fd, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_writer_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # Django's, not in the stubs
        except BaseException:
            self._release_writer_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]  # Django's, not in the stubs
        finally:
            self._release_writer_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]  # Django's, not in the stubs
        finally:
            self._release_writer_lock()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]  # Django's, not in the stubs
        finally:
            self._release_writer_lock()
            if self._writer_lock_fd is not None:
                os.close(self._writer_lock_fd)
                self._writer_lock_fd = None
