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
from datagen import iso_ms, ms_to_dt, seed_pg, task_ms

# (label, regex on one frame "function (file:line)"); inclusive share of request samples.
FRAMES = [
    ("gunicorn: waiting for the next request", r"^(accept|wait|select|recv_into|readinto|parse) .*(gunicorn|socket|selectors)"),
    ("psycopg: waiting for PostgreSQL (query or commit)", r"^(wait_c|wait|_wait_conn|wait_select|wait_epoll) .*psycopg"),
    ("psycopg: execute (incl. wait)", r"^(execute|_execute_gen|_maybe_prepare_gen|_start_query) .*psycopg/"),
    ("transaction commit (incl. wait)", r"^(commit|_commit) .*(django/db/backends|psycopg)"),
    ("Django middleware chain (excl. view)", None),
    ("DRF dispatch: initial (auth, perms, negotiation)", r"^initial .*rest_framework/views.py"),
    ("DRF finalize_response + render", r"^(finalize_response|render|rendered_content) .*(rest_framework|django/template/response)"),
    ("JSON encoding", r"^(dumps|encode|iterencode|render) .*(json/|rest_framework/renderers.py|orjson)"),
    ("our query translation ($filter/$orderby)", r"django_offline_sync/query/"),
    ("our serializer: to_representation / rows", r"django_offline_sync/serializers.py"),
    ("our pagination", r"django_offline_sync/pagination.py"),
    ("our stamping (clock)", r"django_offline_sync/stamping.py"),
    ("DRF serializer fields / validation", r"rest_framework/(serializers|fields|validators).py"),
    ("ORM: SQL compile", r"django/db/models/sql/compiler.py"),
    ("ORM: model save / instance", r"^(save|save_base|_save_table|_do_insert|_do_update) .*django/db/models/base.py"),
    ("copy.deepcopy", r"^deepcopy .*copy.py"),
]


def record(pid: int, seconds: float, out) -> None:
    subprocess.run([str(VENV_BIN / "py-spy"), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250",
                    "--idle", "-f", "raw", "-o", str(out), "--nonblocking"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60)


def analyse(path, top: int) -> tuple[int, list, list]:
    stacks = []
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        stacks.append((frames, int(count)))
    idle_re = re.compile(FRAMES[0][1])
    busy = [(f, c) for f, c in stacks if not any(idle_re.search(fr) for fr in f)
            and any("django" in fr or "rest_framework" in fr for fr in f)]
    total = sum(c for _, c in busy) or 1
    shares = []
    for label, pattern in FRAMES[1:]:
        if pattern is None:
            # middleware: inside a middleware __call__ but not below the view
            mw = re.compile(r"^__call__ .*(django/middleware|django/contrib/.*/middleware|django/utils/deprecation)")
            view = re.compile(r"^(view|dispatch) .*(rest_framework/views.py|django/views/generic/base.py)")
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
    args = parser.parse_args(argv)

    log(f"seeding PostgreSQL with {args.rows} Task rows ...")
    url = seed_pg(args.rows, args.rows // 2, log=log)
    WORK.mkdir(exist_ok=True)
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
