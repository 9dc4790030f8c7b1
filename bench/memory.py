"""Server memory over a 1M-row pull on PostgreSQL: RSS of every gunicorn process before and after.

    .venv/bin/python bench/memory.py

The site is warmed (a few pages, so imports and caches are in place), RSS is read from
/proc for the master and each worker, one client pulls every row, and RSS is read again.
Target: growth < 50 MB.
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
    args = parser.parse_args(argv)

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    url = seed_pg(args.rows, args.rows // 2, log=log)
    with Site(url, workers=args.workers) as site:
        for _ in range(2 * args.workers):
            pull_v2(site.host, 1000, max_requests=3)
            pull_v3(site.host, max_requests=3)
        before = site.rss()
        log(f"pulling {args.rows} rows ({args.loop}) ...")
        # The pull runs in a thread while RSS is sampled, to tell a plateau from steady growth.
        import threading

        box: dict = {}
        worker = threading.Thread(target=lambda: box.update(
            st=pull_v2(site.host, 1000) if args.loop == "v2" else pull_v3(site.host)))
        worker.start()
        samples = []
        while worker.is_alive():
            worker.join(5)
            samples.append(sum(site.rss().values()) / 1024)
        st = box["st"]
        after = site.rss()
        quarter = max(1, len(samples) // 4)
        log("total RSS (MB) every 5 s: " + " ".join(f"{x:.0f}" for x in samples))
        log(f"growth over the last three quarters of the pull: {samples[-1] - samples[quarter - 1]:.1f} MB")
    rows = []
    for n, pid in enumerate(before):
        role = "master" if n == 0 else f"worker {n}"
        rows.append([role, before[pid] / 1024, after.get(pid, 0) / 1024, (after.get(pid, 0) - before[pid]) / 1024])
    total_b, total_a = sum(before.values()) / 1024, sum(after.values()) / 1024
    rows.append(["all processes", total_b, total_a, total_a - total_b])
    print_table(
        f"Server RSS (MB) over a pull of {st.rows:,} rows in {st.requests:,} requests ({args.loop}), "
        f"gunicorn {args.workers} workers ({machine_note()})",
        ["process", "before", "after", "growth"],
        rows,
        note="Target: growth < 50 MB.")


if __name__ == "__main__":
    main()
