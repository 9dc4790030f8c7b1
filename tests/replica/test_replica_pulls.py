"""Pulls served by a real streaming replica while writers hit the primary.

The site under test routes sync-table reads to ``replica1`` (``ReplicaRouter``); writes, their
409/412 re-reads and the clock go to the primary. A replica shows a prefix of the primary's
commit order and stamps are commit-ordered, so nothing a pull skips can appear below its cursor
later: the stress run must miss no row, and a cursor or delta token taken while the replica
lagged must stay good once it caught up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connections
from django.test import override_settings

from django_offline_sync import replicas, stamping
from django_offline_sync.exceptions import ReadConflict
from django_offline_sync.query import evaluation_guard
from example_project.tasks.models import Task
from tests import pgcluster
from tests.stress import harness

# replica1 is listed so that the live server may connect to it; as a test mirror it is never flushed.
pytestmark = [pytest.mark.replica, pytest.mark.django_db(transaction=True, databases=["default", "replica1"])]

ROUTER = "django_offline_sync.replicas.ReplicaRouter"
SECONDS = float(os.environ.get("STRESS_SECONDS", "25"))
V3 = {"ZUMO-API-VERSION": "3.0.0"}


@pytest.fixture(autouse=True)
def routed(replica_alias: str) -> Iterator[None]:
    with override_settings(
        ROOT_URLCONF="tests.stress.urls", DATABASE_ROUTERS=[ROUTER], OFFLINE_SYNC={"READ_DATABASES": [replica_alias]}
    ):
        yield


def primary_db_name() -> str:
    return str(connections["default"].settings_dict["NAME"])


def pull_v3(http: httpx.Client, token_ms: int | None, copy: dict[str, dict[str, Any]]) -> tuple[int | None, int]:
    """One Datasync pull (``updatedAt gt token``, follow nextLink); the new token and pages read."""
    params = {"$orderby": "updatedAt", "__includedeleted": "true"}
    if token_ms is not None:
        params["$filter"] = f"(updatedAt gt cast({harness.iso_ms(token_ms)},Edm.DateTimeOffset))"
    url, pages = f"/tables/Task?{harness.encode(list(params.items()))}", 0
    while url:
        body = http.get(url).json()
        pages += 1
        for item in body["items"]:
            copy[item["id"]] = item
            ms = harness.parse_wire_ms(item["updatedAt"])
            token_ms = ms if token_ms is None else max(token_ms, ms)
        url = f"/tables/Task?{body['nextLink']}" if body.get("nextLink") else ""
    return token_ms, pages


def test_a_lagging_replica_serves_reads_and_the_primary_decides_writes(live_server, pg_cluster):
    """Read-your-writes on a lagging replica: the push is decided on the primary; the pull
    that follows may not show it yet, the next one after replay does, from the same token."""
    http = httpx.Client(base_url=live_server.url, headers=V3, timeout=30)
    first = http.post("/tables/Task", json={"text": "first"})
    assert first.status_code == 201, first.text
    pg_cluster.wait_replayed()
    copy: dict[str, dict[str, Any]] = {}
    token, _ = pull_v3(http, None, copy)
    assert set(copy) == {first.json()["id"]}
    row_id, v1_etag = first.json()["id"], first.headers["ETag"]

    with pg_cluster.replay_paused():
        second = {"id": row_id, "text": "second"}
        updated = http.put(f"/tables/Task/{row_id}", json=second, headers={"If-Match": v1_etag})
        assert updated.status_code == 200, updated.text  # the precondition was read on the primary
        inserted = http.post("/tables/Task", json={"text": "third"})
        assert inserted.status_code == 201
        # Reads by id come from the replica, which has not replayed either write...
        assert http.get(f"/tables/Task/{row_id}").json()["version"] == first.json()["version"]
        assert http.get(f"/tables/Task/{inserted.json()['id']}").status_code == 404
        # ...but a write with the replica's (stale) version is refused by the primary, with
        # the primary's entity, not the replica's.
        stale = http.put(f"/tables/Task/{row_id}", json={"id": row_id, "text": "lost"}, headers={"If-Match": v1_etag})
        assert stale.status_code == 412
        assert stale.json()["version"] == updated.json()["version"]
        # The pull right after the push: nothing new yet, and the token does not move.
        assert pull_v3(http, token, copy)[0] == token
        assert copy[row_id]["text"] == "first"
    pg_cluster.wait_replayed()
    # The next pull, from the same token: both writes.
    token, _ = pull_v3(http, token, copy)
    assert copy[row_id]["version"] == updated.json()["version"] and copy[row_id]["text"] == "second"
    assert inserted.json()["id"] in copy
    assert Task.all_objects.using("default").get(pk=row_id).text == "second"


def test_a_cursor_taken_on_a_lagging_replica_stays_valid_after_it_catches_up(live_server, pg_cluster):
    http = httpx.Client(base_url=live_server.url, headers=V3, timeout=30)
    ids = [http.post("/tables/Task", json={"text": f"r{i}"}).json()["id"] for i in range(6)]
    pg_cluster.wait_replayed()
    copy: dict[str, dict[str, Any]] = {}
    with override_settings(OFFLINE_SYNC={"READ_DATABASES": ["replica1"], "V3_PAGE_SIZE": 2}):
        with pg_cluster.replay_paused():
            body = http.get("/tables/Task?$orderby=updatedAt&__includedeleted=true").json()
            copy.update({item["id"]: item for item in body["items"]})
            next_link = body["nextLink"]
            # Writes the replica does not show yet: one to a row already pulled, one new row.
            etag = f'"{copy[ids[0]]["version"]}"'
            assert http.put(f"/tables/Task/{ids[0]}", json={"id": ids[0], "text": "moved"},
                            headers={"If-Match": etag}).status_code == 200  # fmt: skip
            late = http.post("/tables/Task", json={"text": "late"}).json()["id"]
        pg_cluster.wait_replayed()
        follow_next_links(http, f"/tables/Task?{next_link}", copy)
    assert set(copy) == {*ids, late}
    assert copy[ids[0]]["text"] == "moved"  # stamped above the cursor, so the same pull met it


def follow_next_links(http: httpx.Client, url: str, copy: dict[str, dict[str, Any]]) -> None:
    """Pull from ``url`` on, page after page, into ``copy``, as the v3 client does."""
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        copy.update({item["id"]: item for item in body["items"]})
        url = f"/tables/Task?{body['nextLink']}" if body.get("nextLink") else ""


def test_a_next_link_from_the_primary_is_not_followed_on_a_replica_behind_it(live_server, pg_cluster):
    """Two app servers behind a load balancer without affinity, one reading the primary and one
    a lagging replica: page 1 from the primary, its next link to the replica. A row updated
    while the replica was not replaying sits above the cursor on the primary and at its old
    place, below the cursor, on the replica. The pull must still bring it: the cursor carries
    the primary's clock, and a replica behind it leaves the page to the primary."""
    http = httpx.Client(base_url=live_server.url, headers=V3, timeout=30)
    ids = [http.post("/tables/Task", json={"text": f"r{i}"}).json()["id"] for i in range(6)]
    pg_cluster.wait_replayed()
    copy: dict[str, dict[str, Any]] = {}
    server_b = {"READ_DATABASES": [], "V3_PAGE_SIZE": 2}  # reads the primary
    server_a = {"READ_DATABASES": ["replica1"], "V3_PAGE_SIZE": 2}  # reads the replica
    with pg_cluster.replay_paused():
        etag = http.get(f"/tables/Task/{ids[0]}").headers["ETag"]
        moved = http.put(f"/tables/Task/{ids[0]}", json={"id": ids[0], "text": "moved"}, headers={"If-Match": etag})
        assert moved.status_code == 200
        with override_settings(OFFLINE_SYNC=server_b):
            body = http.get("/tables/Task?$orderby=updatedAt&__includedeleted=true").json()
        assert [item["id"] for item in body["items"]] == ids[1:3]  # ids[0] moved to the end
        copy.update({item["id"]: item for item in body["items"]})
        with override_settings(OFFLINE_SYNC=server_a):
            follow_next_links(http, f"/tables/Task?{body['nextLink']}", copy)
    assert set(copy) == set(ids), "the pull ended without the row updated above its cursor"
    assert copy[ids[0]]["text"] == "moved"


def test_a_delta_query_is_not_answered_by_a_replica_that_does_not_show_its_token(live_server, pg_cluster):
    """The same with a client that builds each page's query itself (v2 JS and Android:
    ``updatedAt ge T`` from the last row it received, an empty page ends the pull). Page 1
    from the primary ends at a row the replica has not replayed; a row updated after it sits
    above the page there, and at its old place below ``T`` on the replica, which would answer
    page 2 empty: the pull would end without that row. A replica that does not show ``T``
    leaves the page to the primary."""
    http = httpx.Client(base_url=live_server.url, headers={"ZUMO-API-VERSION": "2.0.0"}, timeout=30)
    ids = [http.post("/tables/Task", json={"text": f"r{i}"}).json()["id"] for i in range(5)]
    pg_cluster.wait_replayed()
    with pg_cluster.replay_paused():
        late = http.post("/tables/Task", json={"text": "late"}).json()["id"]
        etag = http.get(f"/tables/Task/{ids[0]}").headers["ETag"]
        moved = http.patch(f"/tables/Task/{ids[0]}", json={"text": "moved"}, headers={"If-Match": etag})
        assert moved.status_code == 200

        def page(token_ms: int, skip: int) -> list[dict[str, Any]]:
            since = f"(updatedAt ge datetimeoffset'{harness.iso_ms(token_ms)}')"
            params = [("$filter", since), ("$orderby", "updatedAt"), ("$skip", str(skip)), ("$top", "5"),
                      ("__includeDeleted", "true")]  # fmt: skip
            response = http.get(f"/tables/Task?{harness.encode(params)}")
            assert response.status_code == 200, response.text
            return list(response.json())

        copy: dict[str, dict[str, Any]] = {}
        token, skip = 0, 0
        with override_settings(OFFLINE_SYNC={"READ_DATABASES": []}):  # server B: the primary
            rows = page(token, skip)
        assert [row["id"] for row in rows] == [*ids[1:], late]  # ids[0] moved past the page
        with override_settings(OFFLINE_SYNC={"READ_DATABASES": ["replica1"]}):  # server A: the replica
            for _ in range(20):  # sync/pull.js: the next query from the last row's updatedAt
                copy.update({row["id"]: row for row in rows})
                last = harness.parse_wire_ms(rows[-1]["updatedAt"])
                token, skip = (token, skip + len(rows)) if last == token else (last, 0)
                rows = page(token, skip)
                if not rows:
                    break
    assert set(copy) == {*ids, late}, "the pull ended without the row updated above its first page"
    assert copy[ids[0]]["text"] == "moved"


def test_a_first_pull_stays_on_a_replica_that_has_not_replayed_the_tables_first_write(
    live_server, pg_cluster, replica_alias
):
    """A device's first pull (v2: ``updatedAt ge 1970-01-01``; v3 with a token at the epoch)
    asks for nothing beyond what every replica shows, even one that has not replayed the
    table's clock row yet: it is answered there, not by the primary. Were it sent to the
    primary, the device's token would be ahead of the replica from its first page on, and its
    later pages would alternate between the two databases, which docs/scaling.rst says is not
    exact."""
    pg_cluster.wait_replayed()  # the flush of the previous test
    v2_headers = {"ZUMO-API-VERSION": "2.0.0"}
    v2_first = [("$filter", "(updatedAt ge datetimeoffset'1970-01-01T00:00:00.000Z')"), ("$orderby", "updatedAt"),
                ("$top", "50"), ("__includeDeleted", "true")]  # fmt: skip
    v3_first = [("$filter", "(updatedAt gt cast(1970-01-01T00:00:00.000Z,Edm.DateTimeOffset))"),
                ("$orderby", "updatedAt"), ("__includedeleted", "true")]  # fmt: skip
    http = httpx.Client(base_url=live_server.url, timeout=30)
    with pg_cluster.replay_paused():
        created = http.post("/tables/Task", json={"text": "first"}, headers=V3)
        assert created.status_code == 201, created.text
        # The case under test: the primary has the table's clock row, the replica not yet.
        assert replicas.high_water(Task, "default") is not None
        assert replicas.high_water(Task, replica_alias) is None
        v2 = http.get(f"/tables/Task?{harness.encode(v2_first)}", headers=v2_headers)
        assert v2.status_code == 200, v2.text
        assert v2.json() == []  # the replica's answer: it shows no row yet
        v3 = http.get(f"/tables/Task?{harness.encode(v3_first)}", headers=V3)
        assert v3.status_code == 200, v3.text
        assert v3.json()["items"] == []
    pg_cluster.wait_replayed()
    assert [row["id"] for row in http.get(f"/tables/Task?{harness.encode(v2_first)}", headers=v2_headers).json()] == [
        created.json()["id"]
    ]
    assert [row["id"] for row in http.get(f"/tables/Task?{harness.encode(v3_first)}", headers=V3).json()["items"]] == [
        created.json()["id"]
    ]


def test_what_the_rules_leave_a_pull_resumed_on_a_replica_after_a_killed_page_from_the_primary(live_server, pg_cluster):
    """A v3 pull killed mid-page saves the token of the last item it stored, from a page the
    primary served; a row moved there above the token still sits below it on a lagging replica
    that does show the token. The pull resumed on that replica ends without the row (nothing in
    the request says how far the primary was); the row is stamped above the token, and the next
    pull brings it (docs/scaling.rst, "Replicas and next links"). The stress harness leaves such
    a resumed pull to the final comparison."""
    http = httpx.Client(base_url=live_server.url, headers=V3, timeout=30)
    ids = [http.post("/tables/Task", json={"text": f"r{i}"}).json()["id"] for i in range(6)]
    pg_cluster.wait_replayed()
    copy: dict[str, dict[str, Any]] = {}
    with pg_cluster.replay_paused():
        etag = http.get(f"/tables/Task/{ids[0]}").headers["ETag"]
        moved = http.patch(f"/tables/Task/{ids[0]}", json={"text": "moved"}, headers={"If-Match": etag})
        assert moved.status_code == 200
        with override_settings(OFFLINE_SYNC={"READ_DATABASES": [], "V3_PAGE_SIZE": 2}):  # the primary
            first = http.get("/tables/Task?$orderby=updatedAt&__includedeleted=true").json()["items"]
        assert [item["id"] for item in first] == ids[1:3]
        copy[ids[1]] = first[0]  # killed after the first item: its stamp is the saved token
        with override_settings(OFFLINE_SYNC={"READ_DATABASES": ["replica1"]}):
            token, _ = pull_v3(http, harness.parse_wire_ms(first[0]["updatedAt"]), copy)
        assert set(copy) == set(ids[1:])  # without ids[0]: below the token on the replica
    pg_cluster.wait_replayed()
    with override_settings(OFFLINE_SYNC={"READ_DATABASES": ["replica1"]}):
        pull_v3(http, token, copy)
    assert set(copy) == set(ids) and copy[ids[0]]["text"] == "moved"


def test_at_watermark_keeps_a_replica_that_shows_the_mark_and_leaves_one_behind_it(pg_cluster, replica_alias):
    Task.objects.create(text="a")
    pg_cluster.wait_replayed()
    routed_qs = Task.all_objects.all()
    assert routed_qs.db == replica_alias
    mark = replicas.watermark(Task, "default")
    assert mark is not None and replicas.watermark(Task, replica_alias) == mark
    assert replicas.at_watermark(routed_qs, mark).db == replica_alias
    assert replicas.at_watermark(routed_qs, None).db == replica_alias
    with pg_cluster.replay_paused():
        Task.objects.create(text="b")
        newer = replicas.watermark(Task, "default")
        assert newer is not None and newer > mark
        assert replicas.at_watermark(routed_qs, mark).db == replica_alias  # it shows that much
        assert replicas.at_watermark(routed_qs, newer).db == "default"  # it does not show this
    pg_cluster.wait_replayed()
    assert replicas.at_watermark(routed_qs, newer).db == replica_alias


class ReplicaReader:
    """What the replica has replayed, read in one statement (one connection per thread)."""

    def __init__(self, server: pgcluster.Server, dbname: str) -> None:
        self.server, self.dbname = server, dbname
        self.local = threading.local()
        self.connections: list[psycopg.Connection[Any]] = []

    def snapshot(self) -> dict[str, tuple[int, int]]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.server.connect(self.dbname)
            self.connections.append(conn)
        rows = conn.execute(f"SELECT id, version, updated_at FROM {Task._meta.db_table}").fetchall()
        return {pk: (version, stamping.datetime_to_ms(updated)) for pk, version, updated in rows}

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


class LagSampler(threading.Thread):
    """Samples the replica's replay lag (bytes of WAL) while the stress run goes."""

    def __init__(self, cluster: pgcluster.Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.stop, self.samples = cluster, threading.Event(), []

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.samples.append(self.cluster.lag_bytes(self.cluster.replicas[0]))


def test_pulls_on_a_streaming_replica_miss_no_row_while_writers_hit_the_primary(
    live_server, pg_cluster, replica_alias, monkeypatch
):
    """The gap-free stress run (every client algorithm, killed pulls, long transactions) with
    the site's pulls on the replica: every pull covers what the replica showed when it began,
    and after the writers stop and the replica replays, every device equals the primary."""
    reader = ReplicaReader(pg_cluster.replicas[0], primary_db_name())
    sampler = LagSampler(pg_cluster)
    (before,) = pg_cluster.replicas[0].sql(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", primary_db_name()
    )[0]
    devices = [("v3-ctk-a", "v3-ctk", "/tables/Task"), ("v3-ctk-b", "v3-ctk", "/tables/Task")]
    devices += [(a, a, "/tables/Task") for a in ("v1-net", "v2-net", "v2-js", "v2-android")]
    # Every page's database, as the site chose it (replicas.database_at, called by the live
    # server's threads in this process): with one replica, whose state only moves forward, a
    # device's tokens and cursors all come from it, so no page is left to the primary.
    chosen: list[str] = []
    choose = replicas.database_at

    def recorded(model: Any, using: str, mark: int | None) -> str:
        db = choose(model, using, mark)
        chosen.append(db)
        return db

    monkeypatch.setattr(replicas, "database_at", recorded)
    sampler.start()
    try:
        result = harness.run(live_server.url, mode="clock", pullers=devices, seconds=SECONDS,
                             snapshot=reader.snapshot, settle=pg_cluster.wait_replayed)  # fmt: skip
    finally:
        sampler.stop.set()
        sampler.join()
        reader.close()
        monkeypatch.undo()
    (after,) = pg_cluster.replicas[0].sql(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", primary_db_name()
    )[0]
    lagging = sum(1 for s in sampler.samples if s > 0)
    print(f"\n{result.report()}\nreplica: {int(after) - int(before)} transactions served, lag > 0 in "  # type: ignore[call-overload]
          f"{lagging}/{len(sampler.samples)} samples, max {max(sampler.samples, default=0)} bytes of WAL")
    assert result.operations > 200, "the writers barely ran; the test would prove nothing"
    assert sum(p.stats.killed for p in result.pullers) > 0
    assert sum(p.stats.completed for p in result.pullers) > 20
    assert int(after) - int(before) > 100, "the pulls did not read the replica"  # type: ignore[call-overload]
    assert lagging > 0, "the replica never lagged; the run would not test lag"
    assert len(chosen) > 100 and set(chosen) == {replica_alias}, f"pages left to the primary: {chosen.count('default')}"
    for p in result.pullers:
        assert p.stats.truncated == 0, p.name
        assert p.stats.stale_after_pull == 0, (p.name, p.stats.stale_examples)
        assert result.final_misses(p.name) == 0, (p.name, result.final[p.name])


def test_a_batch_push_reads_its_own_writes_on_the_primary_while_the_replica_lags(live_server, pg_cluster):
    """Inside the batch's transaction every read goes to the primary: an update of a row the
    same batch inserted finds it, though the replica has replayed neither."""
    http = httpx.Client(base_url=live_server.url, headers=V3, timeout=30)
    with pg_cluster.replay_paused():
        body = {
            "batchId": "replica-batch-1",
            "operations": [
                {"op": "insert", "table": "Task", "item": {"id": "b1", "text": "new"}},
                {"op": "update", "table": "Task", "id": "b1", "item": {"id": "b1", "text": "edited"}, "version": "*"},
            ],
        }
        response = http.post("/tables/$batch", json=body)
        assert response.status_code == 200, response.text
        assert [r["status"] for r in response.json()["results"]] == [201, 200]
        assert http.get("/tables/Task/b1").status_code == 404  # the replica has not replayed it
    pg_cluster.wait_replayed()
    assert http.get("/tables/Task/b1").json()["text"] == "edited"


def test_a_read_the_replica_cancels_for_a_recovery_conflict_is_a_503_to_retry(pg_cluster, replica_alias):
    """A list read holding a table the primary then locks: replay cancels it (SQLSTATE 40001,
    ``max_standby_streaming_delay = 0`` here), and the page answers 503 ``read_conflict`` with
    ``Retry-After`` instead of a 500."""
    replica, table = pg_cluster.replicas[0], Task._meta.db_table
    replica.sql("ALTER SYSTEM SET max_standby_streaming_delay = 0")
    replica.sql("SELECT pg_reload_conf()")

    def lock_on_primary() -> None:
        time.sleep(1.0)  # the read below is running by then
        with pg_cluster.primary.connect(primary_db_name()) as conn, conn.transaction():
            conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # WAL-logged for the standby

    locker = threading.Thread(target=lock_on_primary)
    locker.start()
    try:
        started = time.monotonic()
        with (
            pytest.raises(ReadConflict) as caught,
            evaluation_guard(using=replica_alias),
            connections[replica_alias].cursor() as cursor,
        ):
            cursor.execute(f"SELECT count(*) FROM {table}, pg_sleep(5)")
        assert time.monotonic() - started < 4.5, "the read was not cancelled; it ran to its end"
        assert (caught.value.status_code, caught.value.default_code, caught.value.wait) == (503, "read_conflict", 1)
    finally:
        locker.join()
        replica.sql("ALTER SYSTEM RESET max_standby_streaming_delay")
        replica.sql("SELECT pg_reload_conf()")
