"""Query plans of the SQL the table views run for pull pages, on the seeded PostgreSQL table.

    .venv/bin/python bench/plans.py --rows 1000000

Requests go through the real URL conf in-process (Django test client); every SELECT they
issue on the Task table is re-run under ``EXPLAIN (ANALYZE, BUFFERS)``. Each plan is checked
for what keeps a page's cost flat: a scan of the (updated_at, id) index, no Sort node, no
Seq Scan, and no OFFSET where the server controls paging (the v3 nextLink).
"""

from __future__ import annotations

import argparse
import re
import sys
from urllib.parse import quote

from common import BENCH, TABLE, inprocess_clients, next_url, v2_url, v3_first_url
from datagen import iso_ms, ms_to_dt, pg_name, task_ms


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="which seeded table (default 1M)")
    parser.add_argument("--verbose", action="store_true", help="print every plan in full")
    args = parser.parse_args(argv)

    v2, v3 = inprocess_clients(args.rows)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    mid = iso_ms(ms_to_dt(task_ms(args.rows // 2)))
    first = v3.get(v3_first_url(mid))
    nxt = first.json().get("nextLink")
    cases = [
        ("v2 ge token, $top 50 (JS client)", v2, v2_url(mid, 50), False),
        ("v2 ge token, $top 50, $skip 50 (client skip)", v2, v2_url(mid, 50, 50), True),
        ("v2 .NET form: $skip=0, $inlinecount", v2,
         f"{TABLE}?$filter=" + quote(f"(updatedAt ge datetimeoffset'{mid}')", safe="")
         + "&$orderby=updatedAt&$skip=0&$top=50&__includeDeleted=true&$inlinecount=allpages", False),
        ("v3 gt cast(token), $count=true (CTK client)", v3, v3_first_url(mid), False),
    ]
    if nxt:
        cases.append(("v3 nextLink page (server-controlled)", v3, next_url(nxt), False))
    print(f"\nQuery plans on {pg_name(args.rows)} ({args.rows:,} Task rows)")
    for label, client, url, offset_allowed in cases:
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get(url)
        print(f"\n== {label}  [{resp.status_code}]\n   GET {url}")
        for q in ctx.captured_queries:
            sql = q["sql"]
            if "tasks_task" not in sql or not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + sql)
                plan = [r[0] for r in cur.fetchall()]
            text = "\n".join(plan)
            is_count = bool(re.search(r"\bCOUNT\(", sql, re.I))
            checks = {
                "index (updated_at, id)": "tasks_task_updated" in text,
                "no Sort": "Sort" not in text or is_count,
                "no Seq Scan": "Seq Scan" not in text,
                "no OFFSET": " OFFSET " not in sql.upper() or offset_allowed,
                # An OFFSET in disguise: the scan reads rows already sent and filters them out.
                "no skipped-row scan": is_count or all(
                    int(m) <= 2 for m in re.findall(r"Rows Removed by Filter: (\d+)", text)),
            }
            flags = "  ".join(f"{k}: {'ok' if v else 'NO'}" for k, v in checks.items())
            exec_ms = next((line.strip() for line in plan if line.strip().startswith("Execution Time")), "")
            print(f"   {'COUNT' if is_count else 'page '} SQL: {sql[:400]}{' …' if len(sql) > 400 else ''}")
            print(f"   -> {flags}   {exec_ms}")
            if args.verbose or not all(checks.values()):
                print("      " + "\n      ".join(plan))


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
