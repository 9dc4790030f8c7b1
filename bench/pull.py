"""Pull throughput on PostgreSQL: a clean incremental pull of N rows, against the raw-SQL limit.

    .venv/bin/python bench/pull.py --rows 100000

In one run, on one seeded table served by granian (``--server gunicorn`` for the other):
* the bare HTTP loops issuing the exact client queries: v2 as the JS client ($top 50, and
  $top 1000), v3 as the CTK client (no $top, follow nextLink, $count=true);
* the Python client (``SyncClient.pull``) in v2 and v3, storing into its local SQLite file;
* the limit: the same rows read by raw psycopg ``SELECT … WHERE updated_at >= %s ORDER BY
  updated_at, id LIMIT n`` plus JSON encoding to the wire form, no HTTP, no Django.
Reported: rows/s, page latency p50/p99, and each HTTP pull as a percentage of the limit at
the same page size.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import time

import psycopg
from common import SERVERS, WORK, PullStats, Site, log, machine_note, pct, print_table, pull_v2, pull_v3
from datagen import pg_name, seed_pg

UTC = dt.UTC
RAW_SQL = ("SELECT id, created_at, updated_at, version, deleted, text, complete, priority, due_date "
           "FROM tasks_task WHERE updated_at >= %s ORDER BY updated_at, id LIMIT %s")


def _iso(value: dt.datetime | None) -> str | None:
    # The session runs in UTC, so values arrive as UTC: "…+00:00" -> "…Z", milliseconds.
    return None if value is None else value.isoformat(timespec="milliseconds")[:-6] + "Z"


def raw_limit(database_url: str, rows: int, page: int) -> PullStats:
    """Read ``rows`` distinct rows page by page with the ge-token query, and JSON-encode each page."""
    st = PullStats()
    seen: set[str] = set()
    token = dt.datetime(1970, 1, 1, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        t0 = time.perf_counter()
        while len(seen) < rows:
            t = time.perf_counter()
            result = conn.execute(RAW_SQL, (token, page), prepare=True).fetchall()
            body = json.dumps([
                {"id": r[0], "createdAt": _iso(r[1]), "updatedAt": _iso(r[2]),
                 "version": base64.b64encode(r[3].to_bytes(8, "big", signed=True)).decode("ascii"),
                 "deleted": r[4], "text": r[5], "complete": r[6], "priority": r[7], "dueDate": _iso(r[8])}
                for r in result]).encode()
            st.latencies.append(time.perf_counter() - t)
            st.requests += 1
            st.bytes += len(body)
            if not result:
                break
            seen.update(r[0] for r in result)
            token = result[-1][2]
        st.seconds = time.perf_counter() - t0
    st.rows = len(seen)
    return st


def python_client_pull(host, generation: str, page: int, tag: str = "") -> PullStats:
    from django_offline_sync.client import SyncClient

    store = WORK / f"client_{generation}{tag}.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        (WORK / f"{store.name}{suffix}").unlink(missing_ok=True)
    st = PullStats()
    with SyncClient(f"http://{host[0]}:{host[1]}", store, generation=generation, page_size=page, timeout=300) as c:
        t0, c0 = time.perf_counter(), time.process_time()
        result = c.pull("Task")
        st.seconds = time.perf_counter() - t0
        # The client's own CPU (HTTP, JSON, local writes); the server is another process.
        st.client_cpu = time.process_time() - c0
        # A clean pull delivers every row; the live ones end up in the local store.
        st.rows = result.received if generation == "v3" else result.received - max(0, result.pages - 1)
        st.requests = result.pages
    return st


_CHILD = """
import json, sys
sys.path.insert(0, {bench!r})
import common  # puts bench/ and this checkout on sys.path
sys.path.insert(0, {root!r})
import django_offline_sync.client, pull
assert django_offline_sync.client.__file__.startswith({root!r}), django_offline_sync.client.__file__
st = pull.python_client_pull(({host!r}, {port}), {generation!r}, {page}, tag="_other")
print(json.dumps([st.seconds, st.rows, st.requests, st.client_cpu]))
"""


def python_client_pull_from(root: str, host, generation: str, page: int) -> PullStats:
    """The same pull with the client package of another checkout (``--client-from``), in a subprocess."""
    import subprocess
    import sys

    from common import BENCH

    code = _CHILD.format(bench=str(BENCH), root=str(root), host=host[0], port=host[1], generation=generation,
                         page=page)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=900)
    st = PullStats()
    st.seconds, st.rows, st.requests, st.client_cpu = json.loads(out.stdout.strip().splitlines()[-1])
    return st


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="table size and rows pulled (default 100000)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--server", choices=SERVERS, default="granian", help="application server (default granian)")
    parser.add_argument("--skip-client", action="store_true", help="skip the Python client pulls")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the best of each is reported (default 2)")
    parser.add_argument("--client-from", metavar="DIR",
                        help="also pull with the Python client of another checkout (e.g. a git worktree of an "
                             "earlier commit), alternating with this one, to compare the two in one run")
    parser.add_argument("--client-only", action="store_true", help="skip the HTTP loops, pull with the clients only")
    parser.add_argument("--pg-prefix", default="bench_",
                        help="prefix of the database it seeds (default bench_; must start with bench_), "
                             "to keep one's runs apart from others' on a shared server")
    args = parser.parse_args(argv)
    if not args.pg_prefix.startswith("bench_"):
        parser.error("--pg-prefix must start with bench_")

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    url = seed_pg(args.rows, args.rows // 2, name=args.pg_prefix + pg_name(args.rows).removeprefix("bench_"), log=log)
    best: dict[tuple[str, int | str], PullStats] = {}

    def keep(name: str, page, st: PullStats) -> None:
        if (name, page) not in best or st.rows_per_s > best[(name, page)].rows_per_s:
            best[(name, page)] = st

    with Site(url, workers=args.workers, server=args.server) as site:
        # Limit and protocol alternate, so a load change on the shared machine hits both.
        for r in range(0 if args.client_only else args.rounds):
            for page in (50, 1000):
                log(f"round {r + 1}: raw SQL limit, page {page} ...")
                keep("limit", page, raw_limit(url, args.rows, page))
                log(f"round {r + 1}: v2 loop, $top={page} ...")
                keep("HTTP loop v2 (JS client query)", page, pull_v2(site.host, page))
            log(f"round {r + 1}: v3 loop ...")
            st = pull_v3(site.host)
            keep("HTTP loop v3 (CTK client query)", round(st.rows / max(1, st.requests)), st)
        if args.client_only:
            for page in (50, 1000):
                keep("limit", page, raw_limit(url, args.rows, page))
        if not args.skip_client:
            v3_pages = [p for (n, p) in best if n.startswith("HTTP loop v3")]
            v3_page = v3_pages[0] if v3_pages else 100
            for r in range(args.rounds if args.client_from else 1):
                for generation, page in (("v2", 50), ("v2", 1000), ("v3", 0)):
                    runs = [("", lambda: python_client_pull(site.host, generation, page or 50))]
                    if args.client_from:
                        runs.append((f" ({args.client_from})", lambda: python_client_pull_from(
                            args.client_from, site.host, generation, page or 50)))
                        if r % 2:
                            runs.reverse()
                    for label, fn in runs:
                        log(f"round {r + 1}: Python client{label} {generation} pull ...")
                        try:
                            st = fn()
                        except Exception as exc:  # report the others even if the client fails
                            log(f"  Python client{label} {generation} failed: {exc!r}")
                            continue
                        keep(f"Python client {generation}{label}", page or v3_page, st)
    limits = {page: best[("limit", page)] for page in (50, 1000)}
    results = [(name, page, st) for (name, page), st in best.items() if name != "limit"]

    rows = []
    for page in (50, 1000):
        lim = limits[page]
        rows.append(["limit: raw psycopg + json", page, lim.requests, lim.rows, lim.rows_per_s,
                     pct(lim.latencies, 50) * 1e3, pct(lim.latencies, 99) * 1e3, "100 %"])
    for name, page, st in results:
        ref = limits.get(page) or limits[50 if page < 500 else 1000]
        share = f"{100 * st.rows_per_s / ref.rows_per_s:.0f} %"
        p50 = pct(st.latencies, 50) * 1e3 if st.latencies else None
        p99 = pct(st.latencies, 99) * 1e3 if st.latencies else None
        rows.append([name, page, st.requests, st.rows, st.rows_per_s, p50, p99, share])
    print_table(
        f"Pull of {args.rows:,} rows on PostgreSQL, {args.server} {args.workers} workers, best of {args.rounds} "
        f"interleaved rounds ({machine_note()})",
        ["pull", "page", "requests", "rows", "rows/s", "p50 ms", "p99 ms", "of limit"],
        rows,
        note="'of limit' = rows/s as a share of the raw-SQL limit at the nearest page size, same run. "
             "Target: protocol pull >= 40 % of the limit.")
    clients = [(name, page, st) for name, page, st in results if getattr(st, "client_cpu", None)]
    if clients:
        print_table(
            "Python client: its own CPU per pull (HTTP, JSON, local SQLite writes), same run",
            ["pull", "page", "wall s", "client CPU s", "client CPU us/row", "CPU share of wall"],
            [[name, page, st.seconds, st.client_cpu, 1e6 * st.client_cpu / max(1, st.rows),
              f"{100 * st.client_cpu / st.seconds:.0f} %"] for name, page, st in clients])


if __name__ == "__main__":
    main()
