"""CPU per request, in process: the site's WSGI handler called directly, no server, no sockets.

    .venv/bin/python bench/cpu.py                       # SQLite file, 10,000 rows
    .venv/bin/python bench/cpu.py --postgres               # PostgreSQL (its server's CPU not counted)
    .venv/bin/python bench/cpu.py --profile insert      # cProfile of one case, top functions
    BENCH_CALLERS='send|getattr' .venv/bin/python bench/cpu.py --profile insert  # ... and who calls these
    .venv/bin/python bench/cpu.py --callgrind           # instructions per request (valgrind)

The requests a device makes, exactly as bench/peer.py sends them (v2 headers): the JS client's
pull page at $top 50 and 1000, an insert (POST), a conditional update (PATCH + If-Match), and a
Datasync v3 client's next page (the ``nextLink`` of a first page: a signed keyset cursor, 100
rows). Two floor cases come first: an empty answer from a plain Django view through the site's
middleware (``django empty``), and from a DRF view with the table endpoints' own classes (``drf
empty``; ``bench_urls.py``). Each case runs ``--batches`` batches of ``--requests`` requests
and reports the best batch's process CPU time (user + sys) per request: on a shared machine the
best of several batches is a stable figure where wall-clock time is not. Database time spent in
the SQLite library counts (it runs in this process); a PostgreSQL server's does not.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import operator
import os
import pstats
import resource
import sys
import uuid
from pathlib import Path
from typing import Any

from common import TABLE, WORK, log, machine_note, print_table, v2_url, v3_first_url
from datagen import seed_pg, seed_sqlite, sqlite_path, task_ms
from peer import fresh_copy


def environ(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, Any]:
    path, _, query = url.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "HTTP_ZUMO_API_VERSION": "2.0.0",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body:
        env["CONTENT_TYPE"] = "application/json"
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


class Runner:
    def __init__(self, rows: int, v3_links: int = 0) -> None:
        from django.core.wsgi import get_wsgi_application

        self.app = get_wsgi_application()
        self.rows = rows
        self.v3_links_wanted = v3_links
        self.v3_links: list[str] = []
        self.owned: list[tuple[str, str]] = []
        self.n = 0
        self.status = ""

    def call(self, env: dict[str, Any]) -> bytes:
        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            self.status = status

        result = self.app(env, start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()

    def pull(self, top: int) -> None:
        # A page somewhere in the table, as an incremental pull meets it.
        self.n += 1
        i = (self.n * 7919) % max(self.rows - top, 1)
        token = _iso(task_ms(i))
        self.call(environ("GET", v2_url(token, top)))
        assert self.status.startswith("200"), self.status

    def empty(self, path: str) -> None:
        self.call(environ("GET", path))
        assert self.status.startswith("200"), self.status

    def v3_page(self) -> None:
        # The next links are made up front (first pages, with their count), at the first call:
        # the warm-up's, so that only the next pages are measured.
        if not self.v3_links:
            self._v3_first_pages()
        self.call(environ("GET", self.v3_links.pop(), headers={"ZUMO-API-VERSION": "3.0.0"}))
        assert self.status.startswith("200"), self.status

    def _v3_first_pages(self) -> None:
        for k in range(max(self.v3_links_wanted, 1)):
            i = ((k + 1) * 7919) % max(self.rows - 300, 1)
            data = self.call(environ("GET", v3_first_url(_iso(task_ms(i))), headers={"ZUMO-API-VERSION": "3.0.0"}))
            link = json.loads(data)["nextLink"]
            path = link.split("://", 1)[1].partition("/")[2] if "://" in link else link
            self.v3_links.append(path if path.startswith("/") else f"{TABLE}?{path.lstrip('?')}")

    def insert(self) -> None:
        self.n += 1
        item_id = uuid.uuid4().hex
        body = json.dumps({"id": item_id, "text": f"pushed task {self.n}", "complete": False,
                           "priority": self.n % 5, "dueDate": "2024-06-01T12:00:00.000Z"}).encode()
        data = self.call(environ("POST", TABLE, body))
        assert self.status.startswith("201"), (self.status, data)
        self.owned.append((item_id, json.loads(data)["version"]))

    def update(self) -> None:
        self.n += 1
        idx = self.n % len(self.owned)
        item_id, version = self.owned[idx]
        body = json.dumps({"text": f"edited {self.n}", "complete": self.n % 2 == 0}).encode()
        data = self.call(environ("PATCH", f"{TABLE}/{item_id}", body, {"If-Match": f'"{version}"'}))
        assert self.status.startswith("200"), (self.status, data)
        self.owned[idx] = (item_id, json.loads(data)["version"])


def _iso(ms: int) -> str:
    import datetime as dt

    d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


CASES = {
    # The floor (bench_urls.py): an empty answer through the site's middleware, then through DRF.
    "django empty": lambda r: r.empty("/bench/django-empty"),
    "drf empty": lambda r: r.empty("/bench/drf-empty"),
    "pull 50": lambda r: r.pull(50),
    "pull 1000": lambda r: r.pull(1000),
    "insert": lambda r: r.insert(),
    "update": lambda r: r.update(),
    "v3 page": lambda r: r.v3_page(),
}


def callgrind(args: argparse.Namespace) -> None:
    """Instructions per request: the same loops under ``valgrind --tool=callgrind``.

    A shared machine changes CPU time by tens of percent; an instruction count does not
    change at all from one run to the next, so it shows a 2 % saving that timings hide.
    """
    import subprocess
    import tempfile

    cases = [c.strip() for c in args.cases.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=_operator_call",
               "--dump-after=_operator_call", f"--callgrind-out-file={out}",
               sys.executable, __file__, "--callgrind-child", "--cases", ",".join(cases),
               "--requests", str(args.requests), "--warm", str(args.warm), "--rows", str(args.rows)]
        if args.postgres:
            cmd.append("--postgres")
            if args.pg_name:
                cmd += ["--pg-name", args.pg_name]
        log("running the cases under callgrind (a few minutes) ...")
        errors = Path(tmp) / "stderr.txt"
        # Under valgrind a page runs some 50 times slower: lift QUERY_TIMEOUT_MS out of its way
        # (the limit stays installed, so the same instructions run).
        env = {**os.environ, "BENCH_QUERY_TIMEOUT_MS": "3600000"}
        with open(errors, "w") as err:
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        if done.returncode:
            sys.exit(f"callgrind run failed:\n{errors.read_text()[-3000:]}")
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        rows = []
        for case, dump in zip(cases, dumps, strict=False):
            text = dump.read_text(errors="replace")
            total = next(int(line.split()[1]) for line in text.splitlines()
                         if line.startswith(("summary:", "totals:")))
            n = args.requests // 5 if case == "pull 1000" else args.requests
            rows.append([case, f"{total / n / 1e6:.3f}"])
    print_table(f"Instructions per request in process (callgrind), {args.requests} requests per case",
                ["case", "M instructions/request"], rows,
                note=f"{'PostgreSQL' if args.postgres else 'SQLite file'}, {args.rows:,} rows")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true",
                        help="a PostgreSQL database (bench_cpu_<rows> on 127.0.0.1:5432) instead of a SQLite file")
    parser.add_argument("--pg-name", default=None,
                        help="with --postgres: the database to seed and use (default bench_cpu_<rows>); "
                             "must start with bench_")
    parser.add_argument("--requests", type=int, default=200, help="requests per batch (pull 1000: a fifth)")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--profile", default=None, help="cProfile this case instead; print the top functions")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--warm", type=int, default=20, help="requests of each case before measuring")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per request under valgrind (deterministic; slow to start)")
    parser.add_argument("--callgrind-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.callgrind:
        callgrind(args)
        return
    if args.postgres:
        url = seed_pg(args.rows, 0, name=args.pg_name or f"bench_cpu_{args.rows}", log=log)
    else:
        seed_sqlite(args.rows, 0, log=log)
        db = fresh_copy(sqlite_path(args.rows, "site"), "cpu_site.sqlite3")
        url = f"sqlite:///{db}"
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    os.environ.setdefault("BENCH_URLCONF", "bench_urls")  # the floor cases' endpoints
    import django

    django.setup()
    measured = args.requests if args.callgrind_child or args.profile else args.requests * args.batches
    runner = Runner(args.rows, v3_links=args.warm + measured)
    for case in CASES:  # warm every path (imports, caches)
        for _ in range(args.warm):
            CASES[case](runner)

    if args.profile:
        profiler = cProfile.Profile()
        fn = CASES[args.profile]
        profiler.enable()
        for _ in range(args.requests):
            fn(runner)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        out.write("\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        if os.environ.get("BENCH_CALLERS"):
            pstats.Stats(profiler, stream=out).print_callers(os.environ["BENCH_CALLERS"])
        print(out.getvalue())
        return

    if args.callgrind_child:
        # Collection is on only inside operator.call() (a C function nothing else on the
        # request path calls), and a dump follows each call: one dump per case.
        for case in args.cases.split(","):
            n = args.requests // 5 if case.strip() == "pull 1000" else args.requests
            fn = CASES[case.strip()]
            operator.call(lambda: [fn(runner) for _ in range(n)])
        return

    rows = []
    for case in args.cases.split(","):
        fn = CASES[case.strip()]
        n = args.requests // 5 if case.strip() == "pull 1000" else args.requests
        best = (float("inf"), 0.0, 0.0)
        for _ in range(args.batches):
            t0 = resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(n):
                fn(runner)
            t1 = resource.getrusage(resource.RUSAGE_SELF)
            user, system = (t1.ru_utime - t0.ru_utime) / n, (t1.ru_stime - t0.ru_stime) / n
            best = min(best, (user + system, user, system))
        rows.append([case.strip(), f"{best[0] * 1e3:.3f}", f"{best[1] * 1e3:.3f}", f"{best[2] * 1e3:.3f}"])
    print_table(f"CPU per request in process, best of {args.batches} batches ({machine_note()})",
                ["case", "CPU ms/request", "user", "sys"], rows,
                note=f"{'PostgreSQL' if args.postgres else 'SQLite file'}, {args.rows:,} rows; {WORK}")


if __name__ == "__main__":
    main()
