"""Server memory over a 1M-row pull on PostgreSQL: RSS of every gunicorn process, sampled during the pull.

    .venv/bin/python bench/memory.py

The site is warmed (a few pages, so imports and caches are in place), RSS is read from
/proc for the master and each worker, then one client pulls every row, twice in a row
(``--passes``), while RSS is sampled every 0.5 s. A plateau (the allocator keeping the
high-water mark of one large page) stops growing after the first pages and stays flat over
the second pull; a leak grows with the pages, in both pulls. Target: growth < 50 MB.
"""

from __future__ import annotations

import argparse

from common import Site, log, machine_note, print_table, pull_v2, pull_v3
from datagen import seed_pg


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--loop", choices=["v2", "v3"], default="v2",
                        help="v2: JS client query with $top 1000 (default); v3: CTK client, nextLink pages")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--passes", type=int, default=2,
                        help="full pulls in a row (default 2): a leak keeps growing in the second, a plateau does not")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples (default 0.5)")
    args = parser.parse_args(argv)

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    url = seed_pg(args.rows, args.rows // 2, log=log)
    with Site(url, workers=args.workers) as site:
        for _ in range(2 * args.workers):
            pull_v2(site.host, 1000, max_requests=3)
            pull_v3(site.host, max_requests=3)
        before = site.rss()
        pids = list(before)
        # Each pull runs in a thread while RSS of every process is sampled, to tell a plateau
        # (the allocator keeps the high-water mark of one page) from growth with the pages.
        import threading
        import time

        series: list[tuple[int, float, list[float]]] = []  # (pass, seconds, MB per process)
        ends: list[dict[int, int]] = []
        t0 = time.perf_counter()
        for n in range(args.passes):
            log(f"pass {n + 1}: pulling {args.rows} rows ({args.loop}) ...")
            box: dict = {}
            worker = threading.Thread(target=lambda: box.update(
                st=pull_v2(site.host, 1000) if args.loop == "v2" else pull_v3(site.host)))
            worker.start()
            while worker.is_alive():
                worker.join(args.interval)
                rss = site.rss()
                series.append((n + 1, time.perf_counter() - t0, [rss.get(pid, 0) / 1024 for pid in pids]))
            st = box["st"]
            ends.append(site.rss())
    for n in range(args.passes):
        part = [s for s in series if s[0] == n + 1]
        picks = [part[min(len(part) - 1, round(k * (len(part) - 1) / 10))] for k in range(11)]
        log(f"pass {n + 1}, per-worker RSS (MB) at 0 %, 10 %, ... 100 % of the pull's duration:")
        for i, _pid in enumerate(pids[1:], start=1):
            log(f"  worker {i}: " + " ".join(f"{p[2][i]:.0f}" for p in picks))
    rows = []
    for n, pid in enumerate(before):
        role = "master" if n == 0 else f"worker {n}"
        b = before[pid] / 1024
        rows.append([role, b] + [end.get(pid, 0) / 1024 - b for end in ends])
    total_b = sum(before.values()) / 1024
    rows.append(["all processes", total_b] + [sum(end.values()) / 1024 - total_b for end in ends])
    print_table(
        f"Server RSS (MB) over {args.passes} pulls of {st.rows:,} rows in {st.requests:,} requests each "
        f"({args.loop}), gunicorn {args.workers} workers ({machine_note()})",
        ["process", "before"] + [f"growth after pull {n + 1}" for n in range(args.passes)],
        rows,
        note="Target: growth < 50 MB. Growth that stops after the first pages and does not rise in a "
             "second full pull is the allocator's high-water mark (a plateau), not a leak.")


if __name__ == "__main__":
    main()
