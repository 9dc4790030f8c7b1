"""The local store: rows, queue collapsing, atomic writes, pulled pages and purge (no server)."""

from __future__ import annotations

import sqlite3

import pytest

from django_offline_sync.client.errors import (
    InvalidTableName,
    ItemNotFound,
    OperationRefused,
    PendingOperationsError,
    StoreError,
)
from django_offline_sync.client.store import APPLICATION_ID, DELETE, INSERT, STORE_FORMAT, UPDATE, LocalStore


@pytest.fixture
def store(tmp_path):
    s = LocalStore(tmp_path / "device.db")
    yield s
    s.close()


def server_row(item_id, text="t", version="AAAAAAAAAAE=", updated="2024-01-02T03:04:05.678Z", deleted=False):
    return {"id": item_id, "text": text, "version": version, "updatedAt": updated, "deleted": deleted}


def test_insert_generates_id_and_queues_insert(store):
    item = store.insert("Task", {"text": "buy milk"})
    assert len(item["id"]) == 32
    assert store.get("Task", item["id"]) == item
    [op] = store.operations()
    assert (op.kind, op.table, op.item_id, op.base_version) == (INSERT, "Task", item["id"], None)
    assert op.item == item


def test_insert_strips_server_owned_fields(store):
    item = store.insert("Task", {"id": "a", "text": "x", "version": "v", "updatedAt": "2024-01-01T00:00:00.000Z"})
    assert item == {"id": "a", "text": "x"}


def test_insert_then_update_collapses_to_insert_with_the_edit(store):
    store.insert("Task", {"id": "a", "text": "draft"})
    store.update("Task", {"id": "a", "text": "final"})
    [op] = store.operations()
    assert op.kind == INSERT
    assert op.item["text"] == "final"
    assert op.revision == 2


def test_insert_then_delete_leaves_nothing(store):
    store.insert("Task", {"id": "a"})
    store.delete("Task", "a")
    assert store.operations() == []
    assert store.get("Task", "a") is None


def test_update_then_update_keeps_one_update_and_first_base_version(store):
    store.apply_page("Task", [server_row("a", version="v1")], "*")
    store.update("Task", {"id": "a", "text": "one"})
    store.update("Task", {"id": "a", "text": "two"})
    [op] = store.operations()
    assert (op.kind, op.base_version, op.item["text"]) == (UPDATE, "v1", "two")


def test_update_then_delete_becomes_delete(store):
    store.apply_page("Task", [server_row("a", version="v1")], "*")
    store.update("Task", {"id": "a", "text": "one"})
    store.delete("Task", "a")
    [op] = store.operations()
    assert (op.kind, op.base_version) == (DELETE, "v1")
    assert store.get("Task", "a") is None


@pytest.mark.parametrize("write", ["insert", "update", "delete"])
def test_any_write_after_pending_delete_is_refused(store, write):
    store.apply_page("Task", [server_row("a")], "*")
    store.delete("Task", "a")
    args = ("Task", "a") if write == "delete" else ("Task", {"id": "a", "text": "x"})
    with pytest.raises(OperationRefused):
        getattr(store, write)(*args)
    assert [op.kind for op in store.operations()] == [DELETE]


def test_insert_of_existing_id_is_refused(store):
    store.apply_page("Task", [server_row("a")], "*")
    with pytest.raises(OperationRefused):
        store.insert("Task", {"id": "a"})


def test_update_and_delete_of_unknown_item_raise_not_found(store):
    with pytest.raises(ItemNotFound):
        store.update("Task", {"id": "nope"})
    with pytest.raises(ItemNotFound):
        store.delete("Task", "nope")


def test_update_merges_fields_and_keeps_system_fields(store):
    store.apply_page("Task", [server_row("a", text="old")], "*")
    new = store.update("Task", {"id": "a", "complete": True, "version": "forged"})
    assert new["text"] == "old" and new["complete"] is True and new["version"] == "AAAAAAAAAAE="


def test_queue_keeps_first_sequence_when_collapsing(store):
    task = store.insert("Task", {"text": "t"})
    note = store.insert("Note", {"taskId": task["id"], "body": "n"})
    store.update("Task", {"id": task["id"], "text": "edited"})
    ops = store.operations()
    assert [(op.table, op.kind) for op in ops] == [("Task", INSERT), ("Note", INSERT)]
    assert ops[0].item["text"] == "edited" and ops[1].item_id == note["id"]


def test_failed_write_rolls_back_row_and_queue_together(store, monkeypatch):
    store.ensure_table("Task")
    real = store._put

    def put_then_fail(table, item):
        real(table, item)
        raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(store, "_put", put_then_fail)
    with pytest.raises(sqlite3.OperationalError):
        store.insert("Task", {"id": "a"})
    monkeypatch.undo()
    assert store.get("Task", "a") is None
    assert store.operations() == []


def test_store_survives_reopen(tmp_path):
    path = tmp_path / "d.db"
    with LocalStore(path) as s:
        s.insert("Task", {"id": "a", "text": "x"})
    with LocalStore(path) as s:
        assert s.get("Task", "a") == {"id": "a", "text": "x"}
        assert [op.item_id for op in s.operations()] == ["a"]
        assert s.tables() == ["Task"]


def test_query_filters_orders_and_pages(store):
    store.apply_page(
        "Task",
        [
            {**server_row("a", text="c"), "priority": 1, "complete": False},
            {**server_row("b", text="a"), "priority": 2, "complete": True},
            {**server_row("c", text="b"), "priority": 2, "complete": False},
        ],
        "*",
    )
    assert [i["id"] for i in store.query("Task", {"complete": False})] == ["a", "c"]
    assert [i["id"] for i in store.query("Task", order_by="text")] == ["b", "c", "a"]
    assert [i["id"] for i in store.query("Task", order_by=["priority desc", "text"])] == ["b", "c", "a"]
    assert [i["id"] for i in store.query("Task", order_by="text", skip=1, top=1)] == ["c"]
    assert [i["id"] for i in store.query("Task", lambda i: i["priority"] > 1, top=1)] == ["b"]


def test_query_rejects_unsafe_field_and_table_names(store):
    with pytest.raises(InvalidTableName):
        store.query("Task", order_by="text'); DROP TABLE x; --")
    with pytest.raises(InvalidTableName):
        store.ensure_table('Task"; DROP')


def test_apply_page_stores_rows_removes_deleted_and_advances_token(store):
    store.apply_page("Task", [server_row("a"), server_row("b")], "*")
    outcome = store.apply_page(
        "Task", [server_row("a", deleted=True, updated="2024-01-02T03:04:06.000Z")], "*"
    )
    assert (outcome.upserted, outcome.deleted) == (0, 1)
    assert [i["id"] for i in store.query("Task")] == ["b"]
    assert store.cursor("Task", "*").token == "2024-01-02T03:04:06.000Z"


def test_apply_page_never_moves_token_backwards(store):
    store.apply_page("Task", [server_row("a", updated="2024-05-01T00:00:00.000Z")], "*")
    store.apply_page("Task", [server_row("b", updated="2024-01-01T00:00:00.000Z")], "*")
    assert store.cursor("Task", "*").token == "2024-05-01T00:00:00.000Z"


def test_apply_page_leaves_rows_with_pending_operations(store):
    store.apply_page("Task", [server_row("a", text="server")], "*")
    store.update("Task", {"id": "a", "text": "mine"})
    outcome = store.apply_page("Task", [server_row("a", text="newer", version="v2")], "*")
    assert outcome.skipped == 1
    assert store.get("Task", "a")["text"] == "mine"


def test_apply_page_counts_upserts_deletes_and_skips_of_a_mixed_page(store):
    store.apply_page("Task", [server_row("a"), server_row("b"), server_row("c")], "*")
    store.update("Task", {"id": "c", "text": "mine"})
    outcome = store.apply_page(
        "Task",
        [server_row("a", deleted=True), server_row("x", deleted=True), server_row("b", text="new"),
         server_row("c", text="theirs"), server_row("d")],
        "*",
    )
    assert (outcome.upserted, outcome.deleted, outcome.skipped) == (2, 1, 1)
    assert [i["id"] for i in store.query("Task")] == ["b", "c", "d"]
    assert store.get("Task", "b")["text"] == "new"
    assert store.get("Task", "c")["text"] == "mine"


def test_apply_page_naming_an_item_twice_applies_in_order(store):
    outcome = store.apply_page("Task", [server_row("a", text="1"), server_row("a", text="2")], "*")
    assert (outcome.upserted, store.get("Task", "a")["text"]) == (2, "2")
    outcome = store.apply_page("Task", [server_row("a", text="3"), server_row("a", deleted=True)], "*")
    assert (outcome.upserted, outcome.deleted, store.get("Task", "a")) == (1, 1, None)


def test_apply_page_token_from_other_timestamp_forms(store):
    store.apply_page("Task", [server_row("a", updated="2024-01-02T03:04:05.678Z")], "*")
    outcome = store.apply_page(
        "Task",
        [server_row("b", updated="2024-01-02T05:04:05.000+02:00"), server_row("c", updated="2024-01-02T03:04:06Z")],
        "*",
    )
    assert outcome.token == store.cursor("Task", "*").token == "2024-01-02T03:04:06.000Z"


def test_page_rolled_back_leaves_neither_rows_nor_token(store, monkeypatch):
    store.apply_page("Task", [server_row("a")], "*")

    def fail_after_the_rows_are_written(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(LocalStore, "_store_token", staticmethod(fail_after_the_rows_are_written))
    with pytest.raises(sqlite3.OperationalError):
        store.apply_page(
            "Task", [server_row("a", deleted=True), server_row("b", updated="2024-06-01T00:00:00.000Z")], "*"
        )
    monkeypatch.undo()
    assert [i["id"] for i in store.query("Task")] == ["a"]
    assert store.cursor("Task", "*").token == "2024-01-02T03:04:05.678Z"


def test_table_created_in_a_rolled_back_transaction_is_created_again(store):
    def create_the_table_then_fail():
        with store.transaction():
            store.ensure_table("Note")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        create_the_table_then_fail()
    assert "Note" not in store.tables()
    store.apply_page("Note", [server_row("n")], "*")
    assert store.count("Note") == 1


def test_full_pull_page_stores_no_token(store):
    store.apply_page("Task", [server_row("a")], None)
    assert store.cursors() == []


def test_complete_replaces_row_with_server_copy_and_drops_entry(store):
    store.insert("Task", {"id": "a", "text": "x"})
    [op] = store.operations()
    store.complete(op, server_row("a", text="x", version="v9"))
    assert store.operations() == []
    assert store.get("Task", "a")["version"] == "v9"


def test_complete_keeps_a_change_made_while_in_flight(store):
    store.insert("Task", {"id": "a", "text": "x"})
    [op] = store.operations()
    store.update("Task", {"id": "a", "text": "edited during push"})
    store.complete(op, server_row("a", text="x", version="v9"))
    [left] = store.operations()
    assert (left.kind, left.base_version) == (UPDATE, "v9")
    assert store.get("Task", "a")["text"] == "edited during push"


def test_accept_server_and_rebase(store):
    store.apply_page("Task", [server_row("a", text="base", version="v1")], "*")
    store.update("Task", {"id": "a", "text": "mine"})
    [op] = store.operations()
    rebased = store.rebase(op, {"id": "a", "text": "merged"}, "v5")
    assert (rebased.kind, rebased.base_version, rebased.item["text"]) == (UPDATE, "v5", "merged")
    store.accept_server(rebased, server_row("a", text="theirs", version="v6"))
    assert store.operations() == [] and store.get("Task", "a")["text"] == "theirs"


def test_purge_refuses_with_pending_operations_unless_forced(store):
    store.apply_page("Task", [server_row("a")], "*")
    store.insert("Task", {"id": "b"})
    with pytest.raises(PendingOperationsError) as info:
        store.purge("Task")
    assert info.value.count == 1
    assert store.count("Task") == 2
    assert store.purge("Task", force=True) == 2
    assert store.count("Task") == 0 and store.operations() == [] and store.cursors() == []


def test_purge_clears_rows_and_cursors_of_that_table_only(store):
    store.apply_page("Task", [server_row("a")], "*")
    store.apply_page("Note", [server_row("n")], "*")
    assert store.purge("Task") == 1
    assert [c.table for c in store.cursors()] == ["Note"]
    assert store.count("Note") == 1


def test_pulled_pages_commit_without_flush_and_local_writes_with(store, monkeypatch):
    synchronous = lambda: store._conn.execute("PRAGMA synchronous").fetchone()[0]  # noqa: E731
    seen = []
    real = LocalStore._store_token

    def spy(*args):
        seen.append(synchronous())
        return real(*args)

    monkeypatch.setattr(LocalStore, "_store_token", staticmethod(spy))
    store.apply_page("Task", [server_row("a")], "*")
    assert seen == [1]  # NORMAL while the page commits: atomic, not waiting for the disk
    assert synchronous() == 2  # FULL again for everything else
    with store.transaction():
        assert synchronous() == 2
    store.insert("Task", {"id": "b"})
    assert synchronous() == 2


# -- the store's mark: only a client store is ever written to ----------------------------------


def files_of(path):
    """Every file of a SQLite database (its -wal, -shm and -journal too), with their bytes."""
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


def test_a_new_store_is_marked(tmp_path):
    with LocalStore(tmp_path / "d.db") as store:
        assert store._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == STORE_FORMAT
    with LocalStore(":memory:") as store:
        assert store._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "d.db"
    path.touch()
    with LocalStore(path) as store:
        store.insert("Task", {"id": "a"})
    with LocalStore(path) as store:
        assert store.pending_count() == 1


def test_another_applications_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, username TEXT)")
    conn.execute("INSERT INTO auth_user (username) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = files_of(path)
    with pytest.raises(StoreError) as info:
        LocalStore(path)
    assert str(info.value) == (
        f"{path} is not an offline-sync client store: it is a SQLite database with other contents "
        "(auth_user); it was left as it was (use a new file for the local store)"
    )
    assert info.value.path == str(path)
    assert files_of(path) == before  # no table added, no switch to WAL (no -wal file, same header)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["auth_user"]
    conn.close()


def test_a_database_marked_by_another_application_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")  # marked, and no table at all
    conn.close()
    before = files_of(path)
    with pytest.raises(StoreError, match=r"another application's SQLite database \(application_id 0x4d2\)"):
        LocalStore(path)
    assert files_of(path) == before


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"this is a text file, not a database\n" * 100,
        lambda data: b"X" * 16 + data[16:],  # header overwritten
        lambda data: data[: len(data) // 3],  # truncated
    ],
    ids=["text", "header", "truncated"],
)
def test_a_corrupted_file_is_refused_and_left_untouched(tmp_path, damage):
    path = tmp_path / "d.db"
    with LocalStore(path) as store:
        for i in range(200):
            store.insert("Task", {"id": f"t{i}", "text": "x" * 200})
    path.write_bytes(damage(path.read_bytes()))
    before = files_of(path)
    with pytest.raises(StoreError, match=r"is not a usable client store: .*\(a corrupted file, or not a SQLite"):
        LocalStore(path)
    assert files_of(path) == before


def test_a_store_of_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "d.db"
    with LocalStore(path) as store:
        store._conn.execute(f"PRAGMA user_version = {STORE_FORMAT + 1}")
    with pytest.raises(StoreError, match="written by a newer offline-sync client"):
        LocalStore(path)


def test_a_store_from_before_the_mark_is_recognised_and_marked(tmp_path):
    """Stores written by earlier versions have no mark, only the client's tables: keep them."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE sync_operations (sequence INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
        "table_name TEXT NOT NULL, item_id TEXT NOT NULL, item TEXT NOT NULL, base_version TEXT, "
        "revision INTEGER NOT NULL DEFAULT 1, UNIQUE (table_name, item_id))"
    )
    conn.execute("CREATE TABLE sync_cursors (table_name TEXT NOT NULL, query_id TEXT NOT NULL, token TEXT, "
                 "PRIMARY KEY (table_name, query_id))")
    conn.execute('CREATE TABLE "rows_Task" (id TEXT PRIMARY KEY, item TEXT NOT NULL, updated_at TEXT)')
    conn.execute("""INSERT INTO "rows_Task" VALUES ('a', '{"id": "a", "text": "kept"}', NULL)""")
    conn.execute("""INSERT INTO sync_operations (kind, table_name, item_id, item) VALUES
                    ('insert', 'Task', 'a', '{"id": "a", "text": "kept"}')""")
    conn.close()
    with LocalStore(path) as store:
        assert store.get("Task", "a") == {"id": "a", "text": "kept"}
        assert [op.item_id for op in store.operations()] == ["a"]
        assert store._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_a_directory_cannot_be_a_store(tmp_path):
    with pytest.raises(StoreError, match="cannot be opened as the local store"):
        LocalStore(tmp_path)


def test_a_locked_store_is_not_called_corrupted(tmp_path, monkeypatch):
    path = tmp_path / "d.db"
    holder = sqlite3.connect(path, isolation_level=None)  # another process, holding the lock
    holder.execute("BEGIN EXCLUSIVE")
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real_connect(*a, **{**k, "timeout": 0.1}))
    try:
        with pytest.raises(StoreError, match=r"cannot be used as the local store: database is locked$"):
            LocalStore(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
