"""Bulk data for the benches: N Task rows (plus Notes) in PostgreSQL, SQLite, and the Node peer's SQLite.

Rows are written directly in bulk (COPY on PostgreSQL, one executemany transaction on SQLite),
with the system columns a long-lived table would have: ``updated_at`` distinct per row and
increasing in commit order (millisecond precision), ``version`` = the stamp, ``created_at``
before it, 1 row in 101 soft-deleted. The table's sync clock is set to the last stamp, so
writes made by a bench stamp after the seeded rows. The same generator feeds every store, so
our site and the peer serve byte-identical data.

A seeded store carries a ``bench_meta`` row with its spec and is reused while it matches::

    .venv/bin/python bench/datagen.py --rows 100000 --store pg sqlite peer
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SPEC_VERSION = 2  # bump when the generator changes, to reseed every store
UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: in the past, so new writes stamp after it
NOTE_BASE_MS = BASE_MS + 1_000
WORDS = (
    "buy milk", "call the plumber", "renew passport", "book flights", "water the plants",
    "file the tax return", "fix the bike", "inspect pipe 7", "send the invoice", "read chapter 3",
    "clean the gutters", "walk the dog", "order spare parts", "check valve pressure",
)
NOTE_BODIES = (
    "Left a voicemail, try again tomorrow.", "Parts arrive on Tuesday.",
    "Needs a second person on site.", "Customer asked for a call before arrival.",
    "Photo attached in the shared folder.", "Done half of it; the rest after lunch.",
)


def label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def spec(rows: int, notes: int) -> str:
    return f"v{SPEC_VERSION} tasks={rows} notes={notes}"


def ms_to_dt(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)


def iso_ms(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def task_ms(i: int) -> int:
    # 2 ms apart with jitter: distinct, increasing with i (the commit order).
    return BASE_MS + 2 * i + (i * 7919) % 2


def task_id(i: int) -> str:
    return hashlib.md5(b"task%d" % i).hexdigest()


def tasks(n: int):
    """(id, created, updated, version, deleted, text, complete, priority, due) per row, i ascending."""
    for i in range(n):
        ms = task_ms(i)
        updated = ms_to_dt(ms)
        created = ms_to_dt(ms - (i % 3600) * 1000)
        due = None if i % 4 == 0 else ms_to_dt(ms + (i % 30 + 1) * 86_400_000)
        text = f"{WORDS[i % len(WORDS)]} #{i}"
        yield (task_id(i), created, updated, ms, i % 101 == 50, text, i % 3 == 0, i % 5, due)


def notes(n_tasks: int, n: int):
    for j in range(n):
        ms = NOTE_BASE_MS + 2 * j
        t = (j * 2654435761) % n_tasks
        yield (hashlib.md5(b"note%d" % j).hexdigest(), ms_to_dt(ms), ms_to_dt(ms), ms, False,
               task_id(t), NOTE_BODIES[j % len(NOTE_BODIES)])


# -- PostgreSQL --------------------------------------------------------------------------------

def pg_name(rows: int, suffix: str = "") -> str:
    return f"bench_{label(rows)}{suffix}"


def pg_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "bench_settings",
           "PYTHONPATH": f"{BENCH}:{ROOT}"}
    subprocess.run([PYTHON, str(ROOT / "manage.py"), "migrate", "--skip-checks", "-v", "0"],
                   env=env, cwd=ROOT, check=True)



def fresh_database(kind: str, name: str, work: Path) -> str:
    """A migrated, empty database for one benchmark run: PostgreSQL database ``name`` dropped and
    made again, or a SQLite file ``name.sqlite3`` under ``work``; returns its URL."""
    if kind == "postgresql":
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    else:
        url = f"sqlite:///{work / f'{name}.sqlite3'}"
    migrate(url)
    return url

def create_pg(name: str, drop: bool = False) -> None:
    assert name.startswith("bench_")
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        if drop:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def _meta_pg(conn) -> str | None:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (spec text)")
    row = conn.execute("SELECT spec FROM bench_meta").fetchone()
    return row[0] if row else None


def seed_pg(rows: int, n_notes: int, name: str | None = None, force: bool = False, log=print) -> str:
    """Ensure database ``name`` holds the spec'd rows; returns its DATABASE_URL."""
    name = name or pg_name(rows)
    create_pg(name)
    url = pg_url(name)
    migrate(url)
    want = spec(rows, n_notes)
    with psycopg.connect(url, autocommit=True) as conn:
        if not force and _meta_pg(conn) == want:
            return url
        t0 = time.perf_counter()
        with conn.transaction():
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django's FKs are deferred; check while loading
            conn.execute("TRUNCATE tasks_note, tasks_task, bench_meta")
            conn.execute("DELETE FROM offline_sync_clock WHERE \"table\" IN ('tasks_task', 'tasks_note')")
            # Load without the secondary indexes, then build them once (as pg_restore does).
            idx = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('tasks_task', 'tasks_note') "
                "AND indexname NOT LIKE '%%_pkey'").fetchall()
            for indexname, _ in idx:
                conn.execute(f'DROP INDEX "{indexname}"')
            with conn.cursor().copy(
                "COPY tasks_task (id, created_at, updated_at, version, deleted, text, complete, priority, due_date)"
                " FROM STDIN") as copy:
                for row in tasks(rows):
                    copy.write_row(row)
            with conn.cursor().copy(
                "COPY tasks_note (id, created_at, updated_at, version, deleted, task_id, body) FROM STDIN") as copy:
                for row in notes(rows, n_notes):
                    copy.write_row(row)
            for _, indexdef in idx:
                conn.execute(indexdef)
            clocks = [("tasks_task", task_ms(rows - 1))]
            if n_notes:
                clocks.append(("tasks_note", NOTE_BASE_MS + 2 * (n_notes - 1)))
            for table, last in clocks:
                conn.execute(
                    'INSERT INTO offline_sync_clock ("table", last_ms) VALUES (%s, %s) '
                    'ON CONFLICT ("table") DO UPDATE SET last_ms = EXCLUDED.last_ms', (table, last))
            conn.execute("INSERT INTO bench_meta VALUES (%s)", (want,))
        conn.execute("VACUUM ANALYZE tasks_task")
        conn.execute("VACUUM ANALYZE tasks_note")
        log(f"  seeded {name}: {rows} tasks, {n_notes} notes in {time.perf_counter() - t0:.1f}s")
    return url


# -- SQLite (our site) ---------------------------------------------------------------------------

def _django_dt(value: dt.datetime | None) -> str | None:
    # What Django's SQLite backend stores for an aware datetime under USE_TZ: naive UTC, str().
    return None if value is None else str(value.replace(tzinfo=None))


def _meta_sqlite(conn) -> str | None:
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (spec text)")
    row = conn.execute("SELECT spec FROM bench_meta").fetchone()
    return row[0] if row else None


def sqlite_path(rows: int, kind: str) -> Path:
    return WORK / f"{kind}_{label(rows)}.sqlite3"


def seed_sqlite(rows: int, n_notes: int, path: Path | None = None, force: bool = False, log=print) -> str:
    """Our site's SQLite file (WAL journal, as the peer's); returns its DATABASE_URL."""
    WORK.mkdir(exist_ok=True)
    path = path or sqlite_path(rows, "site")
    url = f"sqlite:///{path}"
    migrate(url)
    want = spec(rows, n_notes)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        if not force and _meta_sqlite(conn) == want:
            return url
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("DELETE FROM bench_meta")
        conn.execute("DELETE FROM tasks_note")
        conn.execute("DELETE FROM tasks_task")
        conn.executemany(
            "INSERT INTO tasks_task (id, created_at, updated_at, version, deleted, text, complete, priority, due_date)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            ((r[0], _django_dt(r[1]), _django_dt(r[2]), r[3], r[4], r[5], r[6], r[7], _django_dt(r[8]))
             for r in tasks(rows)))
        conn.executemany(
            "INSERT INTO tasks_note (id, created_at, updated_at, version, deleted, task_id, body)"
            " VALUES (?,?,?,?,?,?,?)",
            ((r[0], _django_dt(r[1]), _django_dt(r[2]), r[3], r[4], r[5], r[6]) for r in notes(rows, n_notes)))
        conn.execute('DELETE FROM offline_sync_clock WHERE "table" IN (\'tasks_task\', \'tasks_note\')')
        conn.execute('INSERT INTO offline_sync_clock ("table", last_ms) VALUES (?, ?)',
                     ("tasks_task", task_ms(rows - 1)))
        if n_notes:
            conn.execute('INSERT INTO offline_sync_clock ("table", last_ms) VALUES (?, ?)',
                         ("tasks_note", NOTE_BASE_MS + 2 * (n_notes - 1)))
        conn.execute("INSERT INTO bench_meta VALUES (?)", (want,))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        log(f"  seeded {path.name}: {rows} tasks, {n_notes} notes in {time.perf_counter() - t0:.1f}s")
    finally:
        conn.close()
    return url


# -- SQLite (the Node peer) ---------------------------------------------------------------------

def seed_peer(rows: int, path: Path | None = None, force: bool = False, log=print) -> Path:
    """The peer's SQLite file, schema created by azure-mobile-apps itself, then the same rows."""
    from common import Peer  # late: common imports this module

    WORK.mkdir(exist_ok=True)
    path = path or sqlite_path(rows, "peer")
    want = spec(rows, 0)
    if path.exists() and not force:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            if _meta_sqlite(conn) == want:
                return path
        finally:
            conn.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with Peer(path):  # tables.initialize() creates [Task], its trigger, index and [__types]
        pass
    t0 = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO [Task] ([id], [createdAt], [updatedAt], [version], [deleted], [text], [complete], [priority],"
            " [dueDate]) VALUES (?,?,?,?,?,?,?,?,?)",
            ((r[0], iso_ms(r[1]), iso_ms(r[2]), str(r[3]), int(r[4]), r[5], int(r[6]), float(r[7]),
              None if r[8] is None else iso_ms(r[8])) for r in tasks(rows)))
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (spec text)")
        conn.execute("INSERT INTO bench_meta VALUES (?)", (want,))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    log(f"  seeded {path.name}: {rows} tasks in {time.perf_counter() - t0:.1f}s")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="Task rows (repeatable; default 10k, 100k, 1M)")
    parser.add_argument("--notes-ratio", type=float, default=0.5, help="Notes per Task (default 0.5)")
    parser.add_argument("--store", nargs="+", choices=["pg", "sqlite", "peer"], default=["pg"])
    parser.add_argument("--force", action="store_true", help="reseed even if the spec matches")
    args = parser.parse_args(argv)
    for rows in args.rows or [10_000, 100_000, 1_000_000]:
        n_notes = int(rows * args.notes_ratio)
        if "pg" in args.store:
            print(seed_pg(rows, n_notes, force=args.force))
        if "sqlite" in args.store:
            print(seed_sqlite(rows, n_notes, force=args.force))
        if "peer" in args.store:
            print(seed_peer(rows, force=args.force))


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
