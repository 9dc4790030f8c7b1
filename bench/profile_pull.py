"""Where a pull page's time goes: cProfile over pages served in-process, self time by component.

    .venv/bin/python bench/profile_pull.py --rows 100000

Requests go through the full Django stack (middleware, URL conf, view, serializer, renderer)
via the test client against the seeded PostgreSQL table, without HTTP or gunicorn. Self time
of every function is summed per component (DB driver, ORM, serializer, renderer, query
translation, the rest) so the dominant cost of a row is visible, with the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

from common import BENCH, ROOT, inprocess_clients, next_url, print_table, v2_url, v3_first_url
from datagen import iso_ms, ms_to_dt, task_ms

COMPONENTS = [
    ("query translation ($filter/$orderby parse)", ("django_offline_sync/query/",)),
    ("our serializer / wire format", ("django_offline_sync/serializers.py", "django_offline_sync/wire.py",
                                      "django_offline_sync/models.py")),
    ("our view / paging / generations", ("django_offline_sync/",)),
    ("DRF serializer fields", ("rest_framework/serializers.py", "rest_framework/fields.py",
                               "rest_framework/relations.py", "rest_framework/utils/serializer_helpers.py")),
    ("JSON rendering", ("rest_framework/renderers.py", "json/encoder.py", "json/__init__.py",
                        "rest_framework/utils/encoders.py", "orjson")),
    ("DRF request/view", ("rest_framework/",)),
    ("psycopg (driver, type adaptation)", ("psycopg/", "psycopg_binary", "psycopg_c")),
    ("ORM: SQL compile", ("django/db/models/sql/", "django/db/models/expressions.py",
                          "django/db/models/lookups.py", "django/db/models/fields/__init__.py")),
    ("ORM: row -> model instances", ("django/db/models/base.py", "django/db/models/query.py",
                                     "django/db/backends/", "django/utils/dateparse.py")),
    ("datetime / base64 / stdlib", ("datetime", "base64", "<built-in method builtins.isinstance>")),
    ("Django request/middleware", ("django/",)),
]


def component(filename: str, funcname: str) -> str:
    key = f"{filename}:{funcname}"
    for name, needles in COMPONENTS:
        if any(n in key for n in needles):
            return name
    return "other (incl. builtins)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="which seeded PostgreSQL table")
    parser.add_argument("--pages", type=int, default=60, help="pages per case")
    parser.add_argument("--top", type=int, default=15, help="functions listed per case")
    args = parser.parse_args(argv)

    v2, v3 = inprocess_clients(args.rows)
    step = max(1, (args.rows - 2000) // args.pages)

    def v2_pages(top):
        def run():
            n = 0
            for k in range(args.pages):
                resp = v2.get(v2_url(iso_ms(ms_to_dt(task_ms(k * step))), top))
                assert resp.status_code == 200, resp.content[:300]
                n += len(resp.json() if top else [])
            return n
        return run

    def v3_pages():
        n = 0
        url = v3_first_url(None)
        for _ in range(args.pages):
            resp = v3.get(url)
            assert resp.status_code == 200, resp.content[:300]
            body = resp.json()
            n += len(body["items"])
            if not body.get("nextLink"):
                break
            url = next_url(body["nextLink"])
        return n

    cases = [("v2 $top 50", v2_pages(50)), ("v2 $top 1000", v2_pages(1000)), ("v3 nextLink pages", v3_pages)]
    summary = []
    for label, run in cases:
        run()  # warm
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        rows = run()
        prof.disable()
        wall = time.perf_counter() - t0
        stats = pstats.Stats(prof)
        total = sum(v[2] for v in stats.stats.values())
        by: dict[str, float] = {}
        for (filename, _line, funcname), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
            by[component(filename, funcname)] = by.get(component(filename, funcname), 0.0) + tt
        print(f"\n== {label}: {rows} rows in {args.pages} pages, {rows / wall:,.0f} rows/s in-process "
              f"(profiled), {1e6 * total / max(rows, 1):.1f} us of profiled time per row")
        for name, tt in sorted(by.items(), key=lambda kv: -kv[1]):
            print(f"   {100 * tt / total:5.1f} %  {name}")
        print("   top functions by self time:")
        ranked = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]
        for (filename, line, funcname), (_cc, nc, tt, _ct, _c) in ranked:
            short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            print(f"   {100 * tt / total:5.1f} %  {nc:>8} calls  {short}:{line} {funcname}")
        summary.append([label, rows / wall, 1e6 * total / max(rows, 1),
                        max(by.items(), key=lambda kv: kv[1])[0]])
    print_table("Profile summary (in-process, cProfile overhead included: compare ratios only)",
                ["case", "rows/s", "us/row", "dominant component"], summary)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
