"""Page latency at 10k vs 1M rows on PostgreSQL: the cost of a page must not grow with the table.

    .venv/bin/python bench/latency.py

For each table size the served site answers pages at random positions in the table:
* v2: the JS client's ``updatedAt ge <token>`` query, ``$top`` 50;
* v3 first page: the CTK client's ``updatedAt gt cast(<token>)`` query (``$count=true``),
  counted exactly (the default), and again on a site with ``COUNT_ESTIMATE_ABOVE`` set
  (``--count-estimate-above``, default 10,000: PostgreSQL's planner estimate above it);
* v3 nextLink page: the page a clean v3 pull requests after p rows (the server's keyset
  cursor, where the server controls paging), for random p.
Reported: p50/p99 per size and the 1M / 10k ratio (target <= 1.3x). Then the query plans of
the SQL the views run (bench/plans.py) on the large table.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from urllib.parse import quote

from common import BENCH, TABLE, V2, V3, Http, Site, log, machine_note, pct, print_table, v2_url, v3_first_url
from datagen import iso_ms, ms_to_dt, seed_pg, task_id, task_ms


def cursor_url(position: int, rows: int) -> str:
    """The nextLink a clean v3 pull (no filter: the first pull) follows at row ``position``.

    Made with the library's own cursor code and the site's SECRET_KEY, so the page requested
    is exactly the one the CTK client asks for after ``position`` rows of a clean pull,
    without walking the thousands of pages before it.
    """
    import django
    from django.conf import settings

    if not settings.configured:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")
        django.setup()
    from django_offline_sync import cursor as cursors

    params = [("$orderby", "updatedAt"), ("$count", "true"), ("__includedeleted", "true")]
    token = cursors.dump(cursors.Cursor(updated_ms=task_ms(position), last_id=task_id(position), count=rows),
                         cursors.query_digest(params, TABLE, caller=cursors.ANONYMOUS))
    return f"{TABLE}?$orderby=updatedAt&$count=true&__includedeleted=true&__cursor={quote(token, safe='')}"


ESTIMATED = "v3 first page ($count estimated)"


def sample_estimated(host, rows: int, samples: int, seed: int = 7) -> dict[str, list[float]]:
    """The v3 first page on a site with ``COUNT_ESTIMATE_ABOVE`` set, at the same positions."""
    rng = random.Random(seed)
    positions = [rng.randrange(0, rows - 2000) for _ in range(samples)]
    out: dict[str, list[float]] = {ESTIMATED: []}
    h3 = Http(host, V3)
    for warm in positions[:20]:
        h3.get_json(v3_first_url(iso_ms(ms_to_dt(task_ms(warm)))))
    for i in positions:
        url = v3_first_url(iso_ms(ms_to_dt(task_ms(i))))
        t = time.perf_counter()
        h3.get_json(url)
        out[ESTIMATED].append(time.perf_counter() - t)
    h3.close()
    return out


def sample(host, rows: int, samples: int, seed: int = 7) -> dict[str, list[float]]:
    rng = random.Random(seed)
    positions = [rng.randrange(0, rows - 2000) for _ in range(samples)]
    out: dict[str, list[float]] = {"v2 page ($top 50)": [], "v3 first page ($count)": [],
                                   "v3 nextLink page of a clean pull": []}
    h2, h3 = Http(host, V2), Http(host, V3)
    for warm in positions[:20]:  # warm both workers' imports and the index pages touched
        h2.get_json(v2_url(iso_ms(ms_to_dt(task_ms(warm))), 50))
    for i in positions:
        token = iso_ms(ms_to_dt(task_ms(i)))
        t = time.perf_counter()
        h2.get_json(v2_url(token, 50))
        out["v2 page ($top 50)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        h3.get_json(v3_first_url(token))
        out["v3 first page ($count)"].append(time.perf_counter() - t)
        url = cursor_url(i, rows)
        t = time.perf_counter()
        h3.get_json(url)
        out["v3 nextLink page of a clean pull"].append(time.perf_counter() - t)
    h2.close()
    h3.close()
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300, help="pages sampled per query and size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-plans", action="store_true", help="skip the EXPLAIN part")
    parser.add_argument("--count-estimate-above", type=int, default=10_000,
                        help="COUNT_ESTIMATE_ABOVE of the second site (the estimated v3 first page; default 10000)")
    args = parser.parse_args(argv)

    results = {}
    for rows in (args.small, args.large):
        log(f"seeding PostgreSQL with {rows} Task rows (1M takes about a minute the first time) ...")
        url = seed_pg(rows, rows // 2, log=log)
        with Site(url, workers=args.workers) as site:
            log(f"sampling {args.samples} pages at {rows} rows ...")
            results[rows] = sample(site.host, rows, args.samples)
        estimate_env = {"BENCH_COUNT_ESTIMATE_ABOVE": str(args.count_estimate_above)}
        with Site(url, workers=args.workers, env=estimate_env) as site:
            log(f"sampling {args.samples} v3 first pages at {rows} rows, "
                f"COUNT_ESTIMATE_ABOVE={args.count_estimate_above} ...")
            results[rows].update(sample_estimated(site.host, rows, args.samples))
    table = []
    for name in results[args.small]:
        small, large = results[args.small][name], results[args.large][name]
        s50, s99, l50, l99 = (pct(small, 50) * 1e3, pct(small, 99) * 1e3, pct(large, 50) * 1e3, pct(large, 99) * 1e3)
        table.append([name, s50, s99, l50, l99, f"{l50 / s50:.2f}x", f"{l99 / s99:.2f}x"])
    print_table(
        f"Page latency, {args.small:,} vs {args.large:,} rows, PostgreSQL, gunicorn {args.workers} workers "
        f"({machine_note()})",
        ["page", f"p50 ms {args.small // 1000}k", f"p99 ms {args.small // 1000}k",
         f"p50 ms {args.large // 1000}k", f"p99 ms {args.large // 1000}k", "p50 ratio", "p99 ratio"],
        table,
        note=f"{args.samples} pages at random positions per size. Target: large/small <= 1.3x.")
    if not args.no_plans:
        subprocess.run([sys.executable, str(BENCH / "plans.py"), "--rows", str(args.large)], check=False)


if __name__ == "__main__":
    main()
