"""The client on a bad network or a wrong setup: one clear line and a documented exit code each.

A captive portal, a redirect, a page that is not JSON come from a tiny local HTTP server
(``canned_server``); a failing or a table-less server is the real one (``live_server``).
Each case runs the command line (``main``) over real HTTP and checks its exit code and its
one-line message.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from django_offline_sync.client import (
    InvalidURL,
    ItemNotFound,
    LocalStore,
    ServerFailure,
    SyncClient,
    TransportError,
    UnexpectedResponse,
    UnknownTable,
)
from django_offline_sync.client.cli import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_NOT_API,
    EXIT_OK,
    EXIT_SERVER_FAILED,
    EXIT_STORE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    main,
)

ROOT = Path(__file__).resolve().parents[2]

PORTAL = """<!DOCTYPE html>
<html><head><title>Hotel WiFi - Sign in</title></head>
<body><form action="/login">Room number: <input name="room"></form></body></html>
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--no-progress", "--retries", "0", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# -- 1. answers that are not the sync API ------------------------------------------------------


@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_captive_portal_page_on_pull(canned_server, tmp_path, generation):
    canned_server.answer(200, PORTAL, "text/html; charset=utf-8")
    code, _, err = run("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "--generation", generation,
                       "pull", "Task")
    assert code == EXIT_NOT_API
    line = one_line(err)
    assert f"the server at {canned_server.url}/tables/Task answered with an HTML page" in line
    assert "'Hotel WiFi - Sign in'" in line and "captive portal" in line


def test_captive_portal_page_without_content_type(canned_server, tmp_path):
    canned_server.answer(200, PORTAL)
    code, _, err = run("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_NOT_API and "an HTML page" in one_line(err)


def test_captive_portal_on_push_keeps_the_operation_queued(canned_server, tmp_path):
    """A portal answering the POST with 200 must not count as the insert having been pushed."""
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        store.insert("Task", {"id": "t1", "text": "written offline"})
    canned_server.answer(200, PORTAL, "text/html")
    code, _, err = run("--url", canned_server.url, "--db", str(db), "push")
    assert code == EXIT_NOT_API and "captive portal" in one_line(err)
    assert canned_server.requests == [("POST", "/tables/Task")]
    with LocalStore(db) as store:
        assert [op.item_id for op in store.operations()] == ["t1"]


def test_redirect_to_another_site_is_not_followed(canned_server, other_server, tmp_path):
    other_server.answer(200, PORTAL, "text/html")
    canned_server.answer(302, "", Location=f"{other_server.url}/login?next=/tables/Task")
    code, _, err = run("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_NOT_API
    line = one_line(err)
    assert f"redirected to another site, {other_server.url}/login (HTTP 302)" in line
    assert "captive portal" in line
    assert other_server.requests == []  # never contacted: our headers never reach the other site


def test_redirect_on_the_same_site_is_not_followed_either(canned_server, tmp_path):
    canned_server.answer(301, "", Location="/api/tables/Task")
    code, _, err = run("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_NOT_API
    line = one_line(err)
    assert f"redirected to {canned_server.url}/api/tables/Task (HTTP 301)" in line
    assert "address of the sync API itself" in line
    assert len(canned_server.requests) == 1


def test_network_login_required_511(canned_server, tmp_path):
    canned_server.answer(511, PORTAL, "text/html")
    code, _, err = run("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "--retries", "2", "pull", "Task")
    assert code == EXIT_NOT_API and "log in to the network" in one_line(err)
    assert len(canned_server.requests) == 1  # not retried


def test_text_that_is_not_json(canned_server, tmp_path):
    canned_server.answer(200, "OK", "text/plain")
    code, _, err = run("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_NOT_API and "content that is not JSON (text/plain)" in one_line(err)


@pytest.mark.parametrize("body", ['{"status": "ok"}', '{"items": "none"}', '["a", "b"]', '{"items": [{"name": 1}]}'])
def test_json_that_is_not_a_page_of_items(canned_server, tmp_path, body):
    canned_server.answer(200, body, "application/json")
    db = tmp_path / "d.db"
    code, _, err = run("--url", canned_server.url, "--db", str(db), "pull", "Task")
    assert code == EXIT_NOT_API and "JSON that is not a page of the sync API's items" in one_line(err)
    with LocalStore(db) as store:
        assert store.count("Task") == 0 and store.cursors() == []


def test_library_raises_a_sync_client_error(canned_server, tmp_path):
    canned_server.answer(200, PORTAL, "text/html")
    client = SyncClient(canned_server.url, tmp_path / "d.db", retries=0)
    with client, pytest.raises(UnexpectedResponse) as info:
        client.pull("Task")
    assert info.value.status == 200 and info.value.content_type == "text/html"
    assert info.value.url == f"{canned_server.url}/tables/Task"


def test_command_line_prints_one_line_and_no_traceback(canned_server, tmp_path):
    canned_server.answer(200, PORTAL, "text/html")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "django_offline_sync.client", "--url", canned_server.url, "--db", str(tmp_path / "d.db"),
         "--retries", "0", "pull", "Task"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == EXIT_NOT_API
    assert one_line(proc.stderr).startswith("offline-sync: the server at ")


# -- 3. a failing server is not an unreachable one ----------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_unreachable(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run("--url", url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_UNREACHABLE
    line = one_line(err)
    assert line.startswith(f"offline-sync: server unreachable: GET {url}/tables/Task: ConnectError")


@pytest.mark.django_db(transaction=True)
def test_server_error_after_retries_is_a_server_failure(live_server, settings, tmp_path):
    """The real server, misconfigured so that every request fails with a genuine 500."""
    settings.OFFLINE_SYNC = {"PAGE_SIZE": "many"}  # get_settings() raises ImproperlyConfigured per request
    code, _, err = run("--url", live_server.url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_SERVER_FAILED
    line = one_line(err)
    assert line.startswith("offline-sync: the server failed: 500 Internal Server Error on GET ")
    assert f"{live_server.url}/tables/Task after 1 attempt(s)" in line
    assert "unreachable" not in line


def test_proxy_error_page_is_retried_then_a_server_failure(canned_server, tmp_path):
    """A reverse proxy in front of a stopped app: 502 with its HTML page, retried first."""
    canned_server.answer(502, "<html><title>502 Bad Gateway</title></html>", "text/html")
    out, err = io.StringIO(), io.StringIO()
    argv = ["--url", canned_server.url, "--db", str(tmp_path / "d.db"), "--retries", "1", "pull", "Task"]
    code = main(argv, stdout=out, stderr=err)
    assert code == EXIT_SERVER_FAILED
    assert "the server failed: 502 Bad Gateway" in one_line(err.getvalue()) and "after 2 attempt(s)" in err.getvalue()
    assert len(canned_server.requests) == 2


def test_server_failure_is_still_a_transport_error_for_the_library(canned_server, tmp_path):
    canned_server.answer(503, '{"error": "maintenance until 10:00"}', "application/json")
    client = SyncClient(canned_server.url, tmp_path / "d.db", retries=0)
    with client, pytest.raises(TransportError) as info:
        client.pull("Task")
    assert isinstance(info.value, ServerFailure) and info.value.status == 503
    assert str(info.value).endswith(": maintenance until 10:00")


# -- 4. a URL without a scheme ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "localhost:8000", "api.example.com/sync", "ftp://example.com"])
def test_url_without_http_scheme_is_a_usage_error(tmp_path, capsys, url):
    db = tmp_path / "d.db"
    with pytest.raises(SystemExit) as info:
        main(["--url", url, "--db", str(db), "pull", "Task"])
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"the server URL needs http:// or https:// and a host, e.g. http://127.0.0.1:8000 (got {url!r})" in err
    assert "unreachable" not in err and "Traceback" not in err
    assert not db.exists()  # refused before anything was created


def test_library_refuses_a_url_without_scheme_before_creating_the_store(tmp_path):
    db = tmp_path / "d.db"
    with pytest.raises(InvalidURL):
        SyncClient("127.0.0.1:8000", db)
    assert not db.exists()


def test_header_without_colon_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--url", "http://127.0.0.1:1", "--db", str(tmp_path / "d.db"), "--header", "Token abc", "push"])
    assert info.value.code == EXIT_USAGE and "--header needs NAME:VALUE" in capsys.readouterr().err


# -- 5. a table the server does not have ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_pull_of_an_unknown_table(live_server, tmp_path, generation):
    db = tmp_path / "d.db"
    code, _, err = run("--url", live_server.url, "--db", str(db), "--generation", generation, "pull", "Nope")
    assert code == EXIT_ERROR
    assert one_line(err) == "offline-sync: the server has no table 'Nope' (404)"
    with LocalStore(db) as store:
        assert store.tables() == []  # no empty local table left behind


@pytest.mark.django_db(transaction=True)
def test_push_to_an_unknown_table_keeps_the_operations(live_server, tmp_path):
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        store.apply_page("Nope", [{"id": "old", "version": "v1", "updatedAt": "2024-01-02T03:04:05.678Z"}], "*")
        store.delete("Nope", "old")  # a 404 for a delete normally means "already gone"
        store.insert("Nope", {"id": "new"})
    code, out, err = run("--url", live_server.url, "--db", str(db), "push")
    assert code == EXIT_INCOMPLETE
    stopped = "stopped: delete Nope/old: the server has no table 'Nope' (404)"
    assert one_line(out) == f"pushed 0 operation(s), {stopped}, 2 pending"
    with LocalStore(db) as store:
        assert [op.item_id for op in store.operations()] == ["old", "new"]


@pytest.mark.django_db(transaction=True)
def test_online_table_tells_a_missing_table_from_a_missing_item(live_server):
    with SyncClient(live_server.url) as client:
        with pytest.raises(UnknownTable, match=r"the server has no table 'Nope' \(404\)"):
            client.online_table("Nope").query()
        with pytest.raises(UnknownTable):
            client.online_table("Nope").get("x")
        with pytest.raises(ItemNotFound):
            client.online_table("Task").get("x")


# -- 2. a --db that is not a client store ------------------------------------------------------


def test_another_applications_database_is_refused(tmp_path):
    import sqlite3

    db = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    code, _, err = run("--db", str(db), "status")
    assert code == EXIT_STORE
    line = one_line(err)
    assert line == (
        f"offline-sync: {db} is not an offline-sync client store: it is a SQLite database with other contents "
        "(django_migrations); it was left as it was (use a new file for the local store)"
    )
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite3"]


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    db = tmp_path / "notes.txt"
    db.write_text("shopping list\n" * 200)
    code, _, err = run("--db", str(db), "status")
    assert code == EXIT_STORE
    assert one_line(err) == (
        f"offline-sync: {db} is not a usable client store: file is not a database "
        "(a corrupted file, or not a SQLite database); it was left as it was"
    )


def test_damage_found_past_the_open_is_a_store_error_too(tmp_path):
    db = tmp_path / "d.db"
    with LocalStore(db) as store:
        for i in range(300):
            store.insert("Task", {"id": f"t{i}", "text": "x" * 200})
    data = bytearray(db.read_bytes())
    data[4096 * 2 : 4096 * 10] = b"\xff" * (4096 * 8)  # the header is intact, the queue's pages are not
    db.write_bytes(bytes(data))
    code, _, err = run("--db", str(db), "status")
    assert code == EXIT_STORE
    assert one_line(err) == f"offline-sync: the local store {db} cannot be used: database disk image is malformed"


# -- 6. a pull blocked by a conflict says how to settle it ---------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_pull_blocked_by_a_conflict_names_the_fields_and_the_options(live_server, tmp_path, generation):
    from example_project.tasks.models import Task

    task = Task.objects.create(text="original", priority=1)
    db = tmp_path / "d.db"
    common = ("--url", live_server.url, "--db", str(db), "--generation", generation)
    assert run(*common, "pull", "Task")[0] == EXIT_OK
    with LocalStore(db) as store:
        store.update("Task", {"id": task.id, "text": "mine", "priority": 5})
    Task.objects.filter(pk=task.pk).update(text="theirs")  # another device got there first

    code, _, err = run(*common, "pull", "Task")
    assert code == EXIT_INCOMPLETE
    line = one_line(err)
    assert line.startswith(f"offline-sync: pull of Task blocked by a conflict: update Task/{task.id} conflicts with")
    assert 'fields that differ: priority (local 5, server 1), text (local "mine", server "theirs")' in line
    assert line.endswith(
        "rerun with --conflict client-wins to keep the local change, "
        "or --conflict server-wins to take the server's copy"
    )

    code, out, err = run(*common, "push")  # the push command says the same, and lists the conflict
    assert code == EXIT_INCOMPLETE
    assert f"conflict on update Task/{task.id} (HTTP " in out and "; differs in priority, text): cancel" in out
    assert one_line(err).startswith("offline-sync: push stopped by a conflict: update Task/")

    code, _, err = run(*common, "pull", "Task", "--conflict", "server-wins")  # the option, as the hint puts it
    assert code == EXIT_OK, err
    with LocalStore(db) as store:
        assert (store.get("Task", task.id)["text"], store.pending_count()) == ("theirs", 0)


@pytest.mark.django_db(transaction=True)
def test_pull_blocked_by_an_item_deleted_on_the_server(live_server, tmp_path):
    from example_project.tasks.models import Task

    task = Task.objects.create(text="original")
    db = tmp_path / "d.db"
    common = ("--url", live_server.url, "--db", str(db))
    assert run(*common, "pull", "Task")[0] == EXIT_OK
    with LocalStore(db) as store:
        store.update("Task", {"id": task.id, "text": "mine"})
    Task.objects.get(pk=task.pk).delete()  # soft delete: a tombstone

    code, _, err = run(*common, "pull", "Task")
    assert code == EXIT_INCOMPLETE
    assert one_line(err).endswith(
        f"update Task/{task.id}: the server deleted this item (HTTP 410); "
        "rerun with --conflict server-wins to drop the local change (the item is deleted on the server)"
    )


# -- 7. a reader that goes away ------------------------------------------------------------------


def cli_process(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "django_offline_sync.client", "--no-progress", *argv]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.skipif(shutil.which("head") is None, reason="needs head(1)")
def test_piping_status_to_head_exits_quietly(tmp_path):
    db = tmp_path / "d.db"
    with LocalStore(db) as store, store.transaction():
        for i in range(3000):  # ~130 kB of output: far more than a pipe holds, so head leaves mid-write
            store.insert("Task", {"id": f"task{i:05d}"})
    proc = cli_process("--db", str(db), "status")
    head = subprocess.Popen(["head", "-n", "2"], stdin=proc.stdout, stdout=subprocess.PIPE)
    proc.stdout.close()  # only head reads it now
    shown, _ = head.communicate(timeout=60)
    assert proc.wait(timeout=60) == EXIT_OK
    assert proc.stderr.read() == b""  # no BrokenPipeError, no "Exception ignored"
    proc.stderr.close()
    assert shown.decode().splitlines() == [
        "Task: 3000 row(s), 3000 pending; delta tokens: never pulled",
        "  #1 insert task00000 (base version -)",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_pull_whose_output_nobody_reads_still_pulls(live_server, tmp_path):
    from example_project.tasks.models import Task

    Task.objects.bulk_create([Task(text=f"task {i}") for i in range(30)])
    db = tmp_path / "d.db"
    proc = cli_process("--url", live_server.url, "--db", str(db), "pull", "Task", "Note")
    proc.stdout.close()  # the reader is gone before the first line is written
    assert proc.wait(timeout=60) == EXIT_OK
    assert proc.stderr.read() == b""
    proc.stderr.close()
    with LocalStore(db) as store:
        assert store.count("Task") == 30
