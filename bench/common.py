"""Shared harness for the benches: servers, HTTP loops, RSS, percentiles and result tables.

Everything runs on loopback, every loop is bounded, and every server a bench starts is
stopped by it (context managers, plus an atexit guard).
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
VENV_BIN = ROOT / ".venv" / "bin"
PEER_DIR = BENCH / "peer"
TABLE = "/tables/Task"
V2 = {"ZUMO-API-VERSION": "2.0.0"}
V3 = {"ZUMO-API-VERSION": "3.0.0"}
EPOCH_ISO = "1970-01-01T00:00:00.000Z"

sys.path[:0] = [str(BENCH), str(ROOT)]
_started: list[subprocess.Popen] = []


@atexit.register
def _stop_leftovers() -> None:
    for proc in _started:
        if proc.poll() is None:
            proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_note() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores (shared), load avg {load}"


# -- processes and memory -------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except FileNotFoundError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (from /proc; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class _Server:
    name = "server"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log = None

    @property
    def host(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def _spawn(self, args: list[str], env: dict, cwd: Path, logname: str) -> None:
        WORK.mkdir(exist_ok=True)
        # The server writes to this file for its whole life; stop() closes it.
        self.log = open(WORK / logname, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _started.append(self.proc)

    def wait_ready(self, headers: dict, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection(*self.host, timeout=10)
                conn.request("GET", f"{TABLE}?$top=1", headers=headers)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    return
                raise RuntimeError(f"{self.name} answered {resp.status}")
            except (ConnectionError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in {timeout}s")

    def pids(self) -> list[int]:
        """The server's processes: the master and its workers (gunicorn), or node alone."""
        return [self.proc.pid, *children(self.proc.pid)] if self.proc else []

    def rss(self) -> dict[int, int]:
        return {pid: rss_kb(pid) for pid in self.pids()}

    def cpu(self) -> float:
        """CPU seconds the server (master and workers) has used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.log:
            self.log.close()
            self.log = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


#: Application servers a bench can run the site under (``--server``).
SERVERS = ("gunicorn", "granian")


class Site(_Server):
    """The example site on ``database_url`` under gunicorn (sync workers, or gthread with
    ``threads``) or granian (its WSGI interface, one thread per worker, keep-alive)."""

    def __init__(self, database_url: str, workers: int = 2, threads: int = 1, env: dict | None = None,
                 server: str = "gunicorn") -> None:
        super().__init__()
        if server not in SERVERS:
            raise ValueError(f"server must be one of {SERVERS}")
        self.database_url = database_url
        self.workers = workers
        self.threads = threads
        self.extra_env = env or {}
        self.server = server
        self.name = server

    def start(self) -> None:
        self.port = free_port()
        # BENCH_DJANGO_SETTINGS picks another settings module on the bench path, to measure a
        # settings change against bench_settings in the same way.
        settings_module = os.environ.get("BENCH_DJANGO_SETTINGS", "bench_settings")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": self.database_url,
               "PYTHONPATH": f"{BENCH}:{ROOT}:{WORK}", **self.extra_env}
        if self.server == "granian":
            args = [str(VENV_BIN / "granian"), "--interface", "wsgi", "example_project.wsgi:application",
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
                    "--blocking-threads", str(self.threads), "--log-level", "warning", "--backlog", "2048"]
        else:
            args = [str(VENV_BIN / "gunicorn"), "example_project.wsgi:application", "--workers", str(self.workers),
                    "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "300",
                    "--backlog", "2048"]
            if self.threads > 1:
                args += ["--threads", str(self.threads)]
        self._spawn(args, env, ROOT, f"{self.server}.log")
        self.wait_ready(V2)


def ensure_peer_installed(log=print) -> None:
    if (PEER_DIR / "node_modules" / "sqlite3" / "build" / "Release" / "node_sqlite3.node").exists():
        return
    log("  installing the Node peer (npm ci; sqlite3 builds from source, about two minutes) ...")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True,
                   stdout=subprocess.DEVNULL)


class Peer(_Server):
    """The reference azure-mobile-apps 4.0.2 server (bench/peer/app.js) on a SQLite file."""

    name = "node peer"

    def __init__(self, db_path: Path) -> None:
        super().__init__()
        self.db_path = Path(db_path)

    def start(self) -> None:
        ensure_peer_installed()
        self.port = free_port()
        env = {**os.environ, "PORT": str(self.port), "PEER_DB": str(self.db_path), "NODE_ENV": "production"}
        self._spawn(["node", str(PEER_DIR / "app.js")], env, PEER_DIR, "peer.log")
        self.wait_ready(V2)


# -- HTTP ---------------------------------------------------------------------------------------

class Http:
    """One keep-alive connection (reopened transparently when the server closes it)."""

    def __init__(self, host: tuple[str, int], headers: dict | None = None) -> None:
        self.conn = http.client.HTTPConnection(*host, timeout=120)
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.bytes = 0

    def request(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None):
        h = {**self.headers, **(headers or {})}
        if body is not None:
            h["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                self.conn.request(method, url, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt == 2:
                    raise
        self.bytes += len(data)
        return resp.status, resp, data

    def get_json(self, url: str):
        status, resp, data = self.request("GET", url)
        if status != 200:
            raise RuntimeError(f"GET {url} -> {status}: {data[:300]!r}")
        return json.loads(data), resp

    def close(self) -> None:
        self.conn.close()


def inprocess_clients(rows: int):
    """Django set up in this process on the seeded PostgreSQL table of ``rows`` rows.

    Returns a v2 and a v3 test client (no server, no network) for profiling and plans.
    """
    from datagen import pg_name, pg_url

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")
    os.environ["DATABASE_URL"] = pg_url(pg_name(rows))
    sys.path[:0] = [str(ROOT)]
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    return Client(HTTP_ZUMO_API_VERSION="2.0.0"), Client(HTTP_ZUMO_API_VERSION="3.0.0")


def v2_url(token: str, top: int, skip: int = 0) -> str:
    """The JS client's incremental pull query (docs/protocol.rst §4.2)."""
    flt = quote(f"(updatedAt ge datetimeoffset'{token}')", safe="")
    url = f"{TABLE}?$filter={flt}&$orderby=updatedAt&$top={top}&__includeDeleted=true"
    return url + (f"&$skip={skip}" if skip else "")


def v3_first_url(token: str | None) -> str:
    """The CTK client's pull query (docs/protocol.rst §4.3): strict gt, omitted at the epoch; no $top."""
    rest = "$orderby=updatedAt&$count=true&__includedeleted=true"
    if not token:
        return f"{TABLE}?{rest}"
    flt = quote(f"(updatedAt gt cast({token},Edm.DateTimeOffset))", safe="")
    return f"{TABLE}?$filter={flt}&{rest}"


class PullStats:
    def __init__(self) -> None:
        self.rows = 0
        self.requests = 0
        self.latencies: list[float] = []
        self.seconds = 0.0
        self.bytes = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def pull_v2(host, top: int, max_rows: int | None = None, max_requests: int = 10_000_000) -> PullStats:
    """A clean incremental pull as the v2 JS/Android clients do it: ge token, $skip on a stuck token,
    done on an empty page. Counts distinct rows."""
    http_ = Http(host, V2)
    st = PullStats()
    seen: set[str] = set()
    token, skip = EPOCH_ISO, 0
    t0 = time.perf_counter()
    while st.requests < max_requests:
        t = time.perf_counter()
        body, _ = http_.get_json(v2_url(token, top, skip))
        st.latencies.append(time.perf_counter() - t)
        st.requests += 1
        rows = body["results"] if isinstance(body, dict) else body
        if not rows:
            break
        for row in rows:
            seen.add(row["id"])
        last = rows[-1]["updatedAt"]
        if last == token:
            skip += len(rows)
        else:
            token, skip = last, 0
        if max_rows and len(seen) >= max_rows:
            break
    st.seconds = time.perf_counter() - t0
    st.rows = len(seen)
    st.bytes = http_.bytes
    http_.close()
    return st


def pull_v3(host, max_rows: int | None = None, max_requests: int = 10_000_000) -> PullStats:
    """A clean pull as the v3 CTK client does it: one query, then follow nextLink to the end."""
    http_ = Http(host, V3)
    st = PullStats()
    url = v3_first_url(None)
    t0 = time.perf_counter()
    while url and st.requests < max_requests:
        t = time.perf_counter()
        body, _ = http_.get_json(url)
        st.latencies.append(time.perf_counter() - t)
        st.requests += 1
        st.rows += len(body["items"])
        nxt = body.get("nextLink")
        url = next_url(nxt) if nxt else None
        if max_rows and st.rows >= max_rows:
            break
    st.seconds = time.perf_counter() - t0
    st.bytes = http_.bytes
    http_.close()
    return st


def next_url(next_link: str) -> str:
    """Resolve a v3 nextLink the way the CTK client does ({path}?{nextLink}), accepting the other forms."""
    if next_link.startswith("http"):
        from urllib.parse import urlsplit

        parts = urlsplit(next_link)
        return parts.path + ("?" + parts.query if parts.query else "")
    if next_link.startswith("/"):
        return next_link
    return f"{TABLE}?{next_link.lstrip('?')}"


# -- statistics and tables ------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value != value:  # NaN
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    if abs(value) >= 10:
        return f"{value:.1f}{unit}"
    return f"{value:.2f}{unit}"


def print_table(title: str, header: list[str], rows: list[list], note: str | None = None) -> None:
    cells = [[str(c) for c in header]] + [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}")
    print(line)
    for n, r in enumerate(cells):
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print(line)
    print(line)
    if note:
        print(note)
    sys.stdout.flush()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
