"""Push throughput on PostgreSQL: inserts and conditional updates per second with 1, 8 and 32 clients.

    .venv/bin/python bench/push.py

Each client is a thread with its own keep-alive connection, sending what a device's push
sends (v2): ``POST /tables/Task`` with a new id, then ``PATCH /tables/Task/{id}`` with
``If-Match`` set to the version it holds (a conditional update, 412 if stale; each client
updates its own rows, so every update should succeed). Each phase runs for a fixed time on
a fresh clone of the seeded table; reported: ops/s, latency p50/p99, failures, the ratio to
one client in the same run, and the share of a raw psycopg loop running the same statements
with as many threads (``raw_phase``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid

import psycopg
from common import SERVERS, TABLE, V2, Http, Site, log, machine_note, pct, print_table
from datagen import PG_ADMIN, ms_to_dt, pg_name, pg_url, seed_pg


def task_body(n: int, item_id: str) -> bytes:
    return json.dumps({"id": item_id, "text": f"pushed task {n}", "complete": False, "priority": n % 5,
                       "dueDate": "2024-06-01T12:00:00.000Z"}).encode()


class Phase:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.seconds = 0.0

    @property
    def ops(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _timed(phase: Phase, worker, clients: int, seconds: float, start: threading.Barrier, stop_at: list[float]
           ) -> Phase:  # fmt: skip
    """Run ``worker(c)`` in ``clients`` threads for ``seconds`` from the moment all are ready
    (``start``), and record the phase's wall time."""
    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(seconds + 120)
    phase.seconds = time.perf_counter() - t0
    return phase


def run_phase(host, clients: int, seconds: float, kind: str, owned: list[list[tuple[str, str]]]) -> Phase:
    """``kind`` is "insert" or "update"; ``owned[c]`` collects/holds client c's (id, version)."""
    phase = Phase()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(c: int) -> None:
        http_ = Http(host, V2)
        mine = owned[c]
        lat, ok, failed, statuses = [], 0, 0, {}
        n = 0
        start.wait()
        while time.perf_counter() < stop_at[0]:
            if kind == "insert":
                item_id = uuid.uuid4().hex
                t = time.perf_counter()
                status, resp, data = http_.request("POST", TABLE, task_body(n, item_id))
                lat.append(time.perf_counter() - t)
                if status == 201:
                    mine.append((item_id, json.loads(data)["version"]))
            else:
                if not mine:
                    break
                idx = n % len(mine)
                item_id, version = mine[idx]
                body = json.dumps({"text": f"edited {n}", "complete": n % 2 == 0}).encode()
                t = time.perf_counter()
                status, resp, data = http_.request("PATCH", f"{TABLE}/{item_id}", body,
                                                   headers={"If-Match": f'"{version}"'})
                lat.append(time.perf_counter() - t)
                if status == 200:
                    mine[idx] = (item_id, json.loads(data)["version"])
            good = status in (200, 201)
            ok += good
            failed += not good
            if not good:
                statuses[status] = statuses.get(status, 0) + 1
            n += 1
        http_.close()
        with phase.lock:
            phase.ok += ok
            phase.failed += failed
            phase.latencies.extend(lat)
            for k, v in statuses.items():
                phase.statuses[k] = phase.statuses.get(k, 0) + v

    return _timed(phase, worker, clients, seconds, start, stop_at)


def raw_phase(url: str, clients: int, seconds: float, kind: str, owned: list[list[tuple[str, int]]]) -> Phase:
    """The raw limit: the same statements from ``clients`` psycopg threads, no HTTP, no Django.

    Per insert: the clock's ``UPDATE … RETURNING`` (the stamp, and the table's write lock), the
    row's ``INSERT``, ``COMMIT``. Per update: the clock, the row's ``UPDATE … WHERE id AND
    version`` (the precondition), ``COMMIT``. Synchronous commit as the site's sessions.
    """
    phase = Phase()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]
    clock = ('UPDATE offline_sync_clock SET last_ms = GREATEST(%s, last_ms + 1) '
             'WHERE "table" = \'tasks_task\' RETURNING last_ms')

    def worker(c: int) -> None:
        mine = owned[c]
        lat: list[float] = []
        ok = 0
        n = 0
        with psycopg.connect(url) as conn:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                t = time.perf_counter()
                with conn.transaction():
                    (stamp,) = conn.execute(clock, [time.time_ns() // 1_000_000]).fetchone()
                    when = ms_to_dt(stamp)
                    if kind == "insert":
                        item_id = uuid.uuid4().hex
                        conn.execute(
                            "INSERT INTO tasks_task (id, created_at, updated_at, version, deleted, text, complete,"
                            " priority, due_date) VALUES (%s, %s, %s, %s, false, %s, false, %s, %s)",
                            [item_id, when, when, stamp, f"pushed task {n}", n % 5, when])
                        mine.append((item_id, stamp))
                        done = True
                    else:
                        if not mine:
                            break
                        idx = n % len(mine)
                        item_id, version = mine[idx]
                        cur = conn.execute(
                            "UPDATE tasks_task SET text = %s, complete = %s, updated_at = %s, version = %s"
                            " WHERE id = %s AND version = %s",
                            [f"edited {n}", n % 2 == 0, when, stamp, item_id, version])
                        done = cur.rowcount == 1
                        if done:
                            mine[idx] = (item_id, stamp)
                lat.append(time.perf_counter() - t)
                ok += done
                n += 1
        with phase.lock:
            phase.ok += ok
            phase.latencies.extend(lat)

    return _timed(phase, worker, clients, seconds, start, stop_at)


def fresh_clone(template: str, name: str) -> str:
    """A new database copied from the seeded one (CREATE DATABASE … TEMPLATE is a file copy)."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return pg_url(name)


def drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each phase (default 8)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows already in the table (default 100000)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    parser.add_argument("--server", choices=SERVERS, default="granian",
                        help="application server (default granian, as the README recommends)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw psycopg loops")
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="on",
                        help="PostgreSQL synchronous_commit for the site's sessions (default on: durable)")
    parser.add_argument("--pg-prefix", default="bench_",
                        help="prefix of the databases it seeds and clones (default bench_; must start with bench_), "
                             "to keep one's runs apart from others' on a shared server")
    args = parser.parse_args(argv)
    if not args.pg_prefix.startswith("bench_"):
        parser.error("--pg-prefix must start with bench_")

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    template = args.pg_prefix + pg_name(args.rows).removeprefix("bench_")
    seed_pg(args.rows, args.rows // 2, name=template, log=log)
    rows = []
    base: dict[str, float] = {}
    for clients in args.clients:
        name = f"{args.pg_prefix}push_run"
        url = fresh_clone(template, name)
        try:
            env = {"BENCH_PG_SYNC_COMMIT": args.synchronous_commit}
            ours: dict[str, Phase] = {}
            with Site(url, workers=args.workers, threads=args.threads, env=env, server=args.server) as site:
                owned: list[list[tuple[str, str]]] = [[] for _ in range(clients)]
                for kind in ("insert", "update"):
                    log(f"{clients} client(s): {kind} for {args.seconds:g}s ...")
                    ours[kind] = run_phase(site.host, clients, args.seconds, kind, owned)
                    base.setdefault(kind, ours[kind].ops)
            raw: dict[str, Phase] = {}
            if not args.no_raw:
                raw_owned: list[list[tuple[str, int]]] = [[] for _ in range(clients)]
                if args.synchronous_commit == "off":
                    url += "?options=-c%20synchronous_commit%3Doff"
                for kind in ("insert", "update"):
                    log(f"{clients} raw psycopg thread(s): {kind} for {args.seconds:g}s ...")
                    raw[kind] = raw_phase(url, clients, args.seconds, kind, raw_owned)
            for kind, ph in ours.items():
                fails = ", ".join(f"{k}x{v}" for k, v in sorted(ph.statuses.items())) or "0"
                limit = raw[kind].ops if kind in raw else 0.0
                rows.append([kind, clients, ph.ok, ph.ops, f"{ph.ops / base[kind]:.2f}x",
                             f"{limit:.0f}" if limit else "-", f"{ph.ops / limit:.0%}" if limit else "-",
                             pct(ph.latencies, 50) * 1e3, pct(ph.latencies, 99) * 1e3, fails])
        finally:
            drop(name)
    print_table(
        f"Push on PostgreSQL ({args.rows:,} rows present), {args.server} {args.workers} workers"
        f"{f' x {args.threads} threads' if args.threads > 1 else ''}, synchronous_commit={args.synchronous_commit}"
        f" ({machine_note()})",
        ["operation", "clients", "ok", "ops/s", "vs 1 client", "raw ops/s", "share of raw", "p50 ms", "p99 ms",
         "failures"],
        rows,
        note="Conditional update = PATCH with If-Match of the client's last version. Raw: the same statements "
             "(clock, row, commit) from as many psycopg threads, no HTTP, no Django. Targets with 8 clients: "
             ">= 1,000 ops/s, and in any case >= 40 % of raw. Clients run on the same 2 cores as the server.")


if __name__ == "__main__":
    main()
