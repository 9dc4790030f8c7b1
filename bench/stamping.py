"""Write throughput of the two stamping schemes on PostgreSQL: ``clock`` against ``now``.

    .venv/bin/python bench/stamping.py [--threads 8] [--ops 300] [--rounds 3]

Each round, for each scheme: ``threads`` writer threads (own connections, autocommit, one
``save()`` per transaction) insert ``ops`` Task rows each, then update their own rows ``ops``
times (no row-lock contention, so the difference is the per-table clock). Rounds alternate the
schemes; the table reports the median and the clock/now ratio from the same run. The database
``bench_stamping`` is created and migrated if absent (``--database-url`` to use another).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_stamping"


def setup(url: str) -> None:
    import psycopg

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_phase(kind: str, threads: int, ops: int, ids: list[list[str]]) -> float:
    """Ops per second for ``threads`` writers doing ``ops`` inserts (or updates) each."""
    from django.db import connections

    from example_project.tasks.models import Task

    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            Task.all_objects.exists()  # open the connection before the clock starts
            barrier.wait()
            if kind == "insert":
                for i in range(ops):
                    task = Task(text=f"b{index}-{i}")
                    task.save(force_insert=True)
                    ids[index].append(task.pk)
            else:
                tasks = list(Task.all_objects.filter(pk__in=ids[index]))
                for i in range(ops):
                    task = tasks[i % len(tasks)]
                    task.priority = i
                    task.save(update_fields=["priority"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return threads * ops / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--ops", type=int, default=300, help="inserts, then updates, per thread")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_STAMPING_URL", DEFAULT_URL))
    args = parser.parse_args()
    setup(args.database_url)

    from django.db import connection
    from django.test import override_settings

    from django_offline_sync.models import SyncClock
    from example_project.tasks.models import Task

    results: dict[tuple[str, str], list[float]] = {}
    for round_no in range(args.rounds):
        for mode in ("clock", "now") if round_no % 2 == 0 else ("now", "clock"):
            Task.all_objects.all().hard_delete()
            SyncClock.objects.all().delete()
            ids: list[list[str]] = [[] for _ in range(args.threads)]
            with override_settings(OFFLINE_SYNC={"STAMPING": mode}):
                for kind in ("insert", "update"):
                    rate = run_phase(kind, args.threads, args.ops, ids)
                    results.setdefault((mode, kind), []).append(rate)
            print(f"round {round_no + 1} {mode:>5}: " + ", ".join(
                f"{k} {results[(mode, k)][-1]:.0f}/s" for k in ("insert", "update")), file=sys.stderr)
    Task.all_objects.all().hard_delete()
    connection.close()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nStamping write throughput, PostgreSQL, {args.threads} threads x {args.ops} ops, "
          f"median of {args.rounds} rounds ({os.cpu_count()} cores, load {load})\n")
    print(f"{'operation':<10}{'clock ops/s':>13}{'now ops/s':>12}{'clock/now':>11}")
    for kind in ("insert", "update"):
        clock = statistics.median(results[("clock", kind)])
        now = statistics.median(results[("now", kind)])
        print(f"{kind:<10}{clock:>13.0f}{now:>12.0f}{clock / now:>11.2f}")


if __name__ == "__main__":
    main()
