"""A throwaway PostgreSQL primary with streaming replicas, on free ports in a temporary directory.

The replica tests and ``bench/write_ceiling.py`` need servers they may configure, pause and
throw away, without touching the machine's own cluster::

    with Cluster.start(replicas=1) as cluster:
        cluster.primary.url("offline_sync")      # postgres://postgres@127.0.0.1:PORT/offline_sync
        cluster.wait_replayed()                  # every replica has replayed the primary's WAL

The primary is made with ``initdb`` (trust authentication on 127.0.0.1 only, ``wal_level =
replica``, a ``replicator`` role with the REPLICATION attribute allowed by ``pg_hba.conf``);
each replica with ``pg_basebackup -R`` (a hot standby streaming from the primary). PostgreSQL
refuses to run as root, so when run as root the servers run as the ``postgres`` OS user and
the directory is handed to it. ``stop()`` (also on ``with`` exit and at interpreter exit)
stops every server it started and removes the directory.

A process killed before it could stop its cluster leaves the servers running. With
``PG_CLUSTER_RECORD`` set to a file, each cluster appends its directory there, and
``python -m tests.pgcluster sweep FILE`` (CI, after the replica tests) stops what is still
running in those directories (the PostgreSQL servers by their ``postmaster.pid``, any
``*.gunicorn.pid`` process group put there by the tests), removes them, and exits 1 if it had
anything to stop.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPLICATION_ROLE = "replicator"
#: Made for tests, not for durability: each run starts from nothing and is thrown away.
TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "64MB",
    "max_connections": "200",
}
#: Replicas that serve pulls: vacuum on the primary waits for their queries instead of
#: cancelling them (docs/scaling.rst).
STANDBY_SETTINGS: Mapping[str, str] = {"hot_standby": "on", "hot_standby_feedback": "on"}


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL server binaries (``$PG_BINDIR`` first)."""
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates = [os.environ.get("PG_BINDIR", ""), *installed]
    for candidate in candidates:
        if candidate and all((Path(candidate) / b).is_file() for b in ("initdb", "pg_ctl", "pg_basebackup")):
            return Path(candidate)
    return None


def unavailable_reason() -> str | None:
    """Why a throwaway cluster cannot be made here, or None when it can."""
    if find_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found; set PG_BINDIR"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the servers as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to drop to the 'postgres' user"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    datadir: Path
    port: int
    log: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        with self.connect(dbname) as conn:
            cursor = conn.execute(statement)  # type: ignore[arg-type]  # our own literal SQL
            return cursor.fetchall() if cursor.description else []


@dataclass
class Cluster:
    root: Path
    bindir: Path
    primary: Server
    replicas: list[Server] = field(default_factory=list)
    _running: list[Server] = field(default_factory=list)

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def start(cls, replicas: int = 1, settings: Mapping[str, str] = TEST_SETTINGS) -> Cluster:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        bindir = find_bindir()
        assert bindir is not None
        root = Path(tempfile.mkdtemp(prefix="offline_sync_pg_"))
        cluster = cls(root, bindir, Server("primary", root / "primary", 0, root / "primary.log"))
        atexit.register(cluster.stop)
        record = os.environ.get("PG_CLUSTER_RECORD")
        if record:
            with open(record, "a") as f:
                f.write(f"{root}\n")
        try:
            if os.geteuid() == 0:
                shutil.chown(root, "postgres", "postgres")
            cluster._run("initdb", "-D", str(cluster.primary.datadir), "-U", "postgres", "-A", "trust",
                         "--no-sync", "-E", "UTF8", "--locale=C")
            conf = {**settings, "wal_level": "replica", "max_wal_senders": "10", **STANDBY_SETTINGS,
                    "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{root}'"}
            with open(cluster.primary.datadir / "postgresql.conf", "a") as f:
                f.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
            with open(cluster.primary.datadir / "pg_hba.conf", "w") as f:
                f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                        f"host replication {REPLICATION_ROLE} 127.0.0.1/32 trust\n")
            cluster._start_server(cluster.primary)
            cluster.primary.sql(f"CREATE ROLE {REPLICATION_ROLE} WITH REPLICATION LOGIN")
            for index in range(1, replicas + 1):
                cluster.add_replica(f"replica{index}")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def add_replica(self, name: str) -> Server:
        server = Server(name, self.root / name, 0, self.root / f"{name}.log")
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", REPLICATION_ROLE,
                  "-D", str(server.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        self._start_server(server)
        self.replicas.append(server)
        return server

    def _start_server(self, server: Server, attempts: int = 3) -> None:
        for attempt in range(attempts):  # a free port can be taken between the probe and the bind
            server.port = free_port()
            done = self._run("pg_ctl", "-D", str(server.datadir), "-l", str(server.log), "-w", "-t", "60",
                             "-o", f"-p {server.port} -k {self.root}", "start", check=False)
            if done.returncode == 0:
                self._running.append(server)
                return
            if attempt == attempts - 1:
                raise RuntimeError(f"{server.name} did not start:\n{self.log_tail(server)}")

    def stop(self) -> None:
        """Stop every server (replicas first) and remove the directory; safe to call twice."""
        for server in reversed(self._running):
            self._run("pg_ctl", "-D", str(server.datadir), "-m", "immediate", "-w", "stop", check=False)
        self._running.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / binary), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, timeout=180)
        if check and done.returncode != 0:
            raise RuntimeError(f"{binary} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def log_tail(self, server: Server, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # -- replication control ---------------------------------------------------------------------
    def wait_replayed(self, timeout: float = 60.0) -> None:
        """Block until every replica has replayed the primary's WAL up to now."""
        # The insert position: an asynchronous commit is inserted before it is written.
        (target,) = self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0]
        deadline = time.monotonic() + timeout
        for replica in self.replicas:
            while True:
                (caught_up,) = replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0]
                if caught_up:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{replica.name} did not replay up to {target} in {timeout}s")
                time.sleep(0.02)

    def lag_bytes(self, replica: Server) -> int:
        (current,) = self.primary.sql("SELECT pg_current_wal_insert_lsn()")[0]
        (lag,) = replica.sql(f"SELECT pg_wal_lsn_diff('{current}'::pg_lsn, pg_last_wal_replay_lsn())")[0]
        return int(lag)  # type: ignore[call-overload]

    @contextlib.contextmanager
    def replay_paused(self, replica: Server | None = None) -> Iterator[Server]:
        """Hold ``replica`` at the WAL position it has replayed (a lagging replica), then resume."""
        replica = replica or self.replicas[0]
        replica.sql("SELECT pg_wal_replay_pause()")
        try:
            yield replica
        finally:
            replica.sql("SELECT pg_wal_replay_resume()")

    def set(self, **settings: str) -> None:
        """ALTER SYSTEM on the primary, then reload (e.g. ``synchronous_commit="on"``)."""
        for name, value in settings.items():
            self.primary.sql(f"ALTER SYSTEM SET {name} = '{value}'")
        self.primary.sql("SELECT pg_reload_conf()")


# -- leftovers of a killed run --------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_in(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


def sweep(record: Path) -> list[str]:
    """Stop what the clusters listed in ``record`` left running and remove their directories.

    Only those directories: another run's cluster on the same machine is not touched. Returns
    what was still running.
    """
    found: list[str] = []
    roots = record.read_text().split() if record.exists() else []
    for root in map(Path, roots):
        for pidfile in sorted(root.glob("*.gunicorn.pid")):
            pid = _pid_in(pidfile)
            if pid is not None and _alive(pid):
                found.append(f"gunicorn {pid} ({pidfile})")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # the tests start it as its own group's leader
        for pidfile in sorted(root.glob("*/postmaster.pid")):
            pid = _pid_in(pidfile)
            if pid is None or not _alive(pid):
                continue
            found.append(f"postgres {pid} ({pidfile.parent})")
            os.kill(pid, signal.SIGQUIT)  # the postmaster's immediate shutdown
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    record.unlink(missing_ok=True)
    return found


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "sweep":
        sys.exit("usage: python -m tests.pgcluster sweep RECORD_FILE")
    left = sweep(Path(sys.argv[2]))
    for line in left:
        print(f"left running, now stopped: {line}", file=sys.stderr)
    sys.exit(1 if left else 0)
