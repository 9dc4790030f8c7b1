"""``import_sync_table`` against a hostile old server: crafted pages from a fake one on 127.0.0.1."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import QuerySet

from django_offline_sync import stamping
from django_offline_sync.models import SyncClock, SyncImport
from django_offline_sync.wire import datetime_to_ms, parse_timestamp
from example_project.tasks.models import Task

pytestmark = [pytest.mark.django_db]


class FakeOldServer:
    """Answers every ``GET /tables/<name>`` with the next of ``pages`` (raw JSON text), then ``[]``."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = (outer.pages.pop(0) if outer.pages else "[]").encode("utf-8", "surrogatepass")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def old_server() -> Iterator[FakeOldServer]:
    server = FakeOldServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def row(id_: str, updated: str = "2024-01-02T03:04:05.006Z", **extra: object) -> dict[str, object]:
    return {"id": id_, "text": "t", "priority": 1, "complete": False, "updatedAt": updated,
            "createdAt": "2024-01-01T00:00:00.000Z", "version": "AAAAAAAAB9E=", "deleted": False, **extra}


def run(server: FakeOldServer, *args: str) -> str:
    out = io.StringIO()
    call_command("import_sync_table", "--from", server.url, "--table", "Task", "--into", "tasks.Task",
                 *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_an_updated_at_leaving_the_clock_no_room_is_refused_naming_the_row(old_server):
    # The clock continues after the newest updatedAt: at the end of time, no write here could
    # be stamped again. The first page is committed (resumable), the refused one is not.
    old_server.pages = [json.dumps([row("early")]), json.dumps([row("late", updated="9999-12-31T23:59:59.999Z")])]
    with pytest.raises(CommandError, match=r"Row 'late', column 'updatedAt': '9999-12-31T23:59:59\.999Z' is later"):
        run(old_server, "--page-size", "1")
    assert list(Task.all_objects.values_list("pk", flat=True)) == ["early"]
    early_ms = datetime_to_ms(parse_timestamp(str(row("early")["updatedAt"])))
    assert SyncClock.objects.get(table=Task._meta.db_table).last_ms == early_ms
    Task.objects.create(text="written here")  # the table still takes writes


def test_the_latest_updated_at_imported_leaves_a_day_of_stamps(old_server):
    old_server.pages = [json.dumps([row("last", updated="9999-12-31T00:00:00.000Z")])]
    run(old_server)
    later = Task.objects.create(text="written here")
    assert later.updated_at > Task.all_objects.get(pk="last").updated_at
    old_server.pages = [json.dumps([row("after", updated="9999-12-31T00:00:00.001Z")])]
    with pytest.raises(CommandError, match="Row 'after', column 'updatedAt'"):
        run(old_server, "--restart")


@pytest.mark.parametrize("updated", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_an_updated_at_outside_the_datetime_range_is_not_a_timestamp(old_server, updated):
    old_server.pages = [json.dumps([row("z", updated=updated)])]
    with pytest.raises(CommandError, match=r"Row 'z', column 'updatedAt': .* is not a timestamp"):
        run(old_server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("autocommit", [True, False])
def test_a_clock_at_the_end_of_time_refuses_writes_clearly(autocommit):
    # Only a clock row moved there by hand gets here now: writes fail with a message saying what
    # to fix, before anything is written (PostgreSQL's one-statement insert too, in autocommit).
    first = Task.objects.create(text="a")
    QuerySet(SyncClock).filter(table=Task._meta.db_table).update(last_ms=stamping.MAX_MS)
    exhausted = r"'tasks_task' is at 253402300800000 ms, past 9999-12-31T23:59:59\.999Z"
    if autocommit:
        with pytest.raises(stamping.ClockExhausted, match=exhausted):
            Task.objects.create(text="b")
    else:
        first.text = "changed"
        with pytest.raises(stamping.ClockExhausted, match=exhausted), transaction.atomic():
            first.save()
    assert list(Task.all_objects.values_list("text", flat=True)) == ["a"]
    assert SyncClock.objects.get(table=Task._meta.db_table).last_ms == stamping.MAX_MS


@pytest.mark.parametrize(
    ("raw_id", "problem"),
    [("\udfff", r"lone surrogate \(U\+DFFF\)"), ("a\x00b", r"NUL character"), ("x" * 300, "at most 255 characters")],
)
def test_an_id_no_database_can_keep_is_refused_naming_the_row(old_server, raw_id, problem):
    old_server.pages = [json.dumps([row("fine")]), json.dumps([row(raw_id)])]
    with pytest.raises(CommandError, match=rf"Row .*, column 'id': .* is not an id of tasks\.Task: .*{problem}"):
        run(old_server, "--page-size", "1")
    assert list(Task.all_objects.values_list("pk", flat=True)) == ["fine"]
    assert not SyncImport.objects.get().complete


@pytest.mark.parametrize("name", ["a\x00b", "\udfff"])
def test_a_column_name_no_database_can_keep_is_refused(old_server, name):
    old_server.pages = [json.dumps([row("k", **{name: 1})])]
    with pytest.raises(CommandError, match=r"Row 'k', column .*: not a column name this server can keep"):
        run(old_server)
    assert not Task.all_objects.exists()


@pytest.mark.parametrize(
    "page", ["[" * 100_000 + "]" * 100_000, '[{"id": "d", "text": ' + "[" * 5000 + "]" * 5000 + "}]"]
)
def test_a_page_nested_too_deeply_is_an_error_naming_the_page(old_server, page):
    old_server.pages = [json.dumps([row("fine")]), page]
    with pytest.raises(CommandError, match=r"Reading the page at updatedAt ge .*\$skip=0: .*nested too deeply"):
        run(old_server, "--page-size", "1")
    assert list(Task.all_objects.values_list("pk", flat=True)) == ["fine"]


def test_a_catch_up_near_the_first_timestamp_starts_at_it(old_server):
    old_server.pages = [json.dumps([row("first", updated="0001-01-01T00:01:00.000Z")])]
    run(old_server)
    out = run(old_server, "--since-last-import")
    assert "started at updatedAt 0001-01-01T00:00:00.000Z" in out
