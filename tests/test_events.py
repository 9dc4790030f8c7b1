"""``GET /tables/$events`` over real HTTP: the example site under uvicorn (ASGI) in subprocesses.

Two server processes share one database of their own: ``events`` serves the subscriptions,
``writes`` takes the writes, so every event here follows another process's commit. On
PostgreSQL (``DATABASE_URL=postgres://…``) the events process polls only every 10 minutes, so
an event that arrives within the test's timeout came through LISTEN/NOTIFY; elsewhere (a
SQLite file) the events process polls the table clocks every 200 ms.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from httpx_sse import EventSource
from rest_framework.filters import BaseFilterBackend

from django_offline_sync.client import LocalStore

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
V3 = {"ZUMO-API-VERSION": "3.0.0"}
TIMEOUT = 20.0


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Database:
    """A database for the server processes: a new PostgreSQL database, or a SQLite file."""

    def __init__(self) -> None:
        self.admin = _postgres_url()
        self.tmp = tempfile.TemporaryDirectory()
        if self.admin:
            import psycopg

            self.name = f"os_events_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(self.admin.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = self.admin.rsplit("/", 1)[0] + f"/{self.name}"
        else:
            self.url = f"sqlite:///{Path(self.tmp.name) / 'events.sqlite3'}"
        self.manage("migrate", "-v", "0")

    @property
    def postgres(self) -> bool:
        return self.admin is not None

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.events_settings",
            "DATABASE_URL": self.url,
            "DJANGO_SECRET_KEY": "tests-only-not-secret",
            "PYTHONPATH": str(ROOT),
            **extra,
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def tokens(self, *names: str) -> dict[str, str]:
        code = (
            "import json; from django.contrib.auth.models import User; "
            "from rest_framework.authtoken.models import Token; "
            f"print(json.dumps({{n: Token.objects.get_or_create(user=User.objects.get_or_create(username=n)[0])[0].key "
            f"for n in {list(names)!r}}}))"
        )
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def drop(self) -> None:
        if self.admin:
            import psycopg

            with psycopg.connect(self.admin.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.tmp.cleanup()


class Server:
    """The example site under uvicorn on ``port`` (a free one by default)."""

    def __init__(self, database: Database, port: int | None = None, **env: str) -> None:
        self.database = database
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        command = [sys.executable, "-m", "uvicorn", "example_project.asgi:application", "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.database.env(**self.env), stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            try:
                if httpx.get(f"{self.url}/tables/Task?$top=1", headers=V3, timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("uvicorn did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Subscriber:
    """Reads one event stream in a thread; ``next()`` gives the events in order."""

    def __init__(self, url: str, tables: str, headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[object] = queue.Queue()
        self.status: int | None = None
        self.body = b""
        self.opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._thread = threading.Thread(target=self._read, args=(url, tables, headers or {}), daemon=True)
        self._thread.start()
        assert self.opened.wait(TIMEOUT), "the subscription did not open"

    def _read(self, url: str, tables: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream(
                "GET", f"{url}/tables/$events", params={"tables": tables}, headers={**V3, **headers}
            ) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    self.body = response.read()
                    self.opened.set()
                    return
                self.opened.set()
                for event in EventSource(response).iter_sse():
                    self.events.put(event)
        except Exception as exc:  # closed by the test, or a failure to report
            self.events.put(exc)
        finally:
            self.opened.set()

    def next(self, timeout: float = TIMEOUT):
        event = self.events.get(timeout=timeout)
        assert not isinstance(event, Exception), event
        return event

    def change(self, timeout: float = TIMEOUT) -> dict:
        """The next change event's data (after the ``ready`` event)."""
        while True:
            event = self.next(timeout)
            if event.event == "message":
                return json.loads(event.data)

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def database():
    db = Database()
    yield db
    db.drop()


@pytest.fixture(scope="module")
def servers(database):
    poll = "600000" if database.postgres else "200"  # PostgreSQL: only NOTIFY can be in time
    events = Server(database, EVENTS_POLL_MS=poll).start()
    writes = Server(database).start()
    yield events, writes
    events.stop()
    writes.stop()


@pytest.fixture
def subscribe():
    opened: list[Subscriber] = []

    def open_(url: str, tables: str, **headers: str) -> Subscriber:
        subscriber = Subscriber(url, tables, headers)
        opened.append(subscriber)
        return subscriber

    yield open_
    for subscriber in opened:
        subscriber.close()


def post(server: Server, table: str, item: dict, token: str | None = None) -> dict:
    headers = {**V3, **({"Authorization": f"Token {token}"} if token else {})}
    response = httpx.post(f"{server.url}/tables/{table}", json=item, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_event_follows_another_processs_commit(servers, subscribe):
    events, writes = servers
    subscriber = subscribe(events.url, "Task,Note")
    ready = subscriber.next()
    assert ready.event == "ready" and json.loads(ready.data) == {"tables": ["Task", "Note"]}
    task = post(writes, "Task", {"text": "from another process"})
    assert subscriber.change() == {"table": "Task", "updatedAt": task["updatedAt"]}
    note = post(writes, "Note", {"taskId": task["id"], "body": "n"})
    assert subscriber.change() == {"table": "Note", "updatedAt": note["updatedAt"]}


def test_a_batch_is_announced_after_it_commits(servers, subscribe):
    events, writes = servers
    subscriber = subscribe(events.url, "Task")
    subscriber.next()
    ops = [{"op": "insert", "table": "Task", "item": {"text": str(i)}} for i in range(5)]
    response = httpx.post(f"{writes.url}/tables/$batch", json={"batchId": uuid.uuid4().hex, "operations": ops},
                          headers=V3, timeout=TIMEOUT)
    assert response.status_code == 200
    newest = response.json()["results"][-1]["item"]["updatedAt"]
    seen = subscriber.change()["updatedAt"]
    while seen != newest:  # coalesced: one event, or a few, ending at the batch's last stamp
        seen = subscriber.change()["updatedAt"]


def test_last_event_id_resumes_the_stream(servers, subscribe):
    events, writes = servers
    first = subscribe(events.url, "Task")
    ready = first.next()
    first.close()
    task = post(writes, "Task", {"text": "while away"})
    resumed = subscribe(events.url, "Task", **{"Last-Event-ID": ready.id})
    assert resumed.next().event == "ready"
    assert resumed.change() == {"table": "Task", "updatedAt": task["updatedAt"]}
    assert resumed.next  # the stream stays open


def test_a_subscriber_never_learns_of_another_users_rows(database, servers, subscribe):
    events, writes = servers
    tokens = database.tokens("ann", "bob")
    ann = subscribe(events.url, "Inspection", Authorization=f"Token {tokens['ann']}")
    bob = subscribe(events.url, "Inspection", Authorization=f"Token {tokens['bob']}")
    ann.next(), bob.next()
    anns = post(writes, "Inspection", {"site": "ann's", "pipeId": "p1"}, tokens["ann"])
    assert ann.change() == {"table": "Inspection", "updatedAt": anns["updatedAt"]}
    time.sleep(1.0)  # bob's stream has had every chance to announce ann's row
    bobs = post(writes, "Inspection", {"site": "bob's", "pipeId": "p2"}, tokens["bob"])
    assert bob.change() == {"table": "Inspection", "updatedAt": bobs["updatedAt"]}  # his own, and nothing before
    # and a resumed stream replays only what bob's data view shows
    resumed = subscribe(events.url, "Inspection", Authorization=f"Token {tokens['bob']}",
                        **{"Last-Event-ID": "Inspection:0"})
    resumed.next()
    assert resumed.change()["updatedAt"] == bobs["updatedAt"]


def _ms(stamp: str) -> int:
    from django_offline_sync.wire import datetime_to_ms, parse_timestamp

    return datetime_to_ms(parse_timestamp(stamp))


def test_every_stamp_a_subscriber_sees_is_of_rows_it_may_read(database, servers, subscribe):
    """The ready id, a catch-up and a live event's id and updatedAt come from the caller's
    rows: none carries the stamp of another user's later write."""
    events, writes = servers
    tokens = database.tokens("cara", "dan")
    caras = post(writes, "Inspection", {"site": "cara's", "pipeId": "c1"}, tokens["cara"])
    for i in range(2):  # dan writes after cara, so the table's newest stamp is his
        dans = post(writes, "Inspection", {"site": "dan's", "pipeId": f"d{i}"}, tokens["dan"])
    assert _ms(dans["updatedAt"]) > _ms(caras["updatedAt"])
    cara = {"Authorization": f"Token {tokens['cara']}"}
    # A stream another test left open keeps the events process's clock of the table, which
    # takes in these writes at its next poll: after it, the present includes cara's row.
    time.sleep(1.0)

    ready = subscribe(events.url, "Inspection", **cara).next()
    assert ready.event == "ready" and ready.id == f"Inspection:{_ms(caras['updatedAt'])}"

    resumed = subscribe(events.url, "Inspection", **cara, **{"Last-Event-ID": "Inspection:1"})
    assert resumed.next().event == "ready"
    event = resumed.next()
    assert json.loads(event.data) == {"table": "Inspection", "updatedAt": caras["updatedAt"]}
    assert event.id == f"Inspection:{_ms(caras['updatedAt'])}"

    # Live: dan's write is not announced, and it does not move cara's id either.
    live = subscribe(events.url, "Inspection,Task", **cara)
    assert live.next().id.startswith(f"Inspection:{_ms(caras['updatedAt'])},Task:")
    post(writes, "Inspection", {"site": "dan's", "pipeId": "d9"}, tokens["dan"])
    time.sleep(1.0)  # cara's stream has had every chance to take dan's write in
    task = post(writes, "Task", {"text": "shared"})
    event = live.next()
    assert json.loads(event.data) == {"table": "Task", "updatedAt": task["updatedAt"]}
    assert event.id == f"Inspection:{_ms(caras['updatedAt'])},Task:{_ms(task['updatedAt'])}"


def test_another_users_writes_change_nothing_a_subscriber_receives(database, servers):
    """Not even the rhythm of the keep-alive comments: a wake-up for dan's rows that finds
    nothing of cara's sends nothing and does not put off her next keep-alive (2 s here)."""
    events, writes = servers
    tokens = database.tokens("cara", "dan")
    received: list[str] = []
    opened = threading.Event()

    def read() -> None:
        headers = {**V3, "Authorization": f"Token {tokens['cara']}"}
        with httpx.stream("GET", f"{events.url}/tables/$events", params={"tables": "Inspection"},
                          headers=headers, timeout=httpx.Timeout(10, read=60)) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    opened.set()
                received.append(line)
                if time.monotonic() > start + 7:
                    return

    start = time.monotonic()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(TIMEOUT)
    while time.monotonic() < start + 6.5:  # dan writes every 0.3 s; every one wakes cara's stream
        post(writes, "Inspection", {"site": "dan's", "pipeId": "busy"}, tokens["dan"])
        time.sleep(0.3)
    reader.join(TIMEOUT)
    lines = [line for line in received if line]
    assert lines[:3] == ["retry: 2000", "event: ready", lines[2]] and lines[3].startswith("data: {\"tables\"")
    assert set(lines[4:]) == {": keepalive"} and len(lines[4:]) >= 2, lines


def test_subscriptions_are_checked_like_reads(servers, subscribe):
    events, _ = servers
    anonymous = subscribe(events.url, "Inspection")
    assert anonymous.status == 401
    assert json.loads(anonymous.body)["errorCode"] == "not_authenticated"
    unknown = subscribe(events.url, "Task,Nope")
    assert unknown.status == 404 and "Nope" in json.loads(unknown.body)["title"]
    empty = subscribe(events.url, "")
    assert empty.status == 400 and json.loads(empty.body)["errorCode"] == "invalid_subscription"
    assert httpx.post(f"{events.url}/tables/$events?tables=Task", headers=V3).status_code == 405


def test_a_caller_may_hold_only_so_many_streams_open(database):
    # Each open stream holds memory in the events process until its client closes it: one
    # anonymous client looping on GET /tables/$events could hold thousands.
    server = Server(database, EVENTS_MAX_STREAMS_PER_CALLER="2").start()
    tokens = database.tokens("ann_streams")
    held: list[Subscriber] = []
    try:
        held += [Subscriber(server.url, "Task"), Subscriber(server.url, "Task,Note")]
        assert [s.status for s in held] == [200, 200] and [s.next().event for s in held] == ["ready", "ready"]
        third = Subscriber(server.url, "Note")
        held.append(third)
        assert third.status == 429, third.body
        body = json.loads(third.body)
        assert body["errorCode"] == "too_many_streams" and "At most 2" in body["title"]
        # A signed-in user counts on their own, not against the address.
        signed_in = Subscriber(server.url, "Inspection", {"Authorization": f"Token {tokens['ann_streams']}"})
        held.append(signed_in)
        assert signed_in.status == 200
        # A closed stream gives its place back.
        held[0].close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            again = Subscriber(server.url, "Task")
            held.append(again)
            if again.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert again.status == 200 and again.next().event == "ready"
    finally:
        for subscriber in held:
            subscriber.close()
        server.stop()


@pytest.mark.django_db
def test_under_wsgi_the_stream_is_refused_with_a_reason(client):
    response = client.get("/tables/$events?tables=Task", HTTP_ZUMO_API_VERSION="3.0.0")
    assert response.status_code == 501
    assert response.json()["errorCode"] == "asgi_required"


def test_watch_pulls_on_events_and_after_a_reconnect(database, servers, tmp_path):
    _, writes = servers
    events = Server(database, EVENTS_POLL_MS="600000" if database.postgres else "200").start()
    store_path = tmp_path / "device.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    watch = subprocess.Popen(
        [sys.executable, "-m", "django_offline_sync.client", "--url", events.url, "--db", str(store_path),
         "--retries", "0", "watch", "Task"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def local(item_id: str) -> bool:
        with LocalStore(store_path) as store:
            return "Task" in store.tables() and store.get("Task", item_id) is not None

    def wait_for(item_id: str) -> None:
        deadline = time.monotonic() + 60
        while not local(item_id):
            assert watch.poll() is None, watch.communicate()
            assert time.monotonic() < deadline, "the watcher did not pull the row"
            time.sleep(0.1)

    try:
        before = post(writes, "Task", {"text": "before the watch"})
        wait_for(before["id"])  # the pull on connect
        during = post(writes, "Task", {"text": "while watching"})
        wait_for(during["id"])  # an event, then a pull
        events.stop()
        away = post(writes, "Task", {"text": "while the stream was down"})
        time.sleep(1.5)  # the watcher fails to reconnect at least once (backoff)
        events = Server(database, port=events.port, EVENTS_POLL_MS=events.env["EVENTS_POLL_MS"]).start()
        wait_for(away["id"])  # the pull on reconnect
    finally:
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=30)
        events.stop()
    assert watch.returncode == 0, err
    assert "Task:" in out and "reconnecting" in err


@pytest.mark.django_db
@pytest.mark.parametrize("stamping", ["clock", "now"])
def test_the_committed_stamp_of_a_table(settings, stamping):
    from django_offline_sync.events import _read_clocks
    from django_offline_sync.stamping import clock_key, datetime_to_ms
    from example_project.tasks.models import Note, Task

    settings.OFFLINE_SYNC = {"STAMPING": stamping}
    task = Task.objects.create(text="x")
    task.delete()  # a tombstone is a change too
    task.refresh_from_db()
    clocks = _read_clocks([(("default", clock_key(Task)), Task), (("default", clock_key(Note)), Note)])
    assert clocks[("default", clock_key(Task))] == datetime_to_ms(task.updated_at)
    assert clocks[("default", clock_key(Note))] == 0  # never written


class _OwnRows(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        return queryset.filter(owner=request.user)


@pytest.mark.django_db
def test_a_filter_backend_that_narrows_per_caller_scopes_the_stamps(rf, django_user_model):
    """Not only get_queryset: whatever narrows the table's GET narrows its events."""
    from django_offline_sync.events import _scoped, _start_at, _Subscription, _take_in
    from django_offline_sync.filters import ODataFilterBackend
    from django_offline_sync.stamping import clock_key, datetime_to_ms
    from django_offline_sync.viewsets import SyncViewSet
    from example_project.tasks.models import Inspection
    from example_project.tasks.views import InspectionViewSet, NoteViewSet, TaskViewSet

    class FilteredInspections(SyncViewSet):
        model = Inspection
        filter_backends = [ODataFilterBackend, _OwnRows]

    assert not _scoped(TaskViewSet())
    assert _scoped(InspectionViewSet()) and _scoped(NoteViewSet()) and _scoped(FilteredInspections())

    cara, dan = django_user_model.objects.create(username="cara"), django_user_model.objects.create(username="dan")
    caras = Inspection.objects.create(owner=cara, site="cara's", pipe_id="c1")
    dans = Inspection.objects.create(owner=dan, site="dan's", pipe_id="d1")
    view = FilteredInspections(action_map={"get": "list"}, basename="inspection", detail=False)
    view.action, view.args, view.kwargs, view.format_kwarg = "list", (), {}, None
    view.request = view.initialize_request(rf.get("/tables/Inspection", HTTP_ZUMO_API_VERSION="3.0.0"))
    view.request.user = cara
    key = ("default", clock_key(Inspection))
    subscription = _Subscription("Inspection", key, Inspection, view)
    table = datetime_to_ms(dans.updated_at)

    _start_at([subscription], {}, {key: table})
    assert (subscription.seen, subscription.sent) == (table, datetime_to_ms(caras.updated_at))
    later = Inspection.objects.create(owner=dan, site="dan's", pipe_id="d2")
    assert _take_in([subscription], {key: datetime_to_ms(later.updated_at)}) == []  # nothing of cara's
    assert subscription.sent == datetime_to_ms(caras.updated_at)


def test_last_event_id_parsing():
    from django_offline_sync.events import _event_id, _resume_point

    assert _resume_point(_event_id({"Task": 5, "Note": 0})) == {"task": 5, "note": 0}
    assert _resume_point("Task:12,garbage,:3,Note:x") == {"task": 12}
    assert _resume_point(None) == {}


def test_a_last_event_id_no_stamp_could_have_is_ignored():
    from django_offline_sync.events import _resume_point
    from django_offline_sync.wire import MAX_MS

    # int() refuses more than 4300 digits and a superscript that isdigit() accepts: both were a
    # 500 from one header. A stamp past the last timestamp was never sent and would silence
    # the stream for good; digits other than ASCII are no id this server wrote.
    assert _resume_point(f"Task:{'9' * 5000},Note:7") == {"note": 7}
    assert _resume_point(f"Task:\u00b2,Note:{'0' * 5000}7") == {"note": 7}
    assert _resume_point(f"Task:\u0663,Note:{MAX_MS + 1},Inspection:{MAX_MS}") == {"inspection": MAX_MS}


@pytest.mark.parametrize("payload", ["\u00b2", "\u0663", "9" * 5000, "-1", "", "1.5"])
def test_a_notification_no_write_sent_is_not_a_stamp(payload):
    """The LISTEN task reads each payload's stamp as event ids are read: a NOTIFY on the channel
    by anyone who can connect (``²`` passes ``isdigit()``, which ``int()`` refuses) must not
    end the task with a ValueError, which would leave every stream polling."""
    from django_offline_sync.events import _stamp_of

    assert _stamp_of(payload) is None
    assert _stamp_of("0017") == 17


def _run(coroutine):
    """``asyncio.run`` in a thread of its own: an earlier test (Playwright's sync API, say) may
    have left an event loop running in this one, where asyncio.run() refuses to start."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(TIMEOUT)


def test_a_subscription_cancelled_while_it_is_checked_gives_its_stream_back(monkeypatch):
    # Django cancels the view when the client disconnects; a check still running in its
    # thread then takes a slot that nothing would give back, until the caller is locked out.
    import asyncio

    from django.test import AsyncRequestFactory

    from django_offline_sync import events as module

    streams = module._Streams()
    checking, release = threading.Event(), threading.Event()

    def slow_open(request, tables):
        checking.set()
        release.wait(TIMEOUT)
        return [], {}, streams.take("address:192.0.2.1", 1)

    monkeypatch.setattr(module, "_STREAMS", streams)
    monkeypatch.setattr(module, "_open", slow_open)
    view = module.events_view({})

    async def disconnect_while_checked() -> None:
        task = asyncio.ensure_future(view(AsyncRequestFactory().get("/tables/$events?tables=Task")))
        while not checking.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):  # the check ends in its thread after the view was cancelled
            await asyncio.sleep(0.01)
            try:
                streams.take("address:192.0.2.1", 1)()
                return
            except module.TooManyStreams:
                pass
        raise AssertionError("the slot taken by the cancelled subscription was never given back")

    _run(disconnect_while_checked())


def test_giving_a_stream_back_never_waits_for_the_lock():
    # A dropped response gives its slot back from a weakref finalizer, which the garbage
    # collector may run on any thread at any allocation, one inside take() with the lock
    # held included: give_back must not wait for that lock, or the thread never wakes.
    from django_offline_sync.events import _Streams

    streams = _Streams()
    give_back = streams.take("user:1", 1)
    done = threading.Event()

    def collected_inside_take() -> None:
        with streams._lock:
            give_back()
            give_back()  # once only
        done.set()

    threading.Thread(target=collected_inside_take, daemon=True).start()
    assert done.wait(5), "give_back waited for the lock its own thread held"
    streams.take("user:1", 1)  # the slot is back
    with pytest.raises(Exception, match="At most 1"):
        streams.take("user:1", 1)


def test_a_response_dropped_before_it_streamed_gives_its_stream_back(monkeypatch):
    import gc

    from django.test import AsyncRequestFactory

    from django_offline_sync import events as module

    class Hub:
        async def subscribe(self, models):
            return [("default", "task") for _ in models]

        def unsubscribe(self, keys):
            pass

    streams = module._Streams()
    monkeypatch.setattr(module, "_STREAMS", streams)
    monkeypatch.setattr(module, "_hub", Hub)
    monkeypatch.setattr(module, "_open", lambda request, tables: ([], {}, streams.take("user:7", 1)))
    view = module.events_view({})

    response = _run(view(AsyncRequestFactory().get("/tables/$events?tables=Task")))
    assert response.status_code == 200
    with pytest.raises(module.TooManyStreams):
        streams.take("user:7", 1)
    del response  # a middleware's answer instead, say: the stream never started
    gc.collect()
    streams.take("user:7", 1)


def test_a_forged_x_forwarded_for_is_not_another_caller(settings):
    # DRF's get_ident reads the whole X-Forwarded-For header without NUM_PROXIES: one
    # signed-out client writing a new header per subscription escaped the streams limit.
    from types import SimpleNamespace

    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from django_offline_sync.events import _caller

    def caller(forwarded):
        request = RequestFactory().get("/tables/$events", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.7")
        request.user = AnonymousUser()
        return _caller(SimpleNamespace(request=request))

    assert caller("1.1.1.1") == caller("2.2.2.2") == "address:10.0.0.7"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert (caller("1.1.1.1"), caller("2.2.2.2")) == ("address:1.1.1.1", "address:2.2.2.2")
