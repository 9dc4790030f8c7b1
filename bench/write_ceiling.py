"""The per-table write ceiling: writes/s on one table against the same load over several tables.

    .venv/bin/python bench/write_ceiling.py [--seconds 4] [--writers 1,2,4,8,16,32] [--tables 8]
                                            [--hold-ms 0,2] [--commit on,off]

Every write of a sync table holds that table's clock row lock from its stamp to its commit
(``stamping.py``), so the writes of one table serialize, each for as long as its transaction
lasts after the stamp, commit included. This measures what that costs, with pgbench (C, so the
client is not what is measured) on a throwaway PostgreSQL cluster (``tests/pgcluster.py``:
``initdb`` on a free port in a temporary directory, durable settings: ``fsync = on``, ``full_page_writes
= on``), so that ``synchronous_commit`` can be switched without touching the machine's server.

Each transaction is the writer's SQL for an insert (``writer.py``)::

    BEGIN;
    UPDATE offline_sync_clock SET last_ms = GREATEST(now_ms, last_ms + 1) WHERE "table" = 'tK' RETURNING last_ms;
    INSERT INTO tK (id, updated_at, version, text, deleted) VALUES (…, stamp, stamp, …);
    [\\sleep HOLD]      -- the app's work between stamp and commit (serializer, hooks, round trips)
    COMMIT;

with K = 0 for "one table" and K drawn at random from ``--tables`` tables for "spread". The
matrix is writers × {one, spread} × ``--commit`` (``synchronous_commit`` on: each commit waits
for the WAL flush; off: it does not) × ``--hold-ms``. Printed: writes/s, the spread/one ratio
of each row (same run, same machine state), and mean latency. The machine is shared: absolute
figures move with its load, ratios less so; rerun to see the spread.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pgcluster  # noqa: E402

DURABLE = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
    "shared_buffers": "128MB",
    "max_connections": "100",
}

SCHEMA = """
CREATE TABLE offline_sync_clock ("table" varchar(255) PRIMARY KEY, last_ms bigint NOT NULL);
"""
TABLE = """
CREATE TABLE t{k} (id varchar(64) PRIMARY KEY, updated_at timestamptz NOT NULL, version bigint NOT NULL,
                   text varchar(500) NOT NULL, deleted boolean NOT NULL);
CREATE INDEX t{k}_sync ON t{k} (updated_at, id);
INSERT INTO offline_sync_clock VALUES ('t{k}', 0);
"""
SCRIPT = """\\set n random(1, 2000000000)
BEGIN;
UPDATE offline_sync_clock SET last_ms = GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::bigint, last_ms + 1) WHERE "table" = 't{k}' RETURNING last_ms AS stamp \\gset
INSERT INTO t{k} (id, updated_at, version, text, deleted) VALUES (:client_id || '-' || :n, to_timestamp(:stamp / 1000.0), :stamp, 'a task', false) ON CONFLICT (id) DO NOTHING;
{hold}COMMIT;
"""  # noqa: E501


def load() -> str:
    """The 1-minute load average: the machine is shared, so each table says how busy it was."""
    return Path("/proc/loadavg").read_text().split()[0]


def run_pgbench(cluster: pgcluster.Cluster, scripts: list[Path], writers: int, seconds: float) -> tuple[float, float]:
    """(transactions per second, mean latency ms) of one pgbench run."""
    command = [str(cluster.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.primary.port), "-U", "postgres",
               "-n", "-M", "prepared", "-c", str(writers), "-j", str(min(writers, 4)), "-T", str(int(seconds))]
    for script in scripts:
        command += ["-f", f"{script}@1"]
    done = subprocess.run([*command, "bench"], capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    if not tps or not latency:
        raise RuntimeError(f"pgbench printed no tps:\n{done.stdout}")
    return float(tps.group(1)), float(latency.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--writers", default="1,2,4,8,16,32")
    parser.add_argument("--tables", type=int, default=8)
    parser.add_argument("--hold-ms", default="0,2")
    parser.add_argument("--commit", default="on,off", help="synchronous_commit values")
    args = parser.parse_args(argv)
    writers = [int(w) for w in args.writers.split(",")]
    holds = [float(h) for h in args.hold_ms.split(",")]
    commits = args.commit.split(",")

    reason = pgcluster.unavailable_reason()
    if reason:
        raise SystemExit(reason)
    started = time.monotonic()
    with pgcluster.Cluster.start(replicas=0, settings=DURABLE) as cluster, tempfile.TemporaryDirectory() as tmp:
        cluster.primary.sql("CREATE DATABASE bench")
        cluster.primary.sql(SCHEMA, "bench")
        for k in range(args.tables):
            cluster.primary.sql(TABLE.format(k=k), "bench")
        print(f"PostgreSQL {cluster.primary.sql('SHOW server_version')[0][0]} (throwaway, fsync on) at "
              f"port {cluster.primary.port}; {args.seconds:g} s per run; pgbench -M prepared; "
              f"load {load()} at start")  # fmt: skip
        for commit in commits:
            cluster.set(synchronous_commit=commit)
            for hold in holds:
                sleep = f"\\sleep {int(hold * 1000)} us\n" if hold else ""
                files = []
                for k in range(args.tables):
                    path = Path(tmp) / f"t{k}-{hold}.sql"
                    path.write_text(SCRIPT.format(k=k, hold=sleep))
                    files.append(path)
                print(f"\nsynchronous_commit = {commit}, app work in the transaction after the stamp: {hold:g} ms")
                print(f"{'writers':>8} {'one table/s':>12} {'lat ms':>7} {f'{args.tables} tables/s':>12} "
                      f"{'lat ms':>7} {'spread/one':>11}")  # fmt: skip
                for n in writers:
                    one, one_latency = run_pgbench(cluster, files[:1], n, args.seconds)
                    spread, spread_latency = run_pgbench(cluster, files, n, args.seconds)
                    print(f"{n:>8} {one:>12.0f} {one_latency:>7.2f} {spread:>12.0f} {spread_latency:>7.2f} "
                          f"{spread / one:>10.2f}x", flush=True)  # fmt: skip
        (rows,) = cluster.primary.sql(
            " + ".join(f"(SELECT count(*) FROM t{k})" for k in range(args.tables)).join(("SELECT ", "")), "bench"
        )[0]
    print(f"\n{rows} rows written in {time.monotonic() - started:.0f} s; load "
          f"{load()} at the end")  # fmt: skip


if __name__ == "__main__":
    main()
