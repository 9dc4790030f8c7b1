"""``django_offline_sync.backends.sqlite3``: writers queue on a lock file, in threads and processes.

Each test opens its own SQLite file through a ``ConnectionHandler`` of its own (one
connection per thread, as Django's), so the suite's database is not involved.
"""

import fcntl
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

ENGINE = "django_offline_sync.backends.sqlite3"


def handler(path: Path, mode: str | None = "IMMEDIATE", timeout: float = 5.0) -> ConnectionHandler:
    options = {"timeout": timeout, "init_command": "PRAGMA journal_mode=WAL"}
    if mode:
        options["transaction_mode"] = mode
    return ConnectionHandler({"default": {"ENGINE": ENGINE, "NAME": str(path), "OPTIONS": options}})


def begin(connection) -> None:
    """What ``transaction.atomic`` does on entering the outermost block."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def end(connection, commit: bool = True) -> None:
    connection.commit() if commit else connection.rollback()
    connection.set_autocommit(True)


@pytest.fixture(autouse=True)
def own_databases(django_db_blocker):
    # These connections are to files of the tests' own, not to the suite's test database.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def db_file(tmp_path):
    path = tmp_path / "site.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter VALUES (0)")
    return path


def count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT n FROM counter").fetchone()[0]


def test_a_second_writer_waits_for_the_first_to_commit(db_file):
    connections = handler(db_file)
    first = connections["default"]
    begin(first)
    first.cursor().execute("UPDATE counter SET n = n + 1")
    lock = os.open(f"{db_file}-writer.lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):  # the open transaction holds the queue's lock
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    events = []

    def second_writer():
        second = connections["default"]  # this thread's own connection
        begin(second)
        events.append("second began")
        second.cursor().execute("UPDATE counter SET n = n * 10")
        end(second)
        second.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.3)
    assert events == []  # queued behind the open transaction, not failed, not interleaved
    events.append("first commits")
    end(first)
    thread.join(10)
    assert events == ["first commits", "second began"]
    assert count(db_file) == 10  # (0 + 1) * 10: the writes ran one after the other
    first.close()
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once both committed
    os.close(lock)


def test_rollback_and_close_let_the_next_writer_in(db_file):
    connections = handler(db_file)
    first = connections["default"]
    begin(first)
    first.cursor().execute("UPDATE counter SET n = 5")
    end(first, commit=False)
    result = []

    def writer():
        other = connections["default"]
        begin(other)
        other.cursor().execute("UPDATE counter SET n = n + 1")
        end(other)
        other.close()
        result.append("done")

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(5)
    assert result == ["done"]
    begin(first)
    first.close()  # closing inside a transaction (a dead request) lets go of the queue too
    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(5)
    assert result == ["done", "done"]
    assert count(db_file) == 2


def test_a_writer_that_outwaits_its_timeout_gets_sqlites_error(db_file):
    connections = handler(db_file, timeout=0.2)
    first = connections["default"]
    begin(first)
    first.cursor().execute("UPDATE counter SET n = 1")
    errors = []

    def writer():
        other = connections["default"]
        try:
            begin(other)
        except OperationalError as exc:
            errors.append(str(exc))
        finally:
            other.close()

    started = time.monotonic()
    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(10)
    assert errors == ["database is locked"]  # as with Django's backend, after the timeout
    assert time.monotonic() - started < 5
    end(first)
    first.close()


@pytest.mark.parametrize("mode", [None, "DEFERRED"])
def test_modes_that_do_not_lock_at_begin_are_left_alone(tmp_path, db_file, mode):
    connections = handler(db_file, mode=mode)
    connection = connections["default"]
    begin(connection)
    connection.cursor().execute("SELECT n FROM counter")
    end(connection)
    connection.close()
    assert not Path(f"{db_file}-writer.lock").exists()


def _increment(path: str, times: int, barrier) -> None:
    connection = handler(Path(path))["default"]
    barrier.wait()
    for _ in range(times):
        begin(connection)
        cursor = connection.cursor()
        cursor.execute("SELECT n FROM counter")
        (n,) = cursor.fetchone()
        cursor.execute("UPDATE counter SET n = %s", [n + 1])
        end(connection)
    connection.close()


def test_writers_in_two_processes_queue_without_failing(db_file):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    processes = [context.Process(target=_increment, args=(str(db_file), 100, barrier)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0]
    assert count(db_file) == 200  # read-modify-write in each transaction: none lost, none failed


def test_a_new_connection_waits_for_a_lock_its_init_command_meets(db_file):
    """Opening runs ``PRAGMA journal_mode=WAL``, which needs the database to itself: while another
    process holds it, the connection waits (up to its ``timeout``) instead of failing."""
    holder = sqlite3.connect(db_file, isolation_level=None, timeout=0, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # the file is still in rollback-journal mode: no reader either
    connection = handler(db_file, timeout=5.0)["default"]
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    released.start()
    started = time.monotonic()
    try:
        connection.ensure_connection()
        assert connection.cursor().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert time.monotonic() - started >= 0.25  # it did wait for the holder
    finally:
        released.join()
        connection.close()
        holder.close()


def test_a_new_connection_still_fails_after_its_timeout(db_file):
    holder = sqlite3.connect(db_file, isolation_level=None, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    connection = handler(db_file, timeout=0.2)["default"]
    try:
        with pytest.raises(OperationalError, match="locked"):
            connection.ensure_connection()
    finally:
        holder.execute("COMMIT")
        holder.close()
