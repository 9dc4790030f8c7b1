"""Tables whose ids the server assigns (integer keys): an offline insert must not block sync.

The server marks such a table on every answer (``X-Offline-Sync-Ids: server``) and refuses an
insert that sends an id (400 ``id_not_accepted``). The client learns it from either: a pull
makes it refuse such inserts up front, and an insert queued before it knew is set aside at its
first refusal, so later operations push and the table pulls. ``offline-sync queue`` lists the
set-aside operation and ``offline-sync discard`` drops it.
"""

from __future__ import annotations

import io
import sqlite3

import httpx
import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import modify_settings, override_settings
from django.urls import include, path

from django_offline_sync.client import LocalStore, OperationRefused, SyncClient
from django_offline_sync.client.cli import EXIT_OK, EXIT_USAGE, main
from django_offline_sync.client.store import STORE_FORMAT
from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from django_offline_sync.wire import IDS_HEADER
from example_project.tasks.models import Task
from tests.legacy.models import Asset

router = SyncRouter()
router.register("Asset", type("AssetViewSet", (SyncViewSet,), {"model": Asset}), basename="asset")
router.register("Task", type("TaskViewSet", (SyncViewSet,), {"model": Task}), basename="task")
urlpatterns = [path("tables/", include(router.urls))]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def assets(transactional_db):
    """The legacy ``Asset`` table (integer key), migrated, with rows 7 and 8."""
    modules: dict[str, str | None] = {config.label: None for config in apps.get_app_configs()}
    modules["legacy"] = "tests.legacy.migrations"
    with (
        modify_settings(INSTALLED_APPS={"append": "tests.legacy"}),
        override_settings(MIGRATION_MODULES=modules),
    ):
        call_command("migrate", "legacy", verbosity=0, skip_checks=True)
        try:
            for pk in (7, 8):
                Asset.objects.create(id=pk, name=f"pump {pk}")
            yield
        finally:
            call_command("migrate", "legacy", "zero", verbosity=0, skip_checks=True)


@pytest.fixture
def device(assets, make_client) -> SyncClient:
    return make_client()


def cli(client: SyncClient, *argv: str, url: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["--db", client.store.path, "--generation", client.generation]
    if url:
        args = ["--url", "http://testserver", *args]
    code = main([*args, *argv], stdout=out, stderr=err, transport=client.recorder.inner)  # type: ignore[attr-defined]
    return code, out.getvalue(), err.getvalue()


def test_the_server_marks_the_tables_whose_ids_it_assigns(v3, assets):
    for url in ("/tables/Asset", "/tables/Asset/7", "/tables/Asset/404"):
        assert v3.get(url)[IDS_HEADER] == "server"
    assert v3.post_json("/tables/Asset", {"id": "x", "name": "n"})[IDS_HEADER] == "server"
    assert IDS_HEADER not in v3.get("/tables/Task")
    assert IDS_HEADER in v3.get("/tables/Asset")["Access-Control-Expose-Headers"]


def test_after_a_pull_an_offline_insert_is_refused_up_front(device):
    device.pull("Asset")
    with pytest.raises(OperationRefused, match=r"Asset gets its ids from the server.*online_table\('Asset'\)"):
        device.table("Asset").insert({"name": "new pump"})
    assert device.pending() == [] and device.table("Asset").count() == 2
    device.table("Task").insert({"text": "string ids: fine offline"})  # other tables are unaffected
    assert device.push().pushed == 1
    created = device.online_table("Asset").insert({"name": "made online"})  # the way to create one
    assert Asset.objects.get(pk=int(created["id"])).name == "made online"


def test_an_insert_queued_before_the_client_knew_is_set_aside_and_blocks_nothing(device):
    queued = device.table("Asset").insert({"name": "offline pump"})
    device.table("Task").insert({"text": "after it"})
    result = device.push()
    assert result.ok and result.pushed == 1 and result.remaining == 0
    (aside,) = result.set_aside
    assert aside.item_id == queued["id"] and aside.error.startswith("HTTP 400: ")
    assert "1 set aside" in result.summary()
    assert Task.objects.filter(text="after it").exists()  # the later operation went through

    pulled = device.pull("Asset")  # the pull is not blocked
    assert pulled.received == 2  # each server row once, though v2 re-reads the rows at its token
    assert sorted(r["id"] for r in device.table("Asset").query()) == sorted(["7", "8", queued["id"]])
    (kept,) = device.pending("Asset")
    assert kept.set_aside and kept.error == aside.error
    with pytest.raises(OperationRefused):  # learned from the 400
        device.table("Asset").insert({"name": "another"})
    assert device.push().pushed == 0  # set aside: never sent again
    assert Asset.objects.count() == 2


def test_the_cli_lists_and_discards_queued_operations(device):
    device.pull("Asset")
    device.store.set_server_assigns_ids("Asset", False)  # as a client that never pulled it
    queued = device.table("Asset").insert({"name": "offline pump"})
    device.table("Asset").update({"id": "7", "name": "renamed offline"})
    device.push()
    code, out, _ = cli(device, "queue", "--show")
    lines = out.splitlines()
    assert code == EXIT_OK
    assert lines[0].startswith(f"#1 insert Asset/{queued['id']} (base version -) SET ASIDE: HTTP 400: ")
    assert '"name": "offline pump"' in lines[1]
    assert lines[-2:] == [
        "1 queued operation(s), 0 to push, 1 set aside",
        "set-aside operations are not pushed; drop them with: offline-sync discard NUMBER",
    ]
    code, out, _ = cli(device, "status", "Asset")
    assert "SET ASIDE" in out

    code, out, _ = cli(device, "discard", "1", url=False)  # an insert needs no server
    assert code == EXIT_OK, out
    assert out.strip() == f"discarded #1 insert Asset/{queued['id']}; its local row removed"
    assert device.pending() == [] and sorted(r["id"] for r in device.table("Asset").query()) == ["7", "8"]


def test_discarding_an_update_restores_the_server_copy_and_needs_the_url(device):
    device.pull("Asset")
    device.table("Asset").update({"id": "7", "name": "local only"})
    (op,) = device.pending()
    code, _, err = cli(device, "discard", str(op.sequence), url=False)
    assert code == EXIT_USAGE and "needs --url" in err
    code, out, err = cli(device, "discard", "99")
    assert code != EXIT_OK and "no queued operation #99" in err
    code, out, _ = cli(device, "discard", str(op.sequence))
    assert code == EXIT_OK and "the server's copy restored" in out
    assert device.pending() == [] and device.table("Asset").get("7")["name"] == "pump 7"


def test_a_store_of_the_previous_format_is_upgraded_with_its_queue(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE sync_operations (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('insert', 'update', 'delete')),
            table_name TEXT NOT NULL, item_id TEXT NOT NULL, item TEXT NOT NULL,
            base_version TEXT, revision INTEGER NOT NULL DEFAULT 1, UNIQUE (table_name, item_id));
        CREATE TABLE sync_cursors (table_name TEXT NOT NULL, query_id TEXT NOT NULL, token TEXT,
            PRIMARY KEY (table_name, query_id));
        INSERT INTO sync_operations (kind, table_name, item_id, item) VALUES ('insert', 'Task', 'a', '{"id": "a"}');
        PRAGMA application_id = 1330862414;
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    with LocalStore(path) as store:
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == STORE_FORMAT == 2
        (op,) = store.operations()
        assert op.item_id == "a" and not op.set_aside
        assert store.pending_count() == 1 and not store.server_assigns_ids("Task")


def test_a_server_without_the_header_leaves_inserts_allowed(tmp_path):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "count": 0})

    with SyncClient("http://peer", tmp_path / "d.db", transport=httpx.MockTransport(answer)) as client:
        client.pull("Task")
        assert not client.store.server_assigns_ids("Task")
        client.table("Task").insert({"text": "ok"})
