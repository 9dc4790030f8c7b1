"""``import_sync_table`` against a live site of ours speaking v2 and v3 (the Node server: test_import_node).

The example Task table of the live server is the old server; the test models ``Arrival`` and
``Numbered`` are the targets, in the same database.
"""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from django.core.management import CommandError, call_command
from django.db.models import QuerySet

from django_offline_sync import stamping
from django_offline_sync.models import SyncClock, SyncImport, encode_version
from django_offline_sync.wire import datetime_to_ms, format_timestamp
from example_project.tasks.models import Task
from tests.factories import TaskFactory
from tests.models import Arrival, Numbered

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

V2 = {"HTTP_ZUMO_API_VERSION": "2.0.0"}


@pytest.fixture(params=["v2", "v3"])
def generation(request) -> str:
    return request.param


def run(live_server, generation, *args, into="tests.Arrival") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_sync_table", "--from", live_server.url, "--table", "Task", "--into", into,
        "--generation", generation, *args, stdout=out, stderr=err,
    )
    return out.getvalue(), err.getvalue()


def seed(count: int) -> list[Task]:
    tasks = [TaskFactory(text=f"task {n}", priority=n, complete=n % 2 == 0) for n in range(count)]
    tasks[1].delete()  # a tombstone
    return list(Task.all_objects.order_by("updated_at", "id"))


def assert_same(arrived: Arrival, task: Task) -> None:
    assert (arrived.text, arrived.priority, arrived.due_date) == (task.text, task.priority, task.due_date)
    assert (arrived.created_at, arrived.updated_at, arrived.deleted) == (task.created_at, task.updated_at, task.deleted)
    assert arrived.etag_version == task.etag_version == encode_version(task.version)
    assert arrived.source == "old"  # the model's default: the old server has no such column


def test_import_copies_every_row_with_tombstones_timestamps_and_versions(live_server, generation):
    tasks = seed(7)
    out, err = run(live_server, generation, "--page-size", "3")
    arrived = {a.pk: a for a in Arrival.all_objects.all()}
    assert sorted(arrived) == sorted(t.pk for t in tasks)
    for task in tasks:
        assert_same(arrived[task.pk], task)
    assert "7 row(s) received in" in out and "7 inserted" in out
    assert "page 3:" in out  # progress, one line per page
    # Not dropped silently: the column the model lacks, with how many rows had a value.
    assert "complete (7 row(s) with a value)" in err
    assert "did not send (new rows take their defaults): source" in err
    # The clock continues after the newest imported row.
    newest = max(t.updated_at for t in tasks)
    assert SyncClock.objects.get(table=Arrival._meta.db_table).last_ms == datetime_to_ms(newest)
    later = Arrival.objects.create(text="written here")
    assert later.updated_at > newest
    state = SyncImport.objects.get()
    assert state.complete and state.token == format_timestamp(newest) and state.unknown_columns == ["complete"]


def test_a_second_run_writes_nothing_and_keeps_rows_written_here(live_server, generation):
    tasks = seed(4)
    run(live_server, generation)
    before = {a.pk: (a.updated_at, a.version, a.imported_version) for a in Arrival.all_objects.all()}
    mine = Arrival.objects.get(pk=tasks[0].pk)
    mine.text = "changed here"
    mine.save()
    out, err = run(live_server, generation)
    assert "3 already up to date, 1 kept as written here" in out
    assert tasks[0].pk in err and "this server's copy was kept" in err
    assert Arrival.all_objects.get(pk=tasks[0].pk).text == "changed here"
    after = {a.pk: (a.updated_at, a.version, a.imported_version) for a in Arrival.all_objects.all()}
    assert {k: v for k, v in after.items() if k != tasks[0].pk} == {k: v for k, v in before.items() if k != tasks[0].pk}


def test_catch_up_brings_later_changes_and_restamps_what_a_device_could_have_missed(live_server, generation):
    tasks = seed(3)
    run(live_server, generation)
    # After the import, a write here (a device that switched) moves the clock on...
    Arrival.objects.create(text="switched device")
    clock = SyncClock.objects.get(table=Arrival._meta.db_table).last_ms
    # The old server's writes below must be stamped after this clock, as they would be on
    # another machine minutes later; written in the same millisecond, they would count as
    # late commits too (the Task clock takes the wall time).
    while stamping.now_ms() <= clock + 1:
        time.sleep(0.001)
    # ...while the old server changes a row and gains one.
    changed = Task.objects.get(pk=tasks[0].pk)
    changed.text = "changed on the old server"
    changed.save()
    added = TaskFactory(text="added on the old server")
    # A late commit on the old server: its updatedAt is older than this server's clock.
    late = TaskFactory(text="late")
    QuerySet.update(Task.all_objects.filter(pk=late.pk), updated_at=stamping.ms_to_datetime(clock - 1))
    out, _ = run(live_server, generation, "--since-last-import")
    assert "started at updatedAt" in out
    assert Arrival.all_objects.get(pk=changed.pk).text == "changed on the old server"
    assert Arrival.all_objects.get(pk=added.pk).etag_version == added.etag_version
    restamped = Arrival.all_objects.get(pk=late.pk)
    # Stamped after the clock, so a device that already pulled past it still gets it; its
    # version stays the one the old server issued.
    assert datetime_to_ms(restamped.updated_at) > clock
    assert restamped.etag_version == Task.all_objects.get(pk=late.pk).etag_version
    assert "1 given a new updatedAt" in out


def test_an_interrupted_import_resumes_after_its_last_page(live_server, generation, monkeypatch):
    tasks = seed(9)
    from django_offline_sync import importer

    calls = {"n": 0}
    original = importer.TableImporter._write_page

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise importer.ImportFailed("connection lost (simulated)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(importer.TableImporter, "_write_page", failing)
    with pytest.raises(CommandError, match="simulated"):
        run(live_server, generation, "--page-size", "3")
    assert 0 < Arrival.all_objects.count() < 9  # the pages before the failure are committed
    state = SyncImport.objects.get()
    assert not state.complete and state.token
    monkeypatch.setattr(importer.TableImporter, "_write_page", original)
    out, _ = run(live_server, generation, "--page-size", "3")
    assert f"started at updatedAt {state.token}" in out
    assert sorted(Arrival.all_objects.values_list("pk", flat=True)) == sorted(t.pk for t in tasks)


def test_a_value_the_model_cannot_take_is_an_error_naming_row_and_column(live_server, generation):
    task = TaskFactory(text="not a number")
    with pytest.raises(CommandError, match=rf"Row '{task.pk}', column 'text': 'not a number' does not fit"):
        run(live_server, generation, into="tests.Numbered")
    assert not Numbered.all_objects.exists()


def test_bad_arguments_are_clear_errors(live_server):
    with pytest.raises(CommandError, match=r"--into 'tests\.Nope'"):
        run(live_server, "v2", into="tests.Nope")
    with pytest.raises(CommandError, match="Which model does table 'TodoItem' go into"):
        call_command("import_sync_table", "--from", live_server.url, "--table", "TodoItem", stdout=io.StringIO())
    with pytest.raises(CommandError, match="NAME:VALUE"):
        run(live_server, "v2", "--header", "no colon")
    with pytest.raises(CommandError, match="--from"):
        call_command("import_sync_table", "--from", "ftp://x", "--table", "Task", "--into", "tests.Arrival")
    with pytest.raises(CommandError, match="No finished import"):
        run(live_server, "v2", "--since-last-import")
    with pytest.raises(CommandError, match=r"HTTP 404.*table name"):
        call_command("import_sync_table", "--from", live_server.url, "--table", "Nope", "--into", "tests.Arrival",
                     stdout=io.StringIO())


def test_headers_are_sent_to_the_old_server(live_server, monkeypatch):
    seen = []
    from django_offline_sync.client import transport

    original = transport.HttpTransport.request

    def spy(self, method, url, **kwargs):
        seen.append(dict(self._client.headers))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(transport.HttpTransport, "request", spy)
    # The test site checks X-ZUMO-AUTH (django_offline_sync.auth): send a token it issued.
    from django.contrib.auth.models import User

    from django_offline_sync.auth.tokens import issue_token

    token = issue_token(User.objects.create_user("importer"), "custom").token
    run(live_server, "v2", "--header", f"X-ZUMO-AUTH: {token}")
    assert seen and all(h.get("x-zumo-auth") == token for h in seen)


def test_imported_rows_reach_devices_with_their_old_versions(live_server, generation, client):
    seed(2)
    run(live_server, generation)
    arrived = Arrival.all_objects.order_by("updated_at").first()
    assert arrived.imported_version == Task.all_objects.get(pk=arrived.pk).etag_version
    assert dt.timedelta(0) <= arrived.updated_at - arrived.created_at
