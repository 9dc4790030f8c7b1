"""Fuzz the example site's tables from its OpenAPI schema, against a live server.

Usage (from the repository root, after ``pip install -e ".[fuzz]"``)::

    .venv/bin/python fuzz/run_fuzz.py [--budget 210] [--max-examples 40] [--seed 0]

What it does:

1. Makes a fresh SQLite database in a temporary directory, migrates it, loads the demo data
   (``load_demo_data``), creates the ``admin`` superuser and the demo ``inspector``'s API
   token (``ensure_admin``), and gives a second user an Inspection row the inspector must
   never reach.
2. Starts the site (``fuzz.settings``: the example settings, logging 500 tracebacks to the
   server log) under gunicorn on 127.0.0.1 on a free port, and fetches the drf-spectacular
   schema from ``/api/schema/``.
3. Runs ``schemathesis run`` once per client generation, with ``ZUMO-API-VERSION: 2.0.0``
   and then ``3.0.0``, on every operation under ``/tables/`` (Task, Note, Inspection: list,
   insert, read, replace, patch, delete, undelete), sending ``Authorization: Token …`` for
   the inspector. Phases: examples, coverage (boundary and negative values), fuzzing and
   stateful. Checks:

   * ``not_a_server_error``: no answer >= 500;
   * ``no_write_on_4xx`` (``fuzz/hooks.py``): a POST, PUT, PATCH or DELETE answered 4xx
     wrote nothing. Before each write the hook reads every row of the example app's tables
     and of ``offline_sync_clock`` (soft-deleted rows included, with versions and stamps)
     from the server's database; after a 4xx it reads them again and fails on any
     difference. Requests go one at a time (``--workers 1``) to a server that has no other
     client, so a difference is that request's.

   Half of the requests to ``/tables/{T}/{id}`` are aimed at existing rows, with a current,
   stale or malformed version in ``If-Match`` or in the body, so that fuzzed bodies reach
   real rows and preconditions rather than 404s (``fuzz/hooks.py`` says how). Response
   schema conformance is not checked: the list shapes differ per generation.
4. Prints, per run, the answers by method and status (the server's access log) and the
   errors by status and ``errorCode``, so that a run shows what it reached.
5. Stops the server whatever happens (its process group: gunicorn and its workers) and
   exits 1 if any run found a failure. Schemathesis prints each failure with a curl command
   reproducing it (method, URL, headers, body); the server log's tracebacks follow.
   ``--versions v1,2.0.0,3.0.0`` adds a v1 client (``X-ZUMO-APPLICATION``, no version).

``--database-url`` fuzzes a scratch PostgreSQL or MariaDB database instead of SQLite (it is
migrated and seeded, and keeps the rows the run adds).

Time: ``--budget`` seconds in all (default 210). Each generation's run gets an equal share
of what is left after setup as schemathesis' ``--max-time`` (fuzzing repeats until it is
spent), ``--max-examples`` bounds each operation's cases per pass, and a run that overstays
its share by more than a minute is killed and counted as a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("2.0.0", "3.0.0")
#: Seconds kept for stopping the server and printing after the runs.
RESERVE = 10
#: Seconds a schemathesis run may overstay its --max-time (shrinking, the last cases) before it is killed.
GRACE = 60

OTHER_USER_SQL = """
from django.contrib.auth import get_user_model
from example_project.tasks.models import Inspection
other, _ = get_user_model().objects.get_or_create(username="other")
Inspection.objects.get_or_create(id="other-users-row", defaults={"owner": other, "site": "x", "pipe_id": "1"})
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=210, help="seconds for the whole run (default 210)")
    parser.add_argument("--max-examples", type=int, default=40, help="cases per operation and pass (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="schemathesis' and the hooks' random seed")
    parser.add_argument(
        "--versions",
        default=",".join(VERSIONS),
        help="ZUMO-API-VERSION values, comma-separated; v1 for a v1 client (default 2.0.0,3.0.0)",
    )
    parser.add_argument(
        "--database-url",
        help="a scratch database to migrate, seed and fuzz instead of a fresh SQLite file (rows are added to it)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the database, schema and logs here (default: a temp dir)")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed ({result.returncode})")
    return result.stdout


def prepare_database(env: dict[str, str]) -> str:
    """Migrate, seed, and return the inspector's API token."""
    manage(env, "migrate", "--noinput")
    manage(env, "load_demo_data")
    # One argument, "--password=…": a generated password may begin with "-", which argparse
    # would take for an option if it came as a separate argument (1 run in 64).
    out = manage(env, "ensure_admin", f"--password={secrets.token_urlsafe(16)}")
    manage(env, "shell", "-c", OTHER_USER_SQL)
    match = re.search(r"Authorization: Token (\w+)", out)
    if match is None:
        raise SystemExit("ensure_admin printed no token:\n" + out)
    return match[1]


def stop(process: subprocess.Popen[bytes], name: str) -> None:
    """End ``process`` and the processes it started (its own session), politely and then not."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
    print(f"fuzz: {name} (pid {process.pid}) did not stop", file=sys.stderr)


def wait_for_schema(base: str, server: subprocess.Popen[bytes], path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}) before answering")
        try:
            with urllib.request.urlopen(f"{base}/api/schema/?format=json", timeout=10) as response:
                path.write_bytes(response.read())
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"no schema at {base}/api/schema/ after {timeout:.0f} s") from None
            time.sleep(0.3)


def version_headers(version: str) -> list[str]:
    """``ZUMO-API-VERSION: …``; ``v1`` stands for a v1 client, which sends ``X-ZUMO-APPLICATION`` instead."""
    if version == "v1":
        return ["--header", "X-ZUMO-APPLICATION: fuzz"]
    return ["--header", f"ZUMO-API-VERSION: {version}"]


def schemathesis_command(args: argparse.Namespace, schema: Path, base: str, version: str, token: str, max_time: int):
    return [
        sys.executable, "-m", "schemathesis.cli", "run", str(schema),
        "--url", base,
        "--include-path-regex", "^/tables/",
        *version_headers(version),
        "--header", f"Authorization: Token {token}",
        "--checks", "not_a_server_error,no_write_on_4xx",
        "--workers", "1",  # no_write_on_4xx needs one request at a time
        "--max-examples", str(args.max_examples),
        "--max-time", str(max_time),
        "--seed", str(args.seed),
        "--request-timeout", "30",
        "--generation-database", "none",  # nothing written to the work tree
        "--output-sanitize", "false",  # the token is a throwaway: show complete reproductions
        "--no-color",
    ]  # fmt: skip


def server_errors(log: Path, start: int) -> str:
    """The part of the server log written since ``start`` (bytes), if it holds an error."""
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read().decode("utf-8", "replace")
    return text if re.search(r"ERROR|Traceback", text) else ""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def status_counts(access_log: Path, start: int) -> str:
    """``POST 201×12, POST 400×310, …`` from the access log written since ``start``."""
    with access_log.open("rb") as handle:
        handle.seek(start)
        counts = Counter(line.decode("ascii", "replace").strip() for line in handle if line.strip())
    return ", ".join(f"{key}×{n}" for key, n in sorted(counts.items()))


def error_codes(responses: Path) -> str:
    """``400 unknown_field×310, 404 not_found×52, …`` from the hooks' log of error answers."""
    if not responses.exists():
        return "none"
    counts = Counter(line.split(" ", 1)[1].strip() for line in responses.read_text().splitlines() if " " in line)
    return ", ".join(f"{key}×{n}" for key, n in sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.budget
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="offline-sync-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("errors-*.log"):
        stale.unlink()
    database = args.database_url
    if database is None:
        for stale in workdir.glob("db.sqlite3*"):
            stale.unlink()
        database = f"sqlite:///{workdir / 'db.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fuzz.settings",
        "DATABASE_URL": database,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "FUZZ_SEED": str(args.seed),
        "SCHEMATHESIS_HOOKS": "fuzz.hooks",
    }
    # A SIGTERM (CI cancelling) unwinds through the finally blocks below like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)

    token = prepare_database(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path, access_path = workdir / "server.log", workdir / "access.log"
    failures: list[str] = []
    passed: list[str] = []
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "example_project.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60", "--graceful-timeout", "5",
             "--access-logfile", str(access_path), "--access-logformat", "%(m)s %(s)s"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            schema = workdir / "schema.json"
            wait_for_schema(base, server, schema)
            print(f"fuzz: server {base} (pid {server.pid}), database {database}, ready in "
                  f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
            for index, version in enumerate(versions):
                share = int((deadline - time.monotonic() - RESERVE) / (len(versions) - index))
                if share < 5:
                    failures.append(f"ZUMO-API-VERSION {version}: no time left in the budget")
                    continue
                print(f"\nfuzz: ZUMO-API-VERSION {version}, {share} s", flush=True)
                log_start, access_start = log_path.stat().st_size, access_path.stat().st_size
                run = subprocess.Popen(
                    schemathesis_command(args, schema, base, version, token, share),
                    cwd=workdir, start_new_session=True,  # its caches go to workdir
                    env={
                        **env,
                        "FUZZ_GENERATION": "v1" if version == "v1" else f"v{version[0]}",
                        "FUZZ_RESPONSES": str(workdir / f"errors-{version}.log"),
                    },
                )  # fmt: skip
                try:
                    code = run.wait(share + GRACE)
                except subprocess.TimeoutExpired:
                    code = None
                finally:
                    stop(run, "schemathesis")
                if code is None:
                    failures.append(f"ZUMO-API-VERSION {version}: schemathesis overran its {share} s, stopped")
                elif code != 0:
                    failures.append(f"ZUMO-API-VERSION {version}: schemathesis found failures (exit {code})")
                else:
                    passed.append(version)
                print(f"fuzz: {version} requests by method and status: {status_counts(access_path, access_start)}")
                print(
                    f"fuzz: {version} errors by status and errorCode: {error_codes(workdir / f'errors-{version}.log')}"
                )
                errors = server_errors(log_path, log_start)
                if errors:
                    print(f"\nfuzz: the server's log during the {version} run:\n{errors}", flush=True)
            if server.poll() is not None:
                failures.append(f"the server exited ({server.returncode}) during the run")
        finally:
            stop(server, "the server")

    elapsed = time.monotonic() - started
    if failures:
        print(f"\nfuzz: FAILED after {elapsed:.0f} s (database, schema and server log kept in {workdir}):")
        for failure in failures:
            print(f"  - {failure}")
    else:
        print(f"\nfuzz: ZUMO-API-VERSION {', '.join(versions)} in {elapsed:.0f} s: no 5xx, no write by a 4xx")
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    # One closing line in the plain form CI reads: a generation's run is one test.
    print(f"fuzz: {len(passed)} passed, {len(versions) - len(passed)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
