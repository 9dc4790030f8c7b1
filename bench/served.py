"""What the application server adds to a request: the same requests served over HTTP and in process.

    .venv/bin/python bench/served.py

One keep-alive client sends, one after the other, the two floor requests of ``cpu.py`` (an
empty answer from a plain Django view through the site's middleware, and from a DRF view with
the table endpoints' classes; ``bench_urls.py``) and the JS client's pull page of 50, to the
example site under each application server (one worker, so one process does all the work),
the servers alternating in each round. Reported per request: the server's CPU time (master
and worker, user + sys, every thread: the HTTP server's own and the application's) and the
client's latency; then ``cpu.py``'s in-process CPU for the same requests, measured in this
run, so that the difference is what serving over HTTP costs. Best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from common import BENCH, SERVERS, V2, Http, Site, log, machine_note, print_table, v2_url
from datagen import seed_sqlite, sqlite_path
from peer import fresh_copy

REQUESTS = {
    "django empty": "/bench/django-empty",
    "drf empty": "/bench/drf-empty",
    # A page from the start of the table: every request reads the same 50 rows.
    "pull 50": v2_url("2024-01-01T00:00:00.000Z", 50),
}


def served(site: Site, path: str, n: int) -> tuple[float, float]:
    """(server CPU ms per request, client latency ms per request) over ``n`` requests."""
    client = Http(site.host, V2)
    try:
        for _ in range(min(n // 10, 100)):  # warm the path and the connection
            client.request("GET", path)
        cpu0, t0 = site.cpu(), time.perf_counter()
        for _ in range(n):
            status, _, _ = client.request("GET", path)
            if status != 200:
                raise RuntimeError(f"{site.name} answered {status} to {path}")
        return (site.cpu() - cpu0) * 1e3 / n, (time.perf_counter() - t0) * 1e3 / n
    finally:
        client.close()


def in_process(rows: int, requests: int) -> dict[str, float]:
    """``cpu.py``'s CPU ms per request for the same cases (best of its batches)."""
    cases = ",".join(REQUESTS)
    done = subprocess.run(
        [sys.executable, str(BENCH / "cpu.py"), "--rows", str(rows), "--cases", cases, "--requests", str(requests)],
        capture_output=True, text=True, check=True,
    )
    found: dict[str, float] = {}
    for line in done.stdout.splitlines():
        name, _, rest = line.partition("|")
        if name.strip() in REQUESTS and rest.strip():
            found[name.strip()] = float(rest.split("|")[0])
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="requests per measure (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each measure's best is reported (default 3)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated subset of {', '.join(SERVERS)}")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",")]

    seed_sqlite(args.rows, 0, log=log)
    db = fresh_copy(sqlite_path(args.rows, "site"), "served_site.sqlite3")
    best: dict[tuple[str, str], tuple[float, float]] = {}
    sites = [Site(f"sqlite:///{db}", workers=1, server=name, env={"BENCH_URLCONF": "bench_urls"}) for name in servers]
    try:
        for site in sites:
            site.start()
        for r in range(args.rounds):
            order = sites if r % 2 == 0 else sites[::-1]
            for site in order:
                for case, path in REQUESTS.items():
                    log(f"round {r + 1}: {site.name}: {case} ...")
                    cpu_ms, latency_ms = served(site, path, args.requests)
                    key = (site.name, case)
                    old = best.get(key)
                    best[key] = (min(cpu_ms, old[0]), min(latency_ms, old[1])) if old else (cpu_ms, latency_ms)
    finally:
        for site in sites:
            site.stop()

    log("the same requests in process (cpu.py, which serves bench_urls itself) ...")
    inside = in_process(args.rows, max(args.requests // 10, 100))
    rows = []
    for case in REQUESTS:
        own = inside.get(case)
        rows.append([case, "in process", f"{own:.3f}" if own else "-", "", ""])
        for name in servers:
            cpu_ms, latency_ms = best[(name, case)]
            added = f"+{cpu_ms - own:.3f}" if own else "-"
            rows.append(["", name, f"{cpu_ms:.3f}", added, f"{latency_ms:.3f}"])
    print_table(
        f"One keep-alive client, one worker, SQLite file, {args.rows:,} rows, best of {args.rounds} "
        f"rounds ({machine_note()})",
        ["request", "served by", "CPU ms/request", "added by serving", "latency ms"],
        rows,
        note="CPU: the server's processes, every thread; in process: bench/cpu.py's best batch.",
    )


if __name__ == "__main__":
    main()
