"""The conflict and rejection ledger: what is recorded, that it survives the rollback, resolving."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings

from django_offline_sync.ledger import ResolveError, apply_client_item, keep_server_row
from django_offline_sync.models import SyncRejection
from django_offline_sync.signals import sync_committed
from django_offline_sync.wire import encode_version
from example_project.tasks.models import Note, Task
from tests.conftest import ZumoClient

pytestmark = pytest.mark.django_db


def etag(task: Task) -> str:
    return f'"{encode_version(task.version)}"'


@pytest.fixture
def task() -> Task:
    return Task.objects.create(text="server text", priority=1)


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw")


def test_412_is_recorded_with_both_items(task, alice):
    client = ZumoClient("v3")
    client.force_authenticate(alice)
    stale = etag(task)
    task.text = "changed on the server"
    task.save()

    response = client.put_json(f"/tables/Task/{task.pk}", {"text": "mine", "priority": 9}, HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    entry = SyncRejection.objects.get()
    assert (entry.table, entry.model, entry.row_id, entry.operation) == ("tasks_task", "tasks.task", task.pk, "replace")
    assert (entry.generation, entry.status, entry.user, entry.resolution) == ("v3", 412, alice, "")
    assert entry.client_item == {"text": "mine", "priority": 9}
    assert entry.base_version == stale.strip('"')
    assert entry.server_item["text"] == "changed on the server"
    assert entry.server_version == encode_version(Task.objects.get().version)
    assert entry.is_conflict and entry.is_open
    assert Task.objects.get().text == "changed on the server"  # the refused write left no trace


def test_409_of_a_v2_body_version_and_of_a_duplicate_insert(task):
    client = ZumoClient("v2")
    stale = encode_version(task.version)
    task.save()
    assert client.patch_json(f"/tables/Task/{task.pk}", {"text": "x", "version": stale}).status_code == 409
    assert client.post_json("/tables/Task", {"id": task.pk, "text": "dup"}).status_code == 409
    update, insert = SyncRejection.objects.order_by("id")
    assert (update.operation, update.status, update.base_version) == ("update", 409, stale)
    assert (insert.operation, insert.status, insert.client_item) == ("insert", 409, {"id": task.pk, "text": "dup"})
    assert insert.server_item["id"] == task.pk and insert.user is None


def test_400_and_404_on_a_write_are_recorded(task):
    client = ZumoClient("v2")
    assert client.patch_json(f"/tables/Task/{task.pk}", {"priority": "high"}).status_code == 400
    assert client.patch_json("/tables/Task/nope", {"text": "x"}).status_code == 404
    assert client.delete("/tables/Task/nope").status_code == 404
    bad, missing, missing_delete = SyncRejection.objects.order_by("id")
    assert (bad.status, bad.error_code, bad.operation) == (400, "invalid_item", "update")
    assert "priority" in bad.message
    assert bad.server_item["priority"] == 1  # the row as it stands
    assert (missing.status, missing.row_id, missing.server_item) == (404, "nope", None)
    assert (missing_delete.operation, missing_delete.client_item) == ("delete", None)
    assert Task.objects.get().priority == 1


def test_410_on_a_v3_write_to_a_tombstone_is_recorded(task):
    task.delete()
    assert ZumoClient("v3").delete(f"/tables/Task/{task.pk}").status_code == 410
    assert SyncRejection.objects.get().status == 410


@pytest.mark.urls("tests.ledger_urls")
def test_403_on_a_write_is_recorded(task, alice):
    client = ZumoClient("v3")
    client.force_authenticate(alice)
    assert client.patch_json(f"/staff/StaffTask/{task.pk}", {"text": "x"}).status_code == 403
    entry = SyncRejection.objects.get()
    assert (entry.status, entry.user, entry.error_code) == (403, alice, "permission_denied")


@pytest.mark.urls("tests.ledger_urls")
def test_an_anonymous_caller_refused_as_403_is_not_recorded(task):
    # With no authentication class that sends a challenge (SessionAuthentication alone),
    # DRF answers "not signed in" as 403 instead of 401: every anonymous write, a body of up
    # to MAX_BODY_BYTES each, became a ledger entry on a table it may not write at all.
    client = ZumoClient("v3")
    item = {"text": "x" * 100_000}
    assert client.patch_json(f"/staff/SessionStaffTask/{task.pk}", item).status_code == 403
    assert client.delete(f"/staff/SessionStaffTask/{task.pk}").status_code == 403
    assert client.patch_json(f"/staff/StaffTask/{task.pk}", item).status_code == 401
    assert not SyncRejection.objects.exists()


def test_what_is_not_recorded(task):
    client = ZumoClient("v2")
    assert client.patch(f"/tables/Task/{task.pk}", "{not json", content_type="application/json").status_code == 400
    assert client.patch(f"/tables/Task/{task.pk}", "[1]", content_type="application/json").status_code == 400
    assert client.patch(f"/tables/Task/{task.pk}", "", content_type="application/json").status_code == 400
    assert client.get("/tables/Task/nope").status_code == 404  # a read
    assert client.patch_json(f"/tables/Task/{task.pk}", {"text": "fine"}).status_code == 200
    assert ZumoClient("v2").get("/tables/Inspection").status_code in (401, 403)
    assert not SyncRejection.objects.exists()


def test_recording_can_be_turned_off(task):
    with override_settings(OFFLINE_SYNC={"RECORD_REJECTIONS": False}):
        assert ZumoClient("v2").patch_json("/tables/Task/nope", {"text": "x"}).status_code == 404
    assert not SyncRejection.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("atomic_requests", [False, True])
def test_the_entry_survives_the_rollback_of_the_refused_write(atomic_requests, monkeypatch):
    """Autocommit, and a request wrapped in its own transaction (ATOMIC_REQUESTS) rolled back."""
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    task = Task.objects.create(text="server text")
    stale = etag(task)
    task.save()
    response = ZumoClient("v3").put_json(f"/tables/Task/{task.pk}", {"text": "mine"}, HTTP_IF_MATCH=stale)
    assert response.status_code == 412
    assert Task.objects.get().text == "server text"
    entry = SyncRejection.objects.get()
    assert entry.status == 412 and entry.client_item == {"text": "mine"}


# -- resolving ------------------------------------------------------------------------------


def _conflict(task: Task, body: dict, generation: str = "v3") -> SyncRejection:
    stale = etag(task)
    Task.all_objects.get(pk=task.pk).save()  # someone else wrote it meanwhile
    client = ZumoClient(generation)
    if generation == "v3":
        assert client.put_json(f"/tables/Task/{task.pk}", body, HTTP_IF_MATCH=stale).status_code == 412
    else:
        assert client.patch_json(f"/tables/Task/{task.pk}", body, HTTP_IF_MATCH=stale).status_code == 412
    return SyncRejection.objects.latest("id")


def test_keep_the_server_row_marks_it_resolved(task, alice):
    entry = _conflict(task, {"text": "mine"})
    before = Task.objects.get()
    keep_server_row(entry, alice)
    entry.refresh_from_db()
    assert (entry.resolution, entry.resolved_by) == ("server", alice) and entry.resolved_at is not None
    assert Task.objects.get().version == before.version


def test_apply_the_client_item_is_a_stamped_write(task, alice, django_capture_on_commit_callbacks):
    entry = _conflict(task, {"text": "mine", "priority": 7}, generation="v2")
    before = Task.objects.get()
    sent = []
    receiver = lambda **kw: sent.append((kw["operation"], kw["instance"].pk))  # noqa: E731
    sync_committed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            apply_client_item(entry, alice)
    finally:
        sync_committed.disconnect(receiver)
    after = Task.objects.get()
    assert (after.text, after.priority) == ("mine", 7)
    assert after.updated_at > before.updated_at and after.version != before.version
    entry.refresh_from_db()
    assert (entry.resolution, entry.resolved_by) == ("client", alice)
    assert entry.applied_version == encode_version(after.version)
    assert sent == [("update", task.pk)]
    with pytest.raises(ResolveError, match="already resolved"):
        apply_client_item(entry, alice)


def test_apply_a_refused_delete_and_an_update_of_a_deleted_row(task):
    stale = etag(task)
    task.save()
    assert ZumoClient("v3").delete(f"/tables/Task/{task.pk}", HTTP_IF_MATCH=stale).status_code == 412
    apply_client_item(SyncRejection.objects.get(), None)
    assert Task.all_objects.get().deleted

    other = Task.objects.create(text="other")
    entry = _conflict(other, {"text": "back"}, generation="v2")
    Task.objects.get(pk=other.pk).delete()  # deleted on the server since
    apply_client_item(entry, None)
    restored = Task.objects.get(pk=other.pk)
    assert restored.text == "back" and not restored.deleted


def test_only_open_conflicts_are_applied(task):
    assert ZumoClient("v2").patch_json(f"/tables/Task/{task.pk}", {"priority": "x"}).status_code == 400
    with pytest.raises(ResolveError, match="Only conflicts"):
        apply_client_item(SyncRejection.objects.get(), None)


def test_an_item_no_longer_valid_is_refused_without_writing(task):
    note_owner = Task.objects.create(text="owner")
    note = Note.objects.create(task=note_owner, body="n")
    stale = f'"{encode_version(note.version)}"'
    note.save()
    body = {"body": "mine", "taskId": note_owner.pk}
    assert ZumoClient("v3").put_json(f"/tables/Note/{note.pk}", body, HTTP_IF_MATCH=stale).status_code == 412
    entry = SyncRejection.objects.get()
    entry.client_item = {"body": "mine", "taskId": "no-such-task"}
    entry.save()
    version = Note.objects.get().version
    with pytest.raises(ResolveError, match="no longer valid"):
        apply_client_item(entry, None)
    assert Note.objects.get().version == version
    entry.refresh_from_db()
    assert entry.is_open


# -- retention ------------------------------------------------------------------------------


def test_purge_rejections(task):
    for _ in range(3):
        ZumoClient("v2").patch_json("/tables/Task/nope", {"text": "x"})
    old = SyncRejection.objects.order_by("id")[:2]
    import datetime as dt

    from django.utils import timezone

    SyncRejection.objects.filter(id__in=[e.id for e in old]).update(created_at=timezone.now() - dt.timedelta(days=40))
    out = StringIO()
    call_command("purge_rejections", "--older-than", "30d", "--dry-run", stdout=out)
    assert "Would remove 2 ledger entries" in out.getvalue()
    assert SyncRejection.objects.count() == 3
    with override_settings(OFFLINE_SYNC={"REJECTION_RETENTION": 30 * 86400}):
        call_command("purge_rejections", "--batch-size", "1", stdout=out)
    assert "Removed 2 ledger entries" in out.getvalue()
    assert SyncRejection.objects.count() == 1
    with pytest.raises(CommandError, match="REJECTION_RETENTION"):
        call_command("purge_rejections")


def test_entries_are_json_with_the_wire_shape(task):
    ZumoClient("v1").patch_json(f"/tables/Task/{task.pk}", {"priority": "x"})
    entry = SyncRejection.objects.get()
    assert entry.generation == "v1"
    json.dumps(entry.server_item)


@pytest.mark.django_db(transaction=True)
def test_a_refused_operation_of_a_batch_is_recorded_after_the_batch_rolled_back():
    task = Task.objects.create(text="server")
    stale = encode_version(task.version)
    task.save()
    body = {
        "batchId": "b-1",
        "operations": [
            {"op": "insert", "table": "Task", "item": {"id": "fresh-row", "text": "a"}},
            {"op": "update", "table": "Task", "id": task.pk, "item": {"text": "late"}, "version": stale},
        ],
    }
    response = ZumoClient("v3").post_json("/tables/$batch", body)
    assert response.status_code == 412, response.content
    assert not Task.all_objects.filter(pk="fresh-row").exists()  # the batch rolled back
    entry = SyncRejection.objects.get()
    assert (entry.status, entry.row_id, entry.client_item) == (412, task.pk, {"text": "late"})
    assert entry.base_version == stale


def test_what_no_column_can_store_is_kept_escaped():
    body = '{"id": "\\udc00", "text": "nul\\u0000here"}'
    response = ZumoClient("v2").post("/tables/Task", body, content_type="application/json")
    assert response.status_code == 400
    entry = SyncRejection.objects.get()
    assert entry.client_item == {"id": "\\udc00", "text": "nul\\x00here"}
    assert entry.row_id == "\\udc00"


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ('{"priority": 1e999}', {"priority": "inf"}),
        ('{"priority": -1e999}', {"priority": "-inf"}),
        ('{"dueDate": 1e999}', {"dueDate": "inf"}),
        # what no column can store, all at once: kept escaped, and the answer still a 400
        (
            '{"text": "nul\\u0000", "\\ud800": [1e999, "\\udfff"], "priority": {"n": -1e999}}',
            {"text": "nul\\x00", "\\ud800": ["inf", "\\udfff"], "priority": {"n": "-inf"}},
        ),
    ],
)
def test_a_number_json_cannot_write_is_kept_as_text(body, kept, caplog):
    # 1e999 is read as infinity: the entry was lost ("Could not record a refused write")
    # to SQLite's JSON check and PostgreSQL's jsonb, which both refuse Infinity.
    response = ZumoClient("v3").post("/tables/Task", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "Could not record" not in caplog.text
    entry = SyncRejection.objects.get()
    assert (entry.operation, entry.status, entry.client_item) == ("insert", 400, kept)
    assert not Task.all_objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_number_json_cannot_write_in_a_refused_batch_is_kept_as_text(caplog):
    body = '{"batchId": "b-1", "operations": [{"op": "insert", "table": "Task", "item": {"id": "a"}},'
    body += ' {"op": "insert", "table": "Task", "item": {"id": "b", "priority": 1e999}}]}'
    response = ZumoClient("v3").post("/tables/$batch", body, content_type="application/json")
    assert (response.status_code, response.json()["index"]) == (400, 1)
    assert "Could not record" not in caplog.text
    entry = SyncRejection.objects.get()
    assert (entry.row_id, entry.client_item) == ("b", {"id": "b", "priority": "inf"})
    assert not Task.all_objects.exists()


def test_an_item_naming_a_column_the_table_lost_is_refused(task):
    entry = _conflict(task, {"text": "mine"})
    entry.client_item = {"text": "mine", "colour": "red"}
    entry.save()
    with pytest.raises(ResolveError, match="no longer valid"):
        apply_client_item(entry, None)
    assert Task.objects.get().text == "server text"


def _resolve_at_once(entry_pk: int, *resolvers) -> list[str]:
    """Each resolver with its own copy of the entry, loaded open, all at once: outcomes."""
    import threading

    barrier = threading.Barrier(len(resolvers))
    outcomes: list = [None] * len(resolvers)

    def run(i: int, resolver) -> None:
        try:
            entry = SyncRejection.objects.get(pk=entry_pk)
            assert entry.is_open
            barrier.wait()
            resolver(entry, None)
            outcomes[i] = "resolved"
        except ResolveError as exc:
            outcomes[i] = str(exc)
        except Exception as exc:  # reported by the assertions
            outcomes[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(resolvers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("other", ["apply", "keep"])
def test_two_resolutions_of_one_conflict_at_once_resolve_it_once(other):
    # Two admins (or one double-clicking) resolve the same open conflict: the first one
    # resolves it; the other is told it is already resolved, and writes nothing.
    task = Task.objects.create(text="server text", priority=1)
    entry = _conflict(task, {"text": "mine", "priority": 7})
    version = Task.objects.get().version
    sent = []
    receiver = lambda **kw: sent.append(kw["operation"])  # noqa: E731
    sync_committed.connect(receiver)
    try:
        second = apply_client_item if other == "apply" else keep_server_row
        outcomes = _resolve_at_once(entry.pk, apply_client_item, second)
    finally:
        sync_committed.disconnect(receiver)
    assert sorted(outcomes) == ["This entry is already resolved.", "resolved"], outcomes
    entry.refresh_from_db()
    row = Task.objects.get()
    if entry.resolution == "client":
        assert sent == ["update"] and row.text == "mine"
        assert entry.applied_version == encode_version(row.version)
    else:
        assert entry.resolution == "server"
        assert sent == [] and row.text == "server text" and row.version == version
