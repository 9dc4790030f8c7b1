"""``POST /tables/$batch``: all or nothing, the single requests' own checks, idempotent retries."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_offline_sync.models import SyncBatch, SyncClock, SyncRejection
from django_offline_sync.signals import sync_committed
from example_project.tasks.models import Inspection, Note, Task
from tests.conftest import ZumoClient

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "/tables/$batch"


def new_id() -> str:
    return str(uuid.uuid4())


def batch(*operations, batch_id=None):
    return {"batchId": batch_id or new_id(), "operations": list(operations)}


@pytest.fixture(params=["v2", "v3"])
def client(request):
    return ZumoClient(request.param)


@pytest.fixture
def signals():
    received = []

    def record(sender, instance, operation, **kwargs):
        received.append((sender.__name__, instance.pk, operation))

    sync_committed.connect(record)
    yield received
    sync_committed.disconnect(record)


def test_discovery_states_support_and_limits(client):
    with override_settings(OFFLINE_SYNC={"BATCH_MAX_OPERATIONS": 7, "BATCH_MAX_BODY_BYTES": 5000}):
        response = client.get(BATCH)
    assert response.status_code == 200
    body = response.json()
    assert body["batch"] is True
    assert body["maxOperations"] == 7 and body["maxBodyBytes"] == 5000
    assert body["operations"] == ["insert", "update", "delete", "undelete"]
    assert set(body["tables"]) == {"Task", "Note", "Inspection"}


def test_an_unacceptable_media_type_is_answered_in_the_callers_shape(client):
    """DRF negotiates the media type before it knows the generation; the 406 still comes in
    the caller's shape (``{title, status}`` in v3, ``{error}`` in v2), as the tables' do."""
    operation = {"op": "insert", "table": "Task", "item": {"id": new_id(), "text": "x"}}
    response = client.post(BATCH, batch(operation), format="json", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    body = response.json()
    if client.generation == "v3":
        assert body["status"] == 406 and "Accept" in body["title"], body
    else:
        assert "Accept" in body["error"], body
    assert Task.all_objects.count() == 0


def test_a_task_and_its_notes_land_together(client, signals):
    task_id, note_ids = new_id(), [new_id(), new_id()]
    ops = [{"op": "insert", "table": "Task", "item": {"id": task_id, "text": "roof"}}]
    ops += [{"op": "insert", "table": "Note", "item": {"id": n, "taskId": task_id, "body": "tile"}} for n in note_ids]
    response = client.post_json(BATCH, batch(*ops))
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 201]
    assert results[0]["item"]["id"] == task_id and results[0]["item"]["text"] == "roof"
    assert results[0]["etag"] == response.json()["results"][0]["etag"]
    # each result is the row as the single request returns it
    single = client.get(f"/tables/Task/{task_id}").json()
    assert results[0]["item"] == single
    assert Note.objects.filter(task_id=task_id).count() == 2
    assert signals == [("Task", task_id, "insert"), ("Note", note_ids[0], "insert"), ("Note", note_ids[1], "insert")]


def test_a_failing_middle_operation_applies_nothing(client, signals):
    kept = Task.objects.create(text="before")
    stale = kept.version
    Task.objects.get(pk=kept.pk).save()  # someone else changed it: the batch's version is stale
    current = Task.objects.get(pk=kept.pk)
    clocks = list(SyncClock.objects.values_list("table", "last_ms"))
    first, last = new_id(), new_id()
    from django_offline_sync.wire import encode_version

    response = client.post_json(
        BATCH,
        batch(
            {"op": "insert", "table": "Task", "item": {"id": first, "text": "a"}},
            {
                "op": "update",
                "table": "Task",
                "id": kept.pk,
                "item": {"text": "mine"},
                "version": encode_version(stale),
            },
            {"op": "insert", "table": "Task", "item": {"id": last, "text": "c"}},
        ),
    )
    assert response.status_code == 412, response.content
    body = response.json()
    assert body["index"] == 1 and body["status"] == 412 and body["errorCode"] == "batch_operation_failed"
    assert body["error"]["id"] == kept.pk and body["error"]["text"] == "before"  # the server's row
    assert "Operation 1 (update Task/" in body["message"]
    assert not Task.objects.filter(pk__in=[first, last]).exists()
    assert Task.objects.get(pk=kept.pk).version == current.version
    assert list(SyncClock.objects.values_list("table", "last_ms")) == clocks
    assert signals == []
    assert not SyncBatch.objects.exists()


@pytest.mark.parametrize(
    ("operation", "status", "code"),
    [
        ({"op": "update", "table": "Task", "id": "missing", "item": {"text": "x"}}, 404, "not_found"),
        ({"op": "insert", "table": "Task", "item": {"priority": "high"}}, 400, "invalid_item"),
        ({"op": "insert", "table": "Task", "item": {"nope": 1}}, 400, "unknown_field"),
        ({"op": "insert", "table": "Nothing", "item": {}}, 404, "not_found"),
        ({"op": "upsert", "table": "Task", "item": {}}, 400, "invalid_batch"),
        ({"op": "delete", "table": "Task"}, 400, "invalid_batch"),
        ({"op": "update", "table": "Task", "id": "x", "item": {"id": "y"}}, 400, "invalid_batch"),
        ({"op": "delete", "table": "Task", "id": "x", "version": "not base64!"}, 400, "invalid_precondition"),
    ],
)
def test_an_operations_own_error_names_its_index(client, operation, status, code):
    response = client.post_json(BATCH, batch({"op": "insert", "table": "Task", "item": {"text": "ok"}}, operation))
    assert response.status_code == status, response.content
    body = response.json()
    assert body["index"] == 1 and body["status"] == status
    assert body["error"]["errorCode"] == code
    assert Task.objects.count() == 0


def test_duplicate_insert_is_409_with_the_server_row(client):
    task = Task.objects.create(text="there")
    response = client.post_json(BATCH, batch({"op": "insert", "table": "Task", "item": {"id": task.pk, "text": "x"}}))
    assert response.status_code == 409
    assert response.json()["error"]["text"] == "there" and response.json()["index"] == 0


def test_inserting_an_id_twice_is_409_naming_the_earlier_operation(client):
    # The 409's body is operation 0's row, which the batch's rollback undid: the message says
    # so rather than calling it the server's item, and no ETag of a version never committed.
    response = client.post_json(
        BATCH,
        batch(
            {"op": "insert", "table": "Task", "item": {"id": "dupx", "text": "a"}},
            {"op": "insert", "table": "Task", "item": {"id": "dupx", "text": "b"}},
        ),
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["index"] == 1 and body["status"] == 409
    assert "operation 0 of this batch" in body["message"]
    assert "insert Task/dupx" in body["message"]
    assert "server's item" not in body["message"]
    assert "etag" not in body and "ETag" not in response
    assert client.get("/tables/Task/dupx").status_code == 404
    # No ledger conflict with a row that never reached the server (nothing to resolve).
    assert not SyncRejection.objects.filter(row_id="dupx").exists()


def test_a_stale_version_after_an_update_in_the_batch_names_that_operation(client):
    from django_offline_sync.wire import encode_version

    task = Task.objects.create(text="t")
    stale = encode_version(task.version)
    response = client.post_json(
        BATCH,
        batch(
            {"op": "update", "table": "Task", "id": task.pk, "item": {"text": "u"}, "version": stale},
            {"op": "delete", "table": "Task", "id": task.pk, "version": stale},
        ),
    )
    assert response.status_code == 412, response.content
    body = response.json()
    assert body["index"] == 1 and "operation 0 of this batch" in body["message"]
    assert body["error"]["text"] == "u" and "etag" not in body
    assert Task.objects.get(pk=task.pk).text == "t"


def test_a_conflict_with_a_committed_row_keeps_its_etag_and_message(client):
    task = Task.objects.create(text="there")
    other = new_id()
    response = client.post_json(
        BATCH,
        batch(
            {"op": "insert", "table": "Task", "item": {"id": other, "text": "x"}},
            {"op": "insert", "table": "Task", "item": {"id": task.pk, "text": "x"}},
        ),
    )
    assert response.status_code == 409
    body = response.json()
    assert body["index"] == 1 and "this batch" not in body["message"] and body["etag"]
    assert SyncRejection.objects.filter(row_id=task.pk, status=409).count() == 1  # a real conflict


def test_update_delete_undelete_with_versions(client):
    task = Task.objects.create(text="t")
    from django_offline_sync.wire import encode_version

    response = client.post_json(
        BATCH,
        batch(
            {
                "op": "update",
                "table": "Task",
                "id": task.pk,
                "item": {"text": "u"},
                "version": encode_version(task.version),
            },
            {"op": "delete", "table": "Task", "id": task.pk},
            {"op": "undelete", "table": "Task", "id": task.pk},
        ),
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0]["item"]["text"] == "u"
    assert results[1] == {"status": 204, "item": None}
    assert results[2]["item"]["deleted"] is False
    task.refresh_from_db()
    assert task.text == "u" and not task.deleted


def test_v2_update_merges_and_v3_update_replaces():
    for generation, expected in (("v2", 5), ("v3", 0)):
        task = Task.objects.create(text="t", priority=5)
        response = ZumoClient(generation).post_json(
            BATCH, batch({"op": "update", "table": "Task", "id": task.pk, "item": {"text": "new"}})
        )
        assert response.status_code == 200, response.content
        assert Task.objects.get(pk=task.pk).priority == expected, generation


def test_a_retry_replays_and_applies_nothing_twice(client, signals):
    body = batch({"op": "insert", "table": "Task", "item": {"text": "once"}})
    first = client.post_json(BATCH, body)
    assert first.status_code == 200
    again = client.post_json(BATCH, body)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again["X-Batch-Replayed"] == "true"
    assert Task.objects.count() == 1
    assert len(signals) == 1


def test_a_reused_batch_id_with_other_operations_is_refused(client):
    batch_id = new_id()
    assert (
        client.post_json(BATCH, batch({"op": "insert", "table": "Task", "item": {}}, batch_id=batch_id)).status_code
        == 200
    )
    response = client.post_json(BATCH, batch({"op": "insert", "table": "Note", "item": {}}, batch_id=batch_id))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "batch_id_reused"


def test_a_failed_batch_can_be_retried_once_fixed(client):
    batch_id = new_id()
    failing = batch({"op": "update", "table": "Task", "id": "later", "item": {"text": "x"}}, batch_id=batch_id)
    assert client.post_json(BATCH, failing).status_code == 404
    Task.objects.create(id="later", text="now here")
    assert client.post_json(BATCH, failing).status_code == 200
    assert Task.objects.get(pk="later").text == "x"


def test_batch_ids_are_per_user():
    users = [get_user_model().objects.create_user(name) for name in ("ann", "bob")]
    batch_id = new_id()
    for user in users:
        client = ZumoClient("v3")
        client.force_authenticate(user)
        body = batch(
            {"op": "insert", "table": "Inspection", "item": {"site": user.username, "pipeId": "p"}}, batch_id=batch_id
        )
        assert client.post_json(BATCH, body).status_code == 200
    assert sorted(Inspection.objects.values_list("site", flat=True)) == ["ann", "bob"]
    assert [i.owner for i in Inspection.objects.order_by("site")] == users


def test_permissions_and_data_view_are_the_tables_own():
    ann, bob = (get_user_model().objects.create_user(name) for name in ("ann", "bob"))
    theirs = Inspection.objects.create(owner=ann, site="s", pipe_id="p")
    anonymous = ZumoClient("v3").post_json(
        BATCH, batch({"op": "insert", "table": "Inspection", "item": {"site": "x", "pipeId": "p"}})
    )
    assert anonymous.status_code in (401, 403) and anonymous.json()["index"] == 0
    client = ZumoClient("v3")
    client.force_authenticate(bob)
    response = client.post_json(BATCH, batch({"op": "delete", "table": "Inspection", "id": theirs.pk}))
    assert response.status_code == 404  # outside bob's data view, as for DELETE /tables/Inspection/{id}
    assert not Inspection.objects.get(pk=theirs.pk).deleted


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([], 400, "body_not_object"),
        ({"operations": [{"op": "insert", "table": "Task", "item": {}}]}, 400, "invalid_batch"),
        ({"batchId": "b", "operations": []}, 400, "invalid_batch"),
        ({"batchId": "b", "operations": {}}, 400, "invalid_batch"),
        ({"batchId": 5, "operations": [{"op": "insert", "table": "Task", "item": {}}]}, 400, "invalid_batch"),
        ({"batchId": "b", "operations": [], "extra": 1}, 400, "invalid_batch"),
    ],
)
def test_malformed_batches_are_400(client, body, status, code):
    response = client.post_json(BATCH, body)
    assert response.status_code == status, response.content
    assert response.json()["errorCode"] == code


def test_limits(client):
    ops = [{"op": "insert", "table": "Task", "item": {}}] * 3
    with override_settings(OFFLINE_SYNC={"BATCH_MAX_OPERATIONS": 2}):
        response = client.post_json(BATCH, batch(*ops))
    assert response.status_code == 400 and response.json()["errorCode"] == "too_many_operations"
    with override_settings(OFFLINE_SYNC={"BATCH_MAX_BODY_BYTES": 200}):
        response = client.post_json(BATCH, batch({"op": "insert", "table": "Task", "item": {"text": "x" * 300}}))
    assert response.status_code == 413 and response.json()["errorCode"] == "payload_too_large"
    assert Task.objects.count() == 0


def test_one_transaction_for_the_whole_batch(client):
    ops = [{"op": "insert", "table": "Task", "item": {"text": str(i)}} for i in range(5)]
    with CaptureQueriesContext(connection) as queries:
        assert client.post_json(BATCH, batch(*ops)).status_code == 200
    statements = [q["sql"].upper() for q in queries.captured_queries]
    assert sum(1 for s in statements if s.startswith(("BEGIN", "COMMIT"))) <= 2 or connection.vendor != "sqlite"
    assert Task.objects.count() == 5


def test_a_version_sent_in_the_query_string_reaches_every_operation():
    client = ZumoClient("v1")  # no version header: the query parameter alone names v2
    client.credentials()
    task = Task.objects.create(text="t", priority=5)
    response = client.post(
        f"{BATCH}?ZUMO-API-VERSION=2.0.0",
        batch({"op": "update", "table": "Task", "id": task.pk, "item": {"text": "new"}}),
        format="json",
    )
    assert response.status_code == 200, response.content
    assert "updatedAt" in response.json()["results"][0]["item"]  # v2 names, not v1's __updatedAt
    assert Task.objects.get(pk=task.pk).priority == 5  # v2 merges


def test_table_names_match_in_any_case(client):
    response = client.post_json(BATCH, batch({"op": "insert", "table": "task", "item": {"text": "x"}}))
    assert response.status_code == 200
    assert Task.objects.get().text == "x"


def test_expired_batch_records_are_purged(client):
    import datetime as dt

    from django.core.management import call_command
    from django.utils import timezone

    body = batch({"op": "insert", "table": "Task", "item": {}})
    assert client.post_json(BATCH, body).status_code == 200
    SyncBatch.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    fresh = batch({"op": "insert", "table": "Task", "item": {}})
    assert client.post_json(BATCH, fresh).status_code == 200
    assert SyncBatch.objects.count() == 1  # the caller's own expired record went with its next batch
    SyncBatch.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    from io import StringIO

    out = StringIO()
    call_command("purge_sync_batches", stdout=out)
    assert "Deleted 1 batch record(s)" in out.getvalue()
    assert not SyncBatch.objects.exists()


# -- an operation reads its item as its single request reads its body ----------------------
# Raw JSON text: the defects lie in what Python's json makes of it (1e999 is read as infinity,
# \ud800 as a lone surrogate), which a test client encoding a dict cannot send.


def post_raw(client, path, text, method="post"):
    return getattr(client, method)(path, data=text.encode(), content_type="application/json")


def test_an_overflowing_number_is_refused_as_its_single_request_refuses_it(client):
    single = post_raw(client, "/tables/Task", '{"id": "s1", "priority": 1e999}')
    assert single.status_code == 400 and single.json()["errorCode"] == "invalid_item"
    for sign in ("", "-"):
        text = f'{{"batchId": "b{sign}", "operations": [{{"op": "insert", "table": "Task", '
        text += f'"item": {{"id": "x1", "priority": {sign}1e999}}}}]}}'
        response = post_raw(client, BATCH, text)
        assert response.status_code == 400, response.content  # not 200 with priority 0
        body = response.json()
        assert body["index"] == 0 and body["error"] == single.json()
    assert not Task.objects.exists() and not SyncBatch.objects.exists()


def test_an_update_stores_what_its_single_request_stores(client):
    # v3 updates replace (PUT), v2 updates merge (PATCH); either single request stores "inf"
    # for 1e999 in a text column, and the batch must store the same, not "" (null → default).
    method = "put" if client.generation == "v3" else "patch"
    single, batched = Task.objects.create(text="a"), Task.objects.create(text="a")
    assert post_raw(client, f"/tables/Task/{single.pk}", '{"text": 1e999}', method).status_code == 200
    text = f'{{"batchId": "b1", "operations": [{{"op": "update", "table": "Task", "id": "{batched.pk}", '
    text += '"item": {"text": 1e999}}]}'
    response = post_raw(client, BATCH, text)
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["item"]["text"] == "inf"
    assert Task.objects.get(pk=batched.pk).text == Task.objects.get(pk=single.pk).text == "inf"
    # A retry replays it; the same batchId with null (what orjson made of 1e999) is another batch.
    assert post_raw(client, BATCH, text)["X-Batch-Replayed"] == "true"
    reused = post_raw(client, BATCH, text.replace("1e999", "null"))
    assert reused.status_code == 400 and reused.json()["errorCode"] == "batch_id_reused"


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (r'{"text": "\ud800"}', "invalid_item"),
        (r'{"id": "a\ud800"}', "invalid_id"),
        (r'{"\ud800": 1}', "unknown_field"),
        ('{"priority": 123456789012345678901234567890}', "invalid_item"),
        ('{"id": 12345678901234567890123}', "invalid_id"),
        ('{"id": 1e999}', "invalid_id"),
    ],
)
def test_an_item_orjson_cannot_encode_is_refused_as_its_single_request(client, item, code):
    single = post_raw(client, "/tables/Task", item)
    assert single.status_code == 400 and single.json()["errorCode"] == code
    operation = f'{{"op": "insert", "table": "Task", "item": {item}}}'
    response = post_raw(client, BATCH, f'{{"batchId": "b1", "operations": [{operation}]}}')
    assert response.status_code == 400, response.content  # not a 500
    assert response.json()["index"] == 0 and response.json()["error"] == single.json()
    assert not Task.objects.exists() and not SyncBatch.objects.exists()


@pytest.mark.parametrize("batch_id", [r"\ud800x", r"\u0000y", r"x\udfff"])
def test_a_batch_id_no_database_can_store_is_400(client, batch_id):
    text = f'{{"batchId": "{batch_id}", "operations": [{{"op": "insert", "table": "Task", "item": {{}}}}]}}'
    response = post_raw(client, BATCH, text)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "invalid_batch" and "index" not in body
    assert "batchId must be text without NUL characters or lone surrogates" in str(body)
    assert not Task.objects.exists() and not SyncBatch.objects.exists()


@pytest.mark.parametrize(
    ("member", "operation"),
    [
        ("op", r'{"op": "insert\u0000", "table": "Task", "item": {}}'),
        ("table", r'{"op": "insert", "table": "Task\ud800", "item": {}}'),
        ("id", r'{"op": "update", "table": "Task", "id": "a\ud800", "item": {}}'),
        ("id", r'{"op": "delete", "table": "Task", "id": "a\u0000"}'),
        ("version", r'{"op": "delete", "table": "Task", "id": "t1", "version": "\ud800"}'),
    ],
)
def test_an_operation_member_no_database_can_store_is_400(client, member, operation):
    Task.objects.create(id="t1", text="kept")
    first = '{"op": "insert", "table": "Task", "item": {"text": "new"}}'
    response = post_raw(client, BATCH, f'{{"batchId": "b1", "operations": [{first}, {operation}]}}')
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["index"] == 1 and body["error"]["errorCode"] == "invalid_batch"
    assert f"{member} must be text without NUL characters or lone surrogates" in body["message"]
    assert list(Task.objects.values_list("id", "text", "deleted")) == [("t1", "kept", False)]
    assert not SyncBatch.objects.exists()


@pytest.mark.urls("tests.pipeline.urls")
def test_a_table_with_decimals_is_batched_and_replayed_with_exact_numbers(client):
    # The batch record held the answer through orjson alone, which refuses a Decimal: every
    # batch touching a DecimalField was a 500 (retried by the clients, never applied).
    from tests.models import Ledger

    row = Ledger.objects.create(amount="1.5000000000")
    body = batch(
        {"op": "insert", "table": "Ledger", "item": {"id": "l1", "amount": "12345678901234567890.1234567890"}},
        {"op": "update", "table": "Ledger", "id": row.pk, "item": {"id": row.pk, "amount": "2.50"}},
    )
    response = client.post(BATCH, body, format="json")
    assert response.status_code == 200, response.content
    first = response.content
    assert b'"amount":12345678901234567890.1234567890' in first
    assert b'"amount":2.5000000000' in first  # read to the field's decimal places, as DRF does
    replayed = client.post(BATCH, body, format="json")
    assert replayed["X-Batch-Replayed"] == "true"
    assert replayed.content == first
    assert Ledger.objects.get(pk=row.pk).amount == Decimal("2.50")
