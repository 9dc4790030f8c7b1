"""Push throughput with batches (``POST /tables/$batch``) vs one request per operation.

    .venv/bin/python bench/batch.py [--seconds 6] [--clients 8] [--size 50] [--databases postgresql sqlite]

For each database, on a fresh migrated database served by gunicorn (2 sync workers), N
client threads each with a keep-alive connection push inserts of new Tasks for a fixed
time: first one ``POST /tables/Task`` per row (what an unmodified client sends), then
batches of ``--size`` inserts, each a new ``batchId`` (what the Python client sends).
Reported: rows committed per second, server CPU seconds per 1,000 rows, request latency
p50/p99, and the batched/single ratio from the same run. Clients and server share the
machine's cores, so the ratios mean more than the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from common import TABLE, V3, Http, Site, log, machine_note, pct, print_table
from datagen import PG_ADMIN, fresh_database

PG_NAME = "bench_batch_run"


def task(n: int) -> dict:
    return {"id": uuid.uuid4().hex, "text": f"pushed task {n}", "complete": False, "priority": n % 5}


def run(host, clients: int, seconds: float, size: int) -> tuple[int, list[float], dict[int, int], float]:
    """``size`` 1: single requests; more: batches. Returns rows, latencies, failures, seconds."""
    start = threading.Barrier(clients + 1)
    lock = threading.Lock()
    totals = {"rows": 0}
    latencies: list[float] = []
    failures: dict[int, int] = {}
    stop_at = [0.0]

    def worker(c: int) -> None:
        http = Http(host, V3)
        rows, lat, failed = 0, [], {}
        n = 0
        start.wait()
        while time.perf_counter() < stop_at[0]:
            if size == 1:
                body, url, want = json.dumps(task(n)).encode(), TABLE, 201
            else:
                ops = [{"op": "insert", "table": "Task", "item": task(n + i)} for i in range(size)]
                body, url, want = json.dumps({"batchId": uuid.uuid4().hex, "operations": ops}).encode(), \
                    "/tables/$batch", 200
            t = time.perf_counter()
            status, _, _ = http.request("POST", url, body)
            lat.append(time.perf_counter() - t)
            if status == want:
                rows += size
            else:
                failed[status] = failed.get(status, 0) + 1
            n += size
        http.close()
        with lock:
            totals["rows"] += rows
            latencies.extend(lat)
            for k, v in failed.items():
                failures[k] = failures.get(k, 0) + v

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return totals["rows"], latencies, failures, time.perf_counter() - began


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of each phase (default 6)")
    parser.add_argument("--size", type=int, default=50, help="operations per batch (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--databases", nargs="+", choices=["postgresql", "sqlite"], default=["postgresql", "sqlite"])
    args = parser.parse_args(argv)
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases:
            url = fresh_database(kind, PG_NAME, Path(tmp))
            try:
                with Site(url, workers=args.workers) as site:
                    single = None
                    for size in (1, args.size):
                        label = "single requests" if size == 1 else f"batches of {size}"
                        log(f"{kind}: {args.clients} clients, {label}, {args.seconds:g}s ...")
                        cpu0 = site.cpu()
                        rows, lat, failures, took = run(site.host, args.clients, args.seconds, size)
                        cpu = site.cpu() - cpu0
                        rate = rows / took
                        single = single or rate
                        fails = ", ".join(f"{k}x{v}" for k, v in sorted(failures.items())) or "0"
                        rows_out.append([kind, label, rows, rate, f"{rate / single:.1f}x",
                                         cpu / max(rows, 1) * 1000, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, fails])
            finally:
                if kind == "postgresql":
                    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
    print_table(
        f"Push: batches vs single requests, {args.clients} clients, gunicorn {args.workers} workers ({machine_note()})",
        ["database", "push", "rows", "rows/s", "vs single", "server CPU s/1k rows", "p50 ms", "p99 ms", "failures"],
        rows_out,
        note="Each batch is one transaction (one commit, one fsync) holding the Task clock until it commits; "
             "clients run on the same cores as the server.",
    )


if __name__ == "__main__":
    main()
