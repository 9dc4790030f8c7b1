"""Moving a device from the reference Node.js server to this site without a resync.

The real ``azure-mobile-apps`` 4.0.2 server (``bench/peer/app.js``, installed from the npm
registry by ``npm ci`` on first use, on a SQLite file) is the old server. A device, the Python
client speaking v2, syncs with it and then queues inserts, updates and deletes offline. The
table is imported into the live test site, the old server changes once more and a catch-up
import picks that up, the device switches its URL, pushes (no conflict, no duplicate: its
queued versions are the Node server's, which the imported rows still honour), pulls (only what
changed after its last pull there) and ends identical to the site. Then the same with the real v2 JavaScript client
(``azure-mobile-apps-client`` 2.0.1, ``tests/js/migrate.js``) through its offline sync context,
operation queue and SQLite store.

Skipped, saying why, only when Node.js or npm is not installed; a failing install fails.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from django_offline_sync.client import SyncClient
from django_offline_sync.wire import parse_timestamp
from example_project.tasks.models import Task

# The first test of the module pays for ``npm ci`` (sqlite3 is compiled from source when no
# prebuilt binary can be fetched): minutes on a busy machine, past the suite's 300 s default.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(1500)]

PEER_DIR = Path(__file__).resolve().parents[1] / "bench" / "peer"
V2 = {"ZUMO-API-VERSION": "2.0.0", "Content-Type": "application/json"}


def _installed() -> bool:
    return (PEER_DIR / "node_modules" / "sqlite3" / "build" / "Release" / "node_sqlite3.node").exists()


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed to run the reference server (node or npm not on PATH)")
    if not _installed():
        # sqlite3 builds from source when no prebuilt binary fits: a few minutes.
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PEER_DIR, capture_output=True, text=True, timeout=900,
        )
        assert result.returncode == 0, f"npm ci failed in {PEER_DIR}:\n{result.stdout}\n{result.stderr}"
        assert _installed(), "npm ci did not build sqlite3"
    return node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**V2, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def old_server(node, tmp_path) -> Iterator[str]:
    """The Node server on a fresh SQLite file; its base URL."""
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "PEER_DB": str(tmp_path / "old.sqlite"), "NODE_ENV": "production"}
    log = open(tmp_path / "node.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen([node, "app.js"], cwd=PEER_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the Node server exited: {(tmp_path / 'node.log').read_text()}"
            try:
                if _request(f"{url}/tables/Task?$top=1")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Node server did not start within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _seed(old_server: str, device_url: str | None = None) -> None:
    """20 tasks on the old server, three edited ("Mg=="), one more edited, one deleted."""
    for n in range(20):
        status, _ = _request(
            f"{old_server}/tables/Task", "POST",
            {"id": f"task-{n:02d}", "text": f"task {n}", "priority": n, "complete": False},
        )
        assert status == 201
    for n in (3, 4, 5):
        status, _ = _request(f"{old_server}/tables/Task/task-{n:02d}", "PATCH", {"text": f"task {n} edited"})
        assert status == 200
    assert _request(f"{old_server}/tables/Task/task-06", "PATCH", {"priority": 60})[0] == 200
    assert _request(f"{old_server}/tables/Task/task-07", "DELETE")[0] == 200


def _import(url: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_sync_table", "--from", url, "--table", "Task", "--into", "tasks.Task",
                 "--page-size", "7", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_device_moves_from_the_node_server_without_a_resync(old_server, live_server, tmp_path):
    store = tmp_path / "device.db"
    # Life on the old server: the device and another one write; edits and a delete make
    # versions past the first ("MQ==", "Mg==", …) and a tombstone.
    with SyncClient(old_server, store, generation="v2", timeout=10) as device:
        tasks = device.table("Task")
        for n in range(20):
            tasks.insert({"id": f"task-{n:02d}", "text": f"task {n}", "priority": n, "complete": False})
        assert device.push().ok
    for n in (3, 4, 5):
        status, _ = _request(f"{old_server}/tables/Task/task-{n:02d}", "PATCH", {"text": f"task {n} edited"})
        assert status == 200
    status, _ = _request(f"{old_server}/tables/Task/task-06", "PATCH", {"priority": 60})
    assert status == 200
    assert _request(f"{old_server}/tables/Task/task-07", "DELETE")[0] == 200

    with SyncClient(old_server, store, generation="v2", timeout=10) as device:
        device.pull("Task")
        token = device.store.cursor("Task", "*").token
        # Offline: queued, not pushed. The update and the delete are based on Node versions.
        tasks = device.table("Task")
        assert tasks.get("task-03")["version"] == "Mg=="
        tasks.insert({"id": "offline-new", "text": "written offline", "priority": 99, "complete": False})
        tasks.update({**tasks.get("task-03"), "text": "task 3 edited offline", "complete": True})
        tasks.update({**tasks.get("task-06"), "text": "task 6 edited offline"})
        tasks.delete("task-08")
        assert len(device.pending()) == 4

    # The import: every row, tombstone included, with the Node server's versions.
    out, err = _import(old_server)
    assert "20 row(s) received" in out and "20 inserted" in out
    assert err == ""  # no unknown or missing columns: the models match
    assert Task.all_objects.count() == 20 and Task.deleted_objects.get().pk == "task-07"
    old = {item["id"]: item for item in _request(f"{old_server}/tables/Task?__includeDeleted=true&$top=100")[1]}
    for task in Task.all_objects.all():
        item = old[task.pk]
        assert task.etag_version == item["version"] and task.imported_version == item["version"]
        assert (task.text, task.priority, task.deleted) == (item["text"], item["priority"], item["deleted"])
        assert task.updated_at == parse_timestamp(item["updatedAt"])
        assert task.created_at == parse_timestamp(item["createdAt"])

    # Still live during the cut-over: another device edits a row on the old server; the
    # catch-up run brings it over, with its new version.
    status, edited = _request(f"{old_server}/tables/Task/task-10", "PATCH", {"text": "task 10 edited late"})
    assert status == 200
    out, _ = _import(old_server, "--since-last-import")
    assert "1 updated" in out
    assert Task.objects.get(pk="task-10").etag_version == edited["version"]
    # Idempotent: nothing left to do.
    out, _ = _import(old_server, "--since-last-import")
    assert "0 inserted, 0 updated" in out

    # The device switches its URL and syncs with this site.
    with SyncClient(live_server.url, store, generation="v2", timeout=10) as device:
        pushed = device.push()
        assert pushed.ok and pushed.pushed == 4 and not pushed.conflicts, pushed.summary()
        pulled = device.pull("Task")
        # Only what changed after the device's last pull there: the rows at or after its token
        # (a `ge` pull reads its boundary row again, once per page), never the whole table again.
        later = {t.pk for t in Task.all_objects.filter(updated_at__gte=parse_timestamp(token))}
        assert later >= {"offline-new", "task-03", "task-06", "task-08", "task-10"}
        assert len(later) <= pulled.received < len(later) + pulled.pages, pulled.summary()
        assert pulled.received < 20
        local = {item["id"]: item for item in device.store.query("Task")}
    server = {t.pk: t for t in Task.objects.all()}
    assert local.keys() == server.keys()
    for pk, task in server.items():
        mine = local[pk]
        assert (mine["text"], mine["priority"], mine["complete"]) == (task.text, task.priority, task.complete)
        assert mine["version"] == task.etag_version
    assert Task.objects.filter(pk="offline-new").count() == 1  # no duplicate
    assert Task.all_objects.get(pk="task-08").deleted
    assert server["task-03"].text == "task 3 edited offline" and server["task-03"].imported_version is None
    assert server["task-10"].text == "task 10 edited late"


# -- the JavaScript client -----------------------------------------------------------------------------

JS_DIR = Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="module")
def js_client(node) -> str:
    """tests/js installed (as test_js_client installs it); the path of migrate.js."""
    from tests.test_js_client import _installed as js_installed

    if not js_installed():
        result = subprocess.run(
            [shutil.which("npm") or "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR, capture_output=True, text=True, timeout=240,
        )
        assert result.returncode == 0, f"npm ci failed in {JS_DIR}:\n{result.stdout}\n{result.stderr}"
        assert js_installed(), "npm ci did not install what package-lock.json pins"
    return str(JS_DIR / "migrate.js")


def _js(node: str, script: str, phase: str, url: str, store: Path) -> dict:
    sqlite3_dir = str(PEER_DIR / "node_modules" / "sqlite3")
    result = subprocess.run(
        [node, script, phase, url, str(store), sqlite3_dir], cwd=JS_DIR, capture_output=True, text=True, timeout=120
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"migrate.js {phase} printed no report (exit {result.returncode}):\n{result.stderr}")
    assert result.returncode == 0 and report["ok"], f"migrate.js {phase}: {report['errors']}\n{result.stderr}"
    return report


def test_a_javascript_client_moves_through_its_offline_context(node, js_client, old_server, live_server, tmp_path):
    store = tmp_path / "js-device.db"
    _seed(old_server)
    before = _js(node, js_client, "before", old_server, store)
    assert before["baseVersion"] == "Mg=="  # task-04 as the Node server last wrote it
    local = {row["id"]: row for row in before["local"]}
    assert "js-offline-new" in local and local["task-04"]["text"] == "task 4 edited offline in JS"
    assert "task-09" not in local and "task-07" not in local

    out, err = _import(old_server)
    assert "20 inserted" in out and err == ""
    token = Task.all_objects.order_by("-updated_at").first().updated_at

    after = _js(node, js_client, "after", live_server.url, store)
    assert after["conflicts"] == []
    pushed = after["http"][: after["pushRequests"]]
    # One request per queued operation, each accepted: no conflict, no duplicate. The update and
    # the delete carry the Node server's versions, which the imported rows honour.
    assert [h["method"] for h in pushed] == ["POST", "PATCH", "DELETE"], pushed
    assert [h["status"] for h in pushed][:2] == [201, 200] and pushed[2]["status"] in (200, 204), pushed
    assert (pushed[1]["ifMatch"], pushed[2]["ifMatch"]) == ('"Mg=="', '"MQ=="'), pushed
    pulls = [h for h in after["http"][after["pushRequests"] :] if h["method"] == "GET"]
    # The first pull here starts at the delta token the Node server gave (not at 1970) and
    # brings only what changed since: the three pushed rows and the boundary row.
    assert "updatedAt ge datetimeoffset" in urllib.request.unquote(pulls[0]["url"])
    assert "1970-01-01" not in urllib.request.unquote(pulls[0]["url"])
    received = {row for page in pulls for row in page.get("rows", [])}
    later = {t.pk for t in Task.all_objects.filter(updated_at__gte=token)}
    assert {"js-offline-new", "task-04", "task-09"} <= received <= later, (received, later)

    server = {t.pk: t for t in Task.objects.all()}
    local = {row["id"]: row for row in after["local"]}
    assert local.keys() == server.keys()
    for pk, task in server.items():
        assert (local[pk]["text"], local[pk]["priority"], bool(local[pk]["complete"])) == (
            task.text, task.priority, task.complete,
        ), pk
        assert local[pk]["version"] == task.etag_version, pk
    assert Task.objects.filter(pk="js-offline-new").count() == 1
    assert server["task-04"].text == "task 4 edited offline in JS" and server["task-04"].complete
    assert Task.all_objects.get(pk="task-09").deleted
