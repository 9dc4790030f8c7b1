"""Push, pull, conflicts and purge against the example project in-process, for v2 and v3."""

from __future__ import annotations

import pytest

from django_offline_sync.client import (
    ConflictError,
    PendingOperationsError,
    PushIncomplete,
    Resolution,
    client_wins,
    server_wins,
)
from django_offline_sync.client.store import INSERT
from example_project.tasks.models import Note, Task


def test_classic_walkthrough_pushes_task_before_note(make_client):
    client = make_client()
    tasks, notes = client.table("Task"), client.table("Note")
    task = tasks.insert({"text": "buy milk"})
    note = notes.insert({"taskId": task["id"], "body": "semi-skimmed"})
    tasks.update({"id": task["id"], "text": "buy milk and eggs"})

    queue = client.pending()
    assert [(op.table, op.kind) for op in queue] == [("Task", INSERT), ("Note", INSERT)]
    assert queue[0].item["text"] == "buy milk and eggs"

    result = client.push()
    assert result.ok and result.pushed == 2 and result.remaining == 0
    assert client.recorder.writes() == [("POST", "/tables/Task"), ("POST", "/tables/Note")]
    assert Task.objects.get(pk=task["id"]).text == "buy milk and eggs"
    assert Note.objects.get(pk=note["id"]).task_id == task["id"]
    local = tasks.get(task["id"])
    assert local["version"] and local["updatedAt"].endswith("Z")


def test_update_and_delete_are_pushed_with_if_match(make_client, generation):
    client = make_client()
    tasks = client.table("Task")
    task = tasks.insert({"text": "a"})
    client.push()
    version = tasks.get(task["id"])["version"]
    tasks.update({"id": task["id"], "complete": True})
    assert client.push().ok
    update = [r for r in client.recorder.requests if r.method in ("PUT", "PATCH")][-1]
    assert update.method == ("PUT" if generation == "v3" else "PATCH")
    assert update.headers["If-Match"] == f'"{version}"'
    assert Task.objects.get(pk=task["id"]).complete is True

    tasks.delete(task["id"])
    assert client.push().ok
    assert Task.all_objects.get(pk=task["id"]).deleted is True


def test_pull_fetches_all_pages_and_then_only_changes(make_client):
    for i in range(120):
        Task.objects.create(text=f"task {i:03d}", priority=i % 5)
    client = make_client(page_size=50)
    result = client.pull("Task")
    assert client.table("Task").count() == 120
    assert result.pages >= 2 and result.token is not None  # v2: 50 a page; v3: the server's 100
    assert (result.received, result.upserted) == (120, 120)  # v2's `ge` re-reads are not counted

    first = Task.objects.order_by("id").first()
    first.text = "changed"
    first.save()
    client.recorder.requests.clear()
    again = client.pull("Task")
    assert client.table("Task").get(first.id)["text"] == "changed"
    # Only the change: the rows v2's `ge` re-reads at each token are not counted again.
    assert (again.received, again.upserted) == (1, 1)
    assert [i["priority"] for i in client.table("Task").query({"priority": 4}, top=3)] == [4, 4, 4]


def test_pull_removes_rows_deleted_on_the_server(make_client):
    client = make_client()
    online = client.online_table("Task")
    kept = online.insert({"text": "kept"})
    gone = online.insert({"text": "gone"})
    client.pull("Task")
    assert client.table("Task").count() == 2
    online.delete(gone)
    result = client.pull("Task")
    assert result.deleted == 1
    assert [i["id"] for i in client.table("Task").query()] == [kept["id"]]


def test_pull_pushes_pending_changes_first(make_client):
    client = make_client()
    task = client.table("Task").insert({"text": "offline"})
    result = client.pull("Task")
    assert result.pushed is not None and result.pushed.pushed == 1
    assert client.pending() == []
    assert Task.objects.filter(pk=task["id"]).exists()
    assert client.table("Task").get(task["id"])["version"]


def test_pull_per_query_id_keeps_its_own_token(make_client):
    Task.objects.create(text="done", complete=True)
    Task.objects.create(text="open", complete=False)
    client = make_client()
    client.pull("Task", filter="complete eq true", query_id="done")
    assert [i["text"] for i in client.table("Task").query()] == ["done"]
    assert {c.query_id for c in client.store.cursors("Task")} == {"done"}
    client.pull("Task")
    assert client.table("Task").count() == 2


def test_full_pull_removes_rows_the_server_no_longer_has(make_client):
    task = Task.objects.create(text="x")
    client = make_client()
    client.pull("Task")
    Task.all_objects.filter(pk=task.pk).hard_delete()  # no tombstone left to pull
    client.pull("Task")
    assert client.table("Task").count() == 1  # incremental pull cannot see a hard delete
    result = client.pull("Task", full=True)
    assert client.table("Task").count() == 0 and result.deleted == 1


def conflict_setup(make_client):
    """Two devices pull the same task, both edit it offline; the first pushes."""
    task = Task.objects.create(text="original", priority=1)
    first, second = make_client("first"), make_client("second")
    first.pull("Task")
    second.pull("Task")
    first.table("Task").update({"id": task.id, "text": "first's edit"})
    second.table("Task").update({"id": task.id, "text": "second's edit", "priority": 9})
    assert first.push().ok
    return task, first, second


def test_conflict_cancel_keeps_the_operation(make_client):
    task, _, second = conflict_setup(make_client)
    result = second.push()
    assert result.cancelled and not result.ok and result.remaining == 1
    [record] = result.conflicts
    assert record.conflict.status in (409, 412)
    assert record.conflict.server_item["text"] == "first's edit"
    assert record.conflict.local_item["text"] == "second's edit"
    assert record.conflict.differing_fields == ["priority", "text"]
    assert result.blocking_conflict is record.conflict
    with pytest.raises(PushIncomplete) as info:
        second.pull("Task")
    assert info.value.table == "Task" and info.value.result.blocking_conflict is not None
    assert str(info.value) == (
        f"pull of 'Task' blocked by a conflict: update Task/{task.id} conflicts with the server's copy "
        f"(HTTP {record.conflict.status}); fields that differ: priority (local 9, server 1), "
        """text (local "second's edit", server "first's edit"); settle it with a conflict handler """
        "(client_wins, server_wins or a merge), then pull again"
    )


def test_conflict_client_wins_overwrites_the_server(make_client):
    task, first, second = conflict_setup(make_client)
    result = second.push(conflict_handler=client_wins)
    assert result.ok and [r.action for r in result.conflicts] == ["client_wins"]
    assert Task.objects.get(pk=task.id).text == "second's edit"
    first.pull("Task")
    assert first.table("Task").get(task.id) == second.table("Task").get(task.id)


def test_conflict_server_wins_takes_the_server_copy(make_client):
    task, first, second = conflict_setup(make_client)
    result = second.push(conflict_handler=server_wins)
    assert result.ok and second.pending() == []
    assert second.table("Task").get(task.id)["text"] == "first's edit"
    assert Task.objects.get(pk=task.id).priority == 1


def test_conflict_custom_merge(make_client):
    task, first, second = conflict_setup(make_client)

    def merge(conflict):
        return Resolution.merge({**conflict.server_item, "priority": conflict.local_item["priority"]})

    result = second.push(conflict_handler=merge)
    assert result.ok
    server = Task.objects.get(pk=task.id)
    assert (server.text, server.priority) == ("first's edit", 9)
    first.pull("Task")
    second.pull("Task")
    assert first.table("Task").get(task.id) == second.table("Task").get(task.id)


def test_conflicting_delete_with_server_wins_restores_the_row(make_client):
    task, first, second = conflict_setup(make_client)
    second.store.discard(second.pending()[0].sequence)
    second.store.delete("Task", task.id)
    result = second.push(conflict_handler=server_wins)
    assert result.ok
    assert second.table("Task").get(task.id)["text"] == "first's edit"
    assert Task.objects.filter(pk=task.id).exists()


def test_deleting_an_already_deleted_row_counts_as_success(make_client):
    task = Task.objects.create(text="x")
    client = make_client()
    client.pull("Task")
    client.online_table("Task").delete(task.id)
    client.table("Task").delete(task.id)
    assert client.push().ok and client.pending() == []


def test_insert_whose_response_was_lost_is_retried_without_duplicate(make_client):
    client = make_client()
    task = client.table("Task").insert({"text": "once"})
    client.recorder.fail_after_next.add("POST")
    result = client.push()
    assert result.ok and result.pushed == 1
    assert list(client.recorder.writes()) == [("POST", "/tables/Task"), ("POST", "/tables/Task")]
    assert Task.all_objects.filter(pk=task["id"]).count() == 1
    assert client.table("Task").get(task["id"])["version"]


def test_update_whose_response_was_lost_is_retried_as_success(make_client, generation):
    client = make_client()
    task = client.table("Task").insert({"text": "a"})
    client.push()
    client.table("Task").update({"id": task["id"], "text": "b"})
    client.recorder.fail_after_next.add("PUT" if generation == "v3" else "PATCH")
    result = client.push()
    assert result.ok and result.conflicts == []
    assert client.table("Task").get(task["id"])["version"] == Task.objects.get(pk=task["id"]).etag_version


def test_purge_guard(make_client):
    client = make_client()
    Task.objects.create(text="server row")
    client.pull("Task")
    client.table("Task").insert({"text": "unsent"})
    with pytest.raises(PendingOperationsError):
        client.purge("Task")
    assert client.table("Task").count() == 2
    client.push()
    assert client.purge("Task") == 2
    assert client.store.cursors("Task") == []
    client.pull("Task")
    assert client.table("Task").count() == 2


def test_online_table_crud_and_conflict(make_client):
    online = make_client().online_table("Task")
    item = online.insert({"text": "direct"})
    assert online.get(item["id"])["text"] == "direct"
    updated = online.update({**item, "text": "changed"})
    with pytest.raises(ConflictError) as info:
        online.update({**item, "text": "stale"})
    assert info.value.server_item["text"] == "changed"
    assert [i["id"] for i in online.query("text eq 'changed'")] == [item["id"]]
    assert [i["id"] for i in online.iterate()] == [item["id"]]
    online.delete(updated)
    assert online.query() == []
    assert online.get(item["id"], include_deleted=True)["deleted"] is True


def test_pull_requests_follow_the_generation_algorithm(make_client, generation):
    Task.objects.create(text="a")
    client = make_client()
    client.pull("Task")
    Task.objects.create(text="b")
    client.pull("Task")
    queries = [r.url.params for r in client.recorder.requests if r.method == "GET"]
    token = client.store.cursor("Task", "*").token
    if generation == "v3":
        assert "$filter" not in queries[0]  # docs/protocol.rst §4.3: no filter on the first pull
        assert queries[0]["__includedeleted"] == "true" and queries[0]["$count"] == "true"
        later = queries[-1]["$filter"]
        assert later.startswith("(updatedAt gt cast(") and later.endswith(",Edm.DateTimeOffset))")
    else:
        assert all(q["__includeDeleted"] == "true" and q["$orderby"] == "updatedAt" for q in queries)
        assert any(q.get("$filter", "").startswith("(updatedAt ge datetimeoffset'") for q in queries)
        assert queries[-1]["$filter"] == f"(updatedAt ge datetimeoffset'{token}')"
        assert int(queries[-1]["$skip"]) > 0
    assert client.table("Task").count() == 2


def test_update_of_a_row_deleted_on_the_server_is_a_conflict(make_client):
    task = Task.objects.create(text="x")
    client = make_client()
    client.pull("Task")
    client.table("Task").update({"id": task.id, "text": "mine"})
    Task.objects.get(pk=task.id).delete()
    result = client.push()
    assert result.cancelled
    conflict = result.conflicts[0].conflict
    assert conflict.server_deleted and conflict.status in (404, 409, 410, 412)
    assert client.push(conflict_handler=server_wins).ok
    assert client.table("Task").count() == 0 and client.pending() == []


def test_client_wins_recreates_a_row_the_server_no_longer_has(make_client):
    task = Task.objects.create(text="x")
    client = make_client()
    client.pull("Task")
    client.table("Task").update({"id": task.id, "text": "mine"})
    Task.all_objects.filter(pk=task.id).hard_delete()
    result = client.push(conflict_handler=client_wins)
    assert result.ok, result.summary()
    assert Task.objects.get(pk=task.id).text == "mine"


def test_push_stops_at_the_first_failure_that_is_not_a_conflict(make_client):
    client = make_client()
    client.table("Note").insert({"taskId": "no-such-task", "body": "orphan"})
    client.table("Task").insert({"text": "after"})
    result = client.push()
    assert not result.ok and result.error and result.pushed == 0
    assert result.error_operation.table == "Note"
    assert [op.table for op in client.pending()] == ["Note", "Task"]
    assert not Task.objects.exists()


def test_a_pull_blocked_by_an_item_deleted_on_the_server_advises_what_can_settle_it(make_client):
    """client_wins cannot write over a tombstone, so the library's message does not offer it."""
    task = Task.objects.create(text="original")
    device = make_client("device")
    device.pull("Task")
    device.table("Task").update({"id": task.id, "text": "mine"})
    Task.objects.get(pk=task.pk).delete()  # a tombstone
    with pytest.raises(PushIncomplete) as info:
        device.pull("Task")
    message = str(info.value)
    assert "the server deleted this item" in message
    assert message.endswith(
        "settle it with server_wins (the item is deleted on the server) or discard the operation, then pull again"
    )
    assert "client_wins" not in message
