"""The client's batched push over real HTTP against a live server (``docs/batch.rst``)."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
from django.db import connection

from django_offline_sync.client import Resolution, SyncClient, TransportError
from django_offline_sync.models import SyncBatch
from django_offline_sync.signals import sync_committed
from example_project.tasks.models import Note, Task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADERS = {"v2": {"ZUMO-API-VERSION": "2.0.0"}, "v3": {"ZUMO-API-VERSION": "3.0.0"}}


class Recorder(httpx.HTTPTransport):
    """A real HTTP transport that keeps what it sent, and can lose the answer to the next POST."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.answers: list[httpx.Response] = []
        self.lose_next_post = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = super().handle_request(request)
        response.read()
        self.answers.append(response)
        if request.method == "POST" and self.lose_next_post:
            self.lose_next_post = False  # the server committed; the answer never arrives
            raise httpx.ReadError("connection reset after the server answered")
        return response

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests if r.method != "GET"]


@pytest.fixture
def device(live_server, tmp_path, generation):
    clients: list[SyncClient] = []

    def make(name: str = "device", **kwargs) -> SyncClient:
        recorder = Recorder()
        kwargs.setdefault("backoff", 0)
        client = SyncClient(
            live_server.url, tmp_path / f"{name}.db", generation=generation, transport=recorder, timeout=10, **kwargs
        )
        client.recorder = recorder  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def committed():
    seen: list[tuple[str, str, str]] = []

    def record(sender, instance, operation, **kwargs):
        seen.append((sender.__name__, instance.pk, operation))

    sync_committed.connect(record)
    yield seen
    sync_committed.disconnect(record)


def queue_task_with_notes(client: SyncClient, notes: int = 2) -> str:
    task = client.table("Task").insert({"text": "roof"})
    for i in range(notes):
        client.table("Note").insert({"taskId": task["id"], "body": f"note {i}"})
    return task["id"]


def test_the_queue_goes_in_one_batch_when_the_server_offers_it(device, committed):
    client = device()
    task_id = queue_task_with_notes(client)
    result = client.push()
    assert result.ok and result.pushed == 3 and result.remaining == 0
    assert client.recorder.writes() == [("POST", "/tables/$batch")]
    assert Note.objects.filter(task_id=task_id).count() == 2
    server = Task.objects.get(pk=task_id)
    from django_offline_sync.wire import encode_version

    assert client.table("Task").get(task_id)["version"] == encode_version(server.version)
    assert [c[2] for c in committed] == ["insert"] * 3


def test_batches_follow_the_queue_order_and_the_servers_limit(device, settings):
    settings.OFFLINE_SYNC = {"BATCH_MAX_OPERATIONS": 4}
    client = device()
    ids = [client.table("Task").insert({"text": str(i)})["id"] for i in range(10)]
    result = client.push()
    assert result.ok and result.pushed == 10
    assert client.recorder.writes() == [("POST", "/tables/$batch")] * 3
    bodies = [r for r in client.recorder.requests if r.method == "POST"]
    import json

    sent = [op["id"] for r in bodies for op in json.loads(r.content)["operations"]]
    assert sent == ids
    assert Task.objects.count() == 10


def test_a_batch_with_a_failing_middle_operation_applies_nothing(live_server, generation, committed):
    stale = Task.objects.create(text="server")
    old_version = stale.version
    stale.text = "changed on the server"
    stale.save()
    first, last = str(uuid.uuid4()), str(uuid.uuid4())
    from django_offline_sync.wire import encode_version

    body = {
        "batchId": str(uuid.uuid4()),
        "operations": [
            {"op": "insert", "table": "Task", "item": {"id": first, "text": "a"}},
            {
                "op": "update",
                "table": "Task",
                "id": stale.pk,
                "item": {"text": "b"},
                "version": encode_version(old_version),
            },
            {"op": "insert", "table": "Note", "item": {"id": last, "taskId": first, "body": "c"}},
        ],
    }
    response = httpx.post(f"{live_server.url}/tables/$batch", json=body, headers=HEADERS[generation])
    assert response.status_code == 412
    assert response.json()["index"] == 1
    assert response.json()["error"]["text"] == "changed on the server"
    assert not Task.objects.filter(pk=first).exists() and not Note.objects.filter(pk=last).exists()
    assert Task.objects.get(pk=stale.pk).text == "changed on the server"
    assert committed == []


def test_a_conflict_inside_a_batch_goes_to_the_handler_for_that_operation(device):
    task = Task.objects.create(text="shared")
    client = device()
    client.pull("Task")
    before = client.table("Task").insert({"text": "before"})
    client.table("Task").update({"id": task.pk, "text": "mine"})
    after = client.table("Task").insert({"text": "after"})
    Task.objects.get(pk=task.pk).save()  # a concurrent edit: the device's version is stale
    seen = []

    def handler(conflict):
        seen.append(conflict.operation.item_id)
        return Resolution.client_wins()

    result = client.push(conflict_handler=handler)
    assert result.ok and result.remaining == 0, result.summary()
    assert seen == [task.pk]
    assert Task.objects.get(pk=task.pk).text == "mine"
    assert Task.objects.filter(pk__in=[before["id"], after["id"]]).count() == 2
    writes = client.recorder.writes()
    assert writes[0] == ("POST", "/tables/$batch")  # refused at the update: nothing applied
    assert ("POST", "/tables/Task") in writes  # then the insert before it, the update alone, the rest


def test_a_lost_batch_answer_is_retried_and_applied_once(device, committed):
    client = device()
    queue_task_with_notes(client)
    client.recorder.lose_next_post = True
    result = client.push()
    assert result.ok and result.pushed == 3
    posts = [r for r in client.recorder.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[0].content == posts[1].content  # the same batch, the same batchId
    assert client.recorder.answers[-1].headers["X-Batch-Replayed"] == "true"
    assert Task.objects.count() == 1 and Note.objects.count() == 2
    assert len(committed) == 3
    assert SyncBatch.objects.count() == 1


def test_a_batch_resent_by_a_new_process_is_applied_once(device, tmp_path, live_server, generation, committed):
    first = device("phone", retries=0)
    queue_task_with_notes(first)
    first.recorder.lose_next_post = True
    with pytest.raises(TransportError):
        first.push()
    assert first.store.pending_count() == 3  # the device never learnt the outcome
    first.close()
    again = SyncClient(live_server.url, tmp_path / "phone.db", generation=generation, timeout=10)
    try:
        result = again.push()
    finally:
        again.close()
    assert result.ok and result.pushed == 3
    assert Task.objects.count() == 1 and Note.objects.count() == 2
    assert len(committed) == 3


def test_the_client_falls_back_to_single_requests(device, settings, committed):
    settings.ROOT_URLCONF = "tests.batchless_urls"
    client = device()
    queue_task_with_notes(client)
    result = client.push()
    assert result.ok and result.pushed == 3
    assert client.recorder.writes() == [("POST", "/tables/Task"), ("POST", "/tables/Note"), ("POST", "/tables/Note")]
    assert [r.url.path for r in client.recorder.requests if r.method == "GET"] == ["/tables/$batch"]
    assert Note.objects.count() == 2


def test_no_batch_pushes_one_request_per_operation(device):
    client = device(batch=False)
    queue_task_with_notes(client, notes=1)
    assert client.push().ok
    assert client.recorder.writes() == [("POST", "/tables/Task"), ("POST", "/tables/Note")]


def test_concurrent_duplicates_apply_once(live_server, generation, committed):
    if connection.vendor == "sqlite":
        pytest.skip("the live server shares one in-memory SQLite connection between threads")
    body = {
        "batchId": str(uuid.uuid4()),
        "operations": [{"op": "insert", "table": "Task", "item": {"text": str(i)}} for i in range(20)],
    }
    answers: list[httpx.Response] = []
    start = threading.Barrier(4)

    def send():
        start.wait()
        answers.append(
            httpx.post(f"{live_server.url}/tables/$batch", json=body, headers=HEADERS[generation], timeout=30)
        )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert Task.objects.count() == 20 and len(committed) == 20
