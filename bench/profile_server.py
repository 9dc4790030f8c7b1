"""Where the served site's time goes, sampled by py-spy in the gunicorn worker under load.

    .venv/bin/python bench/profile_server.py --seconds 15

One gunicorn worker (so one process holds every request), one client on a keep-alive
connection, PostgreSQL. Cases: the JS client's v2 pull page (``$top`` 50, random positions),
a single-row insert (POST), a conditional update (PATCH + If-Match). py-spy samples the
worker with idle frames included, so time spent waiting on PostgreSQL (and on the commit's
WAL flush) shows up as the psycopg wait, and time between requests as gunicorn's accept/read.

Reported per case: the share of the worker's request time (samples outside the wait for the
next request) spent inside chosen frames (inclusive), and the functions with the most self
time. Sampling has no per-call overhead, unlike cProfile, so the shares are realistic.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import subprocess
import threading
import time
import uuid

from common import TABLE, V2, VENV_BIN, WORK, Http, Site, log, machine_note, print_table, v2_url
from datagen import iso_ms, ms_to_dt, pg_name, seed_pg, task_ms
from push import drop, fresh_clone

# (label, regex on one normalised frame "function (path:line)"); inclusive share of request samples.
FRAMES = [
    ("PostgreSQL round trips (psycopg waiting on the server)", r"^wait \(psycopg/connection.py"),
    ("  of which the commit", r"^(commit|_commit) \((django/db/backends|psycopg)/"),
    ("Django middleware (excl. the view)", None),
    ("DRF initial (auth, permissions, negotiation, throttles)", r"^initial \(rest_framework/views.py"),
    ("DRF finalize_response", r"^finalize_response \(rest_framework/views.py"),
    ("response rendering (JSON encode, content)",
     r"^(rendered_content|render) \((rest_framework/renderers.py|django/template/response.py)"),
    ("our OData query parse / translation", r"\(django_offline_sync/query/"),
    ("our pagination (paginate, cursor, links)", r"\(django_offline_sync/(pagination|cursor).py"),
    ("our representer (row -> wire dict)",
     r"^(from_values|from_instance|rows|render_many|entity) \(django_offline_sync/"),
    ("ORM: building the queryset (filter/order/values)",
     r"^(filter|exclude|order_by|values_list|_filter_or_exclude|add_q|_annotate|annotate) "
     r"\(django/db/models/(query|sql/query).py"),
    ("ORM: SQL compile", r"^(as_sql|compile|pre_sql_setup|setup_query|get_select) \(django/db/models/sql/compiler.py"),
    ("ORM: fetching rows (iterator, fetchmany)",
     r"^(fetchmany|results_iter|cursor_iter|<lambda>|__iter__) "
     r"\((psycopg/cursor.py|django/db/models/sql/compiler.py|django/db/models/query.py)"),
    ("DRF serializer: get_fields / deepcopy", r"^(get_fields|deepcopy) \((django_offline_sync/serializers.py|copy.py)"),
    ("DRF serializer: is_valid / run_validation", r"^(is_valid|run_validation|to_internal_value) \(rest_framework/"),
    ("model save (incl. clock and row SQL)", r"^save \(django_offline_sync/models.py"),
    ("  clock: stamping.reserve", r"^reserve \(django_offline_sync/stamping.py"),
    ("locked_object (SELECT … FOR UPDATE)", r"^locked_object \(django_offline_sync/"),
    ("transaction.atomic enter/exit", r"^(__enter__|__exit__) \(django/db/transaction.py"),
]


def normalise(frame: str) -> str:
    """``Class.method.<locals>.f (path:line)`` -> ``f (path:line)``."""
    name, _, rest = frame.partition(" (")
    return f"{name.split('.')[-1]} ({rest}" if rest else name


def record(pid: int, seconds: float, out) -> None:
    subprocess.run([str(VENV_BIN / "py-spy"), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250",
                    "--idle", "-f", "raw", "-o", str(out), "--nonblocking"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60)


def analyse(path, top: int) -> tuple[int, list, list]:
    stacks = []
    with open(path) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            stacks.append(([normalise(fr) for fr in stack.split(";")], int(count)))
    # A request is what runs below gunicorn's handle_request; the rest (accept, waiting for
    # the next connection, closing the last one) is time between requests.
    busy = [(f, c) for f, c in stacks if any(fr.startswith("handle_request (gunicorn/") for fr in f)]
    total = sum(c for _, c in busy) or 1
    mw = re.compile(r"^__call__ \((django/utils/deprecation.py|django/middleware/|django/contrib/)")
    view = re.compile(r"^view \((rest_framework/viewsets.py|django/views/)")
    shares = []
    for label, pattern in FRAMES:
        if pattern is None:
            n = sum(c for f, c in busy if any(mw.search(x) for x in f) and not any(view.search(x) for x in f))
        else:
            rx = re.compile(pattern)
            n = sum(c for f, c in busy if any(rx.search(x) for x in f))
        shares.append([label, f"{100 * n / total:.1f} %"])
    selfs: collections.Counter = collections.Counter()
    for f, c in busy:
        selfs[f[-1]] += c
    ranked = [[f"{100 * c / total:.1f} %", name[:110]] for name, c in selfs.most_common(top)]
    return total, shares, ranked


def task_body(n: int, item_id: str) -> bytes:
    return json.dumps({"id": item_id, "text": f"profiled task {n}", "complete": False, "priority": n % 5,
                       "dueDate": "2024-06-01T12:00:00.000Z"}).encode()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="sampling time per case (default 15)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cases", nargs="+", default=["pull50", "insert", "update"])
    parser.add_argument("--analyse-only", action="store_true", help="re-read the last samples, no new run")
    args = parser.parse_args(argv)

    if args.analyse_only:
        for case in args.cases:
            total, shares, ranked = analyse(WORK / f"pyspy_{case}.txt", args.top)
            print_table(f"{case}: {total} request samples", ["inside (inclusive)", "share of request samples"], shares)
            print_table(f"{case}: top self time", ["share", "function (file:line)"], ranked)
        return

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    seed_pg(args.rows, args.rows // 2, log=log)
    WORK.mkdir(exist_ok=True)
    # Writes go to a copy, so the seeded table other benches reuse keeps exactly its rows.
    clone = f"{pg_name(args.rows)}_profile"
    url = fresh_clone(pg_name(args.rows), clone)
    try:
        run_cases(args, url)
    finally:
        drop(clone)


def run_cases(args, url: str) -> None:
    with Site(url, workers=1) as site:
        worker_pid = site.pids()[1]
        for case in args.cases:
            http_ = Http(site.host, V2)
            stop = threading.Event()
            done = [0]
            owned: list[tuple[str, str]] = []
            rng = random.Random(3)

            def one(n: int) -> None:
                if case == "pull50":
                    http_.get_json(v2_url(iso_ms(ms_to_dt(task_ms(rng.randrange(args.rows - 100)))), 50))
                elif case == "insert" or not owned:
                    item_id = uuid.uuid4().hex
                    status, _, data = http_.request("POST", TABLE, task_body(n, item_id))
                    assert status == 201, data[:200]
                    owned.append((item_id, json.loads(data)["version"]))
                else:
                    k = n % len(owned)
                    item_id, version = owned[k]
                    body = json.dumps({"text": f"edited {n}", "complete": n % 2 == 0}).encode()
                    status, _, data = http_.request("PATCH", f"{TABLE}/{item_id}", body,
                                                    headers={"If-Match": f'"{version}"'})
                    assert status == 200, data[:200]
                    owned[k] = (item_id, json.loads(data)["version"])

            if case == "update":
                for n in range(200):
                    one(n)
            for n in range(50):  # warm
                one(n)

            def load() -> None:
                n = 1000
                while not stop.is_set():
                    one(n)
                    n += 1
                    done[0] += 1

            thread = threading.Thread(target=load, daemon=True)
            out = WORK / f"pyspy_{case}.txt"
            t0 = time.perf_counter()
            thread.start()
            log(f"sampling the worker for {args.seconds:.0f} s under '{case}' load ...")
            record(worker_pid, args.seconds, out)
            stop.set()
            thread.join(60)
            wall = time.perf_counter() - t0
            http_.close()
            total, shares, ranked = analyse(out, args.top)
            print_table(f"{case}: {done[0] / wall:,.0f} requests/s with one client, one worker; "
                        f"{total} request samples ({machine_note()})",
                        ["inside (inclusive)", "share of request samples"], shares)
            print_table(f"{case}: top self time", ["share", "function (file:line)"], ranked)


if __name__ == "__main__":
    main()
