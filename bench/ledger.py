"""What the conflict and rejection ledger costs a push: CPU time per write, with and without it.

    .venv/bin/python bench/ledger.py [--ops 300] [--rounds 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offline_sync .venv/bin/python bench/ledger.py

In-process (Django's test client through the whole handler stack, the test settings, SQLite in
memory unless ``DATABASE_URL`` names another database), so the figure is the server's own CPU
time (``time.process_time``) and not the shared machine's wall clock. Each round pushes what a
device pushes (v2): ``POST`` a new row, then a conditional ``PATCH`` (``If-Match``) of it;
each round runs ``RECORD_REJECTIONS`` on and off back to back, in alternating order (ABBA),
and the median of the rounds' on/off ratios is reported. The
refused path (a stale ``If-Match``, 412) is measured the same way, for information: that is
where the ledger writes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from django_offline_sync.models import SyncRejection  # noqa: E402

HEADERS = {"HTTP_ZUMO_API_VERSION": "2.0.0"}


def push(client: Client, ops: int) -> float:
    """CPU seconds for ``ops`` successful writes (half inserts, half conditional updates)."""
    start = time.process_time()
    for n in range(ops // 2):
        item_id = uuid.uuid4().hex
        body = json.dumps({"id": item_id, "text": f"task {n}", "priority": n % 5})
        created = client.post("/tables/Task", body, content_type="application/json", **HEADERS)
        assert created.status_code == 201, created.content
        etag = created["ETag"]
        patch = json.dumps({"text": f"edited {n}", "complete": True})
        updated = client.patch(
            f"/tables/Task/{item_id}", patch, content_type="application/json", HTTP_IF_MATCH=etag, **HEADERS
        )
        assert updated.status_code == 200, updated.content
    return time.process_time() - start


def refuse(client: Client, ops: int) -> float:
    """CPU seconds for ``ops`` conditional updates refused with 412 (a stale version)."""
    body = json.dumps({"id": uuid.uuid4().hex, "text": "target"})
    created = client.post("/tables/Task", body, content_type="application/json", **HEADERS)
    item_id, stale = created.json()["id"], created["ETag"]
    client.patch(f"/tables/Task/{item_id}", json.dumps({"text": "moved on"}), content_type="application/json",
                 **HEADERS)
    start = time.process_time()
    for n in range(ops):
        refused = client.patch(f"/tables/Task/{item_id}", json.dumps({"text": f"late {n}"}),
                               content_type="application/json", HTTP_IF_MATCH=stale, **HEADERS)
        assert refused.status_code == 412
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=300, help="writes per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per setting (alternating)")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    client = Client()
    push(client, 40)  # warm caches (serializers, query compilation) before measuring
    refuse(client, 20)
    rates: dict[tuple[str, bool], list[float]] = {}
    for round_ in range(args.rounds):
        # ABBA: the order alternates, so drift (a growing table, a busier machine) cancels.
        order = (True, False) if round_ % 2 == 0 else (False, True)
        for path, run in (("push", push), ("refused", refuse)):
            for record in order:
                with override_settings(OFFLINE_SYNC={"RECORD_REJECTIONS": record}):
                    rates.setdefault((path, record), []).append(args.ops / run(client, args.ops))
    from django.db import connection

    print(f"database: {connection.vendor}; {args.ops} writes x {args.rounds} rounds per setting; "
          f"writes per CPU-second (median of rounds), and the median of the rounds' on/off ratios")
    print(f"{'path':<10} {'ledger on':>10} {'ledger off':>11} {'on/off':>7}")
    for path in ("push", "refused"):
        on, off = rates[(path, True)], rates[(path, False)]
        ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
        print(f"{path:<10} {statistics.median(on):>10.0f} {statistics.median(off):>11.0f} {ratio:>7.3f}")
    print(f"ledger entries written: {SyncRejection.objects.count()}")


if __name__ == "__main__":
    main()
