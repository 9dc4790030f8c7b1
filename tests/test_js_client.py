"""End to end with the real v2 JavaScript client, ``azure-mobile-apps-client`` 2.0.1, run from Node.

``tests/js/driver.js`` drives the client against a live server (insert with and without id, a
query with where/orderBy/skip/take/includeTotalCount, lookup, refresh, update with its version,
a stale-version conflict, delete, reads after the delete, paging through the ``Link`` header, and
the client's own incremental pull into an in-memory store) and prints a JSON report: each step's
result as the client returned it, and every HTTP exchange as the client saw it. This test checks the
report against the database and against docs/protocol.rst.

The npm packages are installed on first use from ``tests/js/package-lock.json`` (``npm ci``), so a
fresh clone needs nothing beyond Node and npm. Without them the test is skipped, saying so; any other
failure to install fails the test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from django_offline_sync.models import encode_version
from example_project.tasks.models import Task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JS_DIR = Path(__file__).resolve().parent / "js"


def _locked(lockfile: Path) -> dict[str, str]:
    packages = json.loads(lockfile.read_text())["packages"]
    return {path: entry.get("version", "") for path, entry in packages.items() if path}


def _installed() -> bool:
    """node_modules holds exactly what package-lock.json pins (npm records what it installed)."""
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    return installed.exists() and _locked(installed) == _locked(JS_DIR / "package-lock.json")


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed to run the JavaScript client (node or npm not on PATH)")
    if not _installed():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR, capture_output=True, text=True, timeout=240,
        )
        assert result.returncode == 0, f"npm ci failed in {JS_DIR}:\n{result.stdout}\n{result.stderr}"
        assert _installed(), "npm ci did not install what package-lock.json pins"
    return node


@pytest.fixture
def report(node, live_server) -> dict:
    result = subprocess.run(
        [node, str(JS_DIR / "driver.js"), live_server.url], cwd=JS_DIR, capture_output=True, text=True, timeout=60
    )
    try:
        data = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"driver printed no report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    failed = {s["name"]: s.get("failures") or s.get("error") for s in data["steps"] if s.get("failures")}
    detail = f"{json.dumps(failed, indent=1)}\n{data.get('fatal', '')}"
    assert result.returncode == 0 and data["ok"], f"steps failed: {detail}"
    return data


def _steps(report: dict) -> dict[str, dict]:
    return {step["name"]: step for step in report["steps"]}


def test_js_client_against_live_server(report):
    steps = _steps(report)
    assert report["client"] == "2.0.1"
    alpha = steps["insert_without_id"]["result"]
    final = steps["update_retry_after_conflict"]["result"]

    # Every request the client made said it is a v2 client.
    assert all(h["requestHeaders"].get("ZUMO-API-VERSION") == "2.0.0" for h in report["http"])

    # Inserts: a server-made id, the client's id kept, 201 + ETag + Location, and the rows stored.
    assert re.fullmatch(r"[0-9a-f]{32}", alpha["id"]), alpha["id"]
    inserts = [h for h in report["http"] if h["method"] == "POST" and h["status"] == 201]
    assert len(inserts) == 6 + 52 + 1  # six, the page rows, and one between the two pulls
    for exchange in inserts:
        item_id = json.loads(exchange["body"]).get("id")
        location = exchange["responseHeaders"]["location"]
        assert location.endswith("/tables/Task/" + (item_id or alpha["id"])), location
        assert re.fullmatch(r'"[A-Za-z0-9+/]{11}="', exchange["responseHeaders"]["etag"])
    assert steps["insert_with_id"]["result"]["id"] == "js-fixed-1"
    assert steps["insert_duplicate_id"]["error"]["status"] == 409
    assert Task.all_objects.filter(text="again").count() == 0

    # The query: its URL (as the client built it) and its answer.
    query = steps["query"]
    assert [i["id"] for i in query["result"]] == ["js-e", "js-c"]
    assert query["totalCount"] == 4
    assert query["http"][0]["url"].split("/tables/", 1)[1] == (
        "Task?$filter=((complete eq false) and (priority ge 2))"
        "&$orderby=priority desc&$skip=1&$top=2&$inlinecount=allpages"
    )

    # Lookup and refresh return what the database holds.
    row_bravo = Task.all_objects.get(pk="js-fixed-1")
    assert steps["lookup"]["result"]["version"] == alpha["version"]
    assert steps["refresh"]["result"]["text"] == "js-bravo"

    # Update: If-Match with the version, a new version, the stale write refused with 412 + server item.
    patch = next(h for h in report["http"] if h["method"] == "PATCH")
    assert patch["requestHeaders"]["If-Match"] == f'"{alpha["version"]}"'
    conflict = steps["update_conflict"]["error"]
    assert conflict["status"] == 412
    assert conflict["serverInstance"]["version"] == steps["update_with_version"]["result"]["version"]
    assert Task.all_objects.filter(text="js-alpha stale write").count() == 0
    assert row_bravo.text == "js-bravo unconditional"
    assert encode_version(row_bravo.version) == steps["update_without_version"]["result"]["version"]

    # Delete: a stale version is refused (412), the current one deletes (204), then 404 everywhere.
    assert steps["delete_conflict"]["error"]["status"] == 412
    assert steps["delete"]["http"][0]["status"] == 204
    for name in ("delete_again", "lookup_deleted", "update_deleted"):
        assert steps[name]["error"]["status"] == 404, name
    row_alpha = Task.all_objects.get(pk=alpha["id"])
    assert row_alpha.deleted is True
    assert row_alpha.text == "js-alpha client wins" and row_alpha.priority == 1  # the retry sent the whole item
    assert row_alpha.due_date == dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    assert encode_version(row_alpha.version) != final["version"]  # the soft delete bumped it
    tombstones = {i["id"]: i for i in steps["query_include_deleted"]["result"]}
    assert set(tombstones) == {alpha["id"], "js-f"}
    assert tombstones[alpha["id"]]["version"] == encode_version(row_alpha.version)
    assert Task.all_objects.get(pk="js-f").deleted is True

    # What the client reads after the delete is what the database holds live.
    assert [i["id"] for i in steps["query_after_delete"]["result"]] == ["js-c", "js-d", "js-e", "js-fixed-1"]
    assert steps["query_after_delete"]["totalCount"] == 4

    # Paging past the server's page size: the client finds the Link header (NETCLI format, no angle
    # brackets, docs/protocol.rst §3.4) and reading that URL gives exactly the rest of the rows in order.
    page_ids = sorted(Task.objects.filter(text="page").values_list("id", flat=True))
    assert len(page_ids) == 52
    for name, order in (("paging_keyset", page_ids), ("paging_skip", page_ids[::-1])):
        first, rest = steps[f"{name}_first"], steps[f"{name}_next"]
        assert first["totalCount"] == 52
        assert [i["id"] for i in first["result"] + rest["result"]] == order
        link = report_link(report, first["http"][0]["url"])
        assert re.fullmatch(r"http://\S+/tables/Task\?\S+; rel=next", link), link
        assert rest["http"][0]["url"] == first["nextLink"] == link.split(";")[0]

    # Every response lets a browser client read ETag, Link and Location (docs/protocol.rst §1.4).
    for exchange in report["http"]:
        exposed = {h.strip().lower() for h in exchange["responseHeaders"]["access-control-expose-headers"].split(",")}
        assert {"etag", "link", "location"} <= exposed, exchange["url"]

    # The client's own incremental pull into a local store ends with exactly the server's live rows,
    # and the tombstones and changes made between two pulls reach it (docs/protocol.rst §4.2).
    live = sorted(Task.objects.values_list("id", flat=True))
    assert "js-d" not in live and "js-g" in live and len(live) == 4 + 52
    assert steps["pull_initial"]["result"] == sorted(set(live) - {"js-g"} | {"js-d"})
    assert steps["pull_incremental"]["result"] == live
    assert Task.objects.get(pk="js-c").text == "js-charlie pulled"
    assert Task.all_objects.get(pk="js-d").deleted is True
    token = Task.all_objects.order_by("-updated_at").first().updated_at
    assert steps["pull_incremental"]["token"] == token.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_link(report: dict, url: str) -> str:
    return next(h["responseHeaders"]["link"] for h in report["http"] if h["url"] == url)
