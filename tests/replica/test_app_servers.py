"""Several app servers against one primary: two gunicorn instances of the example site.

Server A reads the sync tables from the streaming replica (``REPLICA_DATABASE_URL``), server B
from the primary; both write to the primary and share ``DJANGO_SECRET_KEY``. Each device sends
every request to the next server in turn, as a load balancer without affinity does, so its
pages and next links hop between servers and between the replica and the primary.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.db import connections

from django_offline_sync.models import decode_version
from example_project.tasks.models import Task
from tests import pgcluster
from tests.stress import harness

from .test_replica_pulls import SECONDS, ReplicaReader

pytestmark = [pytest.mark.replica, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
V2 = {"ZUMO-API-VERSION": "2.0.0"}


def start_server(name: str, env: dict[str, str], log: Path, pidfile: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Its own process group; ``pidfile`` in the cluster's directory, where ``pgcluster.sweep``
    finds it if this session is killed before it stops the server."""
    port = pgcluster.free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "example_project.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--threads", "4", "--timeout", "60", "--graceful-timeout", "5", "--pid", str(pidfile)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{base} exited ({process.returncode}):\n{log.read_text(errors='replace')[-2000:]}")
        try:
            response = httpx.get(f"{base}/tables/Task?$top=1", headers=V2, timeout=5)
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code}: {response.text[:500]}"
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{base} not ready after {timeout:.0f} s (last: {last}):\n{log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.3)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Its process group (gunicorn and its workers): politely, then not."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)


@pytest.fixture(scope="module")
def app_servers(replica_alias: str, pg_cluster: pgcluster.Cluster, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[list[str]]:  # fmt: skip
    """``[A, B]``: A pulls from the replica, B from the primary."""
    dbname = str(connections["default"].settings_dict["NAME"])
    common = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_SECRET_KEY": "app-servers-test-shared-key",  # cursors signed by A are read by B
        "DATABASE_URL": pg_cluster.primary.url(dbname),
        "CONN_MAX_AGE": "60",
    }
    common.pop("REPLICA_DATABASE_URL", None)
    logs = tmp_path_factory.mktemp("app-servers")
    envs = {"A": {**common, "REPLICA_DATABASE_URL": pg_cluster.replicas[0].url(dbname)}, "B": common}
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for name, env in envs.items():
            process, base = start_server(name, env, logs / f"{name}.log", pg_cluster.root / f"{name}.gunicorn.pid")
            started.append((process, base, logs / f"{name}.log"))
        for process, base, log in started:
            wait_ready(process, base, log)
        yield [base for _, base, _ in started]
    finally:
        for process, _, _ in started:
            stop_server(process)


def test_devices_spread_over_two_app_servers_miss_no_row(app_servers, pg_cluster):
    reader = ReplicaReader(pg_cluster.replicas[0], str(connections["default"].settings_dict["NAME"]))
    devices = [("v3-ctk-a", "v3-ctk", "/tables/Task"), ("v3-ctk-b", "v3-ctk", "/tables/Task")]
    devices += [(a, a, "/tables/Task") for a in ("v1-net", "v2-net", "v2-js", "v2-android")]
    try:
        # The replica's view is the oldest any server answers from: every pull must cover it.
        result = harness.run(app_servers, mode="clock", pullers=devices, seconds=SECONDS,
                             snapshot=reader.snapshot, settle=pg_cluster.wait_replayed)  # fmt: skip
    finally:
        reader.close()
    print(f"\nservers {app_servers}\n{result.report()}")
    assert result.operations > 200, "the writers barely ran; the test would prove nothing"
    assert sum(p.stats.killed for p in result.pullers) > 0
    for p in result.pullers:
        assert p.stats.requests > 10, p.name
        assert p.stats.truncated == 0, p.name
        assert p.stats.stale_after_pull == 0, (p.name, p.stats.stale_examples)
        assert result.final_misses(p.name) == 0, (p.name, result.final[p.name])


def test_exactly_one_conditional_update_wins_each_race_across_app_servers(app_servers):
    """Contenders with the same If-Match, sent at once to both servers: one 200, the rest 412
    with the winner's entity, and the row holds the winner's write."""
    races, contenders = 25, 6
    clients = [httpx.Client(base_url=app_servers[i % 2], headers=V2, timeout=60) for i in range(contenders)]
    created = [clients[0].post("/tables/Task", json={"text": "race"}) for _ in range(races)]
    assert all(r.status_code == 201 for r in created)
    outcome: dict[str, list[tuple[int, httpx.Response]]] = {}
    with ThreadPoolExecutor(contenders) as pool:
        for response in created:
            row_id, etag = response.json()["id"], response.headers["ETag"]
            start = threading.Barrier(contenders)

            def contend(i: int, row_id: str = row_id, etag: str = etag, start: threading.Barrier = start
                        ) -> tuple[int, httpx.Response]:  # fmt: skip
                start.wait()
                return i, clients[i].patch(f"/tables/Task/{row_id}", json={"text": f"c{i}"}, headers={"If-Match": etag})

            outcome[row_id] = list(pool.map(contend, range(contenders)))
    for client in clients:
        client.close()
    for row_id, answers in outcome.items():
        statuses = sorted(r.status_code for _, r in answers)
        assert statuses == [200] + [412] * (contenders - 1), (row_id, statuses)
        (winner_index, winner), *_ = [(i, r) for i, r in answers if r.status_code == 200]
        for _, loser in answers:
            if loser.status_code == 412:
                assert loser.json()["version"] == winner.json()["version"]
        row = Task.all_objects.using("default").get(pk=row_id)
        assert (row.text, decode_version(winner.json()["version"])) == (f"c{winner_index}", row.version)
    winners = [next(i for i, r in answers if r.status_code == 200) % 2 for answers in outcome.values()]
    print(f"\nwinners: {winners.count(0)} on A (replica reads), {winners.count(1)} on B (primary reads)")
