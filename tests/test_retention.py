"""Tombstone retention: the setting, ``purge_tombstones`` and the resync horizon on list answers."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import QuerySet
from django.test import override_settings
from django.utils import timezone

from django_offline_sync import checks
from django_offline_sync.models import SyncHorizon
from django_offline_sync.retention import (
    HORIZON_HEADER,
    delta_boundary,
    horizon_of,
    needs_resync,
    parse_age,
    purge_tombstones,
)
from django_offline_sync.settings import get_settings
from django_offline_sync.wire import format_timestamp, truncate_ms
from example_project.tasks.models import Note, Task

pytestmark = pytest.mark.django_db


def age(task: Task, days: float) -> Task:
    """Backdate a row's stamp (as if written ``days`` ago), keeping its other columns."""
    backdate(Task, task.pk, days)
    return Task.all_objects.get(pk=task.pk)


def backdate(model, pk, days: float) -> None:
    # A plain QuerySet: the sync managers' update() would stamp the row now.
    QuerySet(model).filter(pk=pk).update(
        updated_at=truncate_ms(timezone.now() - dt.timedelta(days=days))  # stamps are whole ms
    )


def tombstone(text: str, days: float) -> Task:
    task = Task.objects.create(text=text)
    task.delete()
    return age(task, days)


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_tombstones", *args, stdout=out)
    return out.getvalue()


# -- the setting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (86400, dt.timedelta(days=1)), (dt.timedelta(days=30), dt.timedelta(days=30))],
)
def test_retention_accepts_none_seconds_and_timedelta(value, expected):
    with override_settings(OFFLINE_SYNC={"TOMBSTONE_RETENTION": value, "REJECTION_RETENTION": value}):
        assert checks.check_settings() == []
        assert expected == get_settings().TOMBSTONE_RETENTION
        assert expected == get_settings().REJECTION_RETENTION


@pytest.mark.parametrize(
    ("value", "check_id"),
    [
        ("30d", "offline_sync.E002"),
        (True, "offline_sync.E002"),
        (0, "offline_sync.E009"),
        (dt.timedelta(seconds=-5), "offline_sync.E009"),
        (10**30, "offline_sync.E009"),
    ],
)
def test_retention_refuses_what_is_not_a_positive_duration(value, check_id):
    for key in ("TOMBSTONE_RETENTION", "REJECTION_RETENTION"):
        with override_settings(OFFLINE_SYNC={key: value}):
            assert [m.id for m in checks.check_settings()] == [check_id]


def test_retention_is_off_by_default():
    assert get_settings().TOMBSTONE_RETENTION is None
    with pytest.raises(CommandError, match="TOMBSTONE_RETENTION"):
        purge()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", dt.timedelta(days=90)), ("12h", dt.timedelta(hours=12)), ("3600", dt.timedelta(hours=1)),
     ("2w", dt.timedelta(weeks=2)), ("P3D", dt.timedelta(days=3)), ("1 00:00:00", dt.timedelta(days=1))],
)
def test_parse_age(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["soon", "-5d", "0", "P0D", ""])
def test_bad_older_than_is_a_command_error(text):
    with pytest.raises(CommandError, match="--older-than"):
        purge("--older-than", text)


# -- the command -------------------------------------------------------------------------------


def test_purge_removes_only_old_tombstones_and_records_the_horizon():
    old = tombstone("old", 40)
    older = tombstone("older", 50)
    young = tombstone("young", 5)
    live = age(Task.objects.create(text="live"), 100)

    output = purge("--older-than", "30d")

    assert set(Task.all_objects.values_list("pk", flat=True)) == {young.pk, live.pk}
    assert "tasks.Task (tasks_task): purged 2 tombstone(s)" in output
    assert f"horizon {format_timestamp(old.updated_at)}" in output
    horizon = SyncHorizon.objects.get(table="tasks_task")
    assert horizon.horizon == old.updated_at > older.updated_at
    assert horizon.purged == 2 and horizon.purged_at is not None
    assert horizon_of(Task) == old.updated_at


def test_purge_uses_the_setting_and_small_batches():
    tasks = [tombstone(f"t{i}", 10 + i) for i in range(7)]
    with override_settings(OFFLINE_SYNC={"TOMBSTONE_RETENTION": dt.timedelta(days=9)}):
        output = purge("--batch-size", "2", "--table", "Task")
    assert "purged 7 tombstone(s)" in output
    assert not Task.all_objects.exists()
    assert horizon_of(Task) == max(t.updated_at for t in tasks)


def test_dry_run_changes_nothing():
    old = tombstone("old", 40)
    output = purge("--older-than", "30d", "--dry-run")
    assert "would purge 1 tombstone(s)" in output and "Would purge 1" in output
    assert Task.all_objects.filter(pk=old.pk).exists()
    assert not SyncHorizon.objects.exists()


def test_the_horizon_never_moves_back():
    newer = tombstone("newer", 40)
    purge("--older-than", "30d")
    older = tombstone("older", 60)  # e.g. a row written through a data import
    purge("--older-than", "30d")
    assert horizon_of(Task) == newer.updated_at > older.updated_at
    assert SyncHorizon.objects.get().purged == 2


def test_table_option_limits_the_purge_and_names_unknown_tables():
    task = tombstone("old task", 40)
    note_owner = Task.objects.create(text="owner")
    note = Note.objects.create(task=note_owner, body="old note")
    note.delete()
    backdate(Note, note.pk, 40)
    output = purge("--older-than", "30d", "--table", "tasks.Note")
    assert "tasks.Note" in output and "tasks.Task" not in output
    assert Task.all_objects.filter(pk=task.pk).exists()
    assert not Note.all_objects.filter(pk=note.pk).exists()
    with pytest.raises(CommandError, match="No synced table 'Nope'"):
        purge("--older-than", "30d", "--table", "Nope")


def test_a_tombstone_still_referenced_is_kept_not_cascaded():
    task = Task.objects.create(text="parent")
    live_note = Note.objects.create(task=task, body="still here")
    task.delete()
    age(task, 40)
    output = purge("--older-than", "30d")
    assert "kept 1 still referenced" in output
    assert Task.all_objects.filter(pk=task.pk).exists()
    assert Note.objects.filter(pk=live_note.pk).exists()
    assert horizon_of(Task) is None


def test_an_undelete_between_choice_and_delete_keeps_the_row():
    tombstone("purged", 40)
    report = purge_tombstones(Task, dt.timedelta(days=30), now=timezone.now())
    assert report.purged == 1
    task2 = tombstone("revived later", 40)
    task2.undelete()  # restamped now: no longer older than the retention
    assert purge_tombstones(Task, dt.timedelta(days=30)).purged == 0
    assert Task.objects.filter(pk=task2.pk).exists()


# -- the horizon on list answers ---------------------------------------------------------------


def test_delta_boundary_and_resync_rule():
    from django_offline_sync.query.parser import parse_filter

    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    ge = delta_boundary(parse_filter("(text eq 'x') and (updatedAt ge datetimeoffset'2026-01-02T03:04:05.678Z')"))
    gt = delta_boundary(parse_filter("updatedAt gt cast(2026-01-02T03:04:05.678Z,Edm.DateTimeOffset)"))
    assert ge == (at, True) and gt == (at, False)
    assert delta_boundary(parse_filter("text eq 'x'")) is None
    assert delta_boundary(None) is None
    assert needs_resync(ge, at) and not needs_resync(gt, at)
    assert needs_resync(gt, at + dt.timedelta(milliseconds=1))
    assert not needs_resync(ge, at - dt.timedelta(milliseconds=1))
    assert not needs_resync(None, at) and not needs_resync(gt, None)


def _pull(client, since: str):
    if client.generation == "v3":
        query = f"$filter=(updatedAt gt cast({since},Edm.DateTimeOffset))&__includedeleted=true&$orderby=updatedAt"
    else:
        query = f"$filter=(updatedAt ge datetimeoffset'{since}')&__includeDeleted=true&$orderby=updatedAt"
    return client.get(f"/tables/Task?{query}")


@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_a_pull_older_than_the_horizon_is_told(generation, v2, v3):
    client = v2 if generation == "v2" else v3
    gone = tombstone("gone", 40)
    before = format_timestamp(gone.updated_at - dt.timedelta(seconds=1))
    assert HORIZON_HEADER not in _pull(client, before)  # nothing purged yet
    purge("--older-than", "30d")

    told = _pull(client, before)
    assert told.status_code == 200
    assert told[HORIZON_HEADER] == format_timestamp(gone.updated_at)
    assert HORIZON_HEADER in told["Access-Control-Expose-Headers"]
    # A pull that already saw the purged tombstone, and a first pull, are not.
    assert HORIZON_HEADER not in _pull(client, format_timestamp(gone.updated_at + dt.timedelta(seconds=1)))
    assert HORIZON_HEADER not in client.get("/tables/Task")


@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
def test_a_page_with_rows_reads_the_horizon_in_its_own_statement(generation, v1, v2, v3):
    """Every delta pull page has a boundary: its horizon comes with its rows, no query of its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = {"v1": v1, "v2": v2, "v3": v3}[generation]
    gone = tombstone("gone", 40)
    before = format_timestamp(gone.updated_at - dt.timedelta(seconds=1))
    purge("--older-than", "30d")
    Task.objects.create(text="still here")  # the page has a row
    if generation == "v1":
        query = f"$filter=(__updatedAt ge datetimeoffset'{before}')&__includeDeleted=true&$orderby=__updatedAt"
        pull = lambda: client.get(f"/tables/Task?{query}")  # noqa: E731
    else:
        pull = lambda: _pull(client, before)  # noqa: E731
    with CaptureQueriesContext(connection) as queries:
        told = pull()
    assert told.status_code == 200 and len(told.json() if generation != "v3" else told.json()["items"]) == 1
    assert told[HORIZON_HEADER] == format_timestamp(gone.updated_at)
    horizon_reads = [q["sql"] for q in queries if "offline_sync_horizon" in q["sql"]]
    assert len(horizon_reads) == 1 and "tasks_task" in horizon_reads[0], horizon_reads
    # Past the horizon: the same statement, and no header.
    after = format_timestamp(gone.updated_at + dt.timedelta(seconds=1))
    assert HORIZON_HEADER not in _pull(v2, after)


def test_an_empty_page_reads_the_horizon_after_it(v2):
    gone = tombstone("gone", 40)
    purge("--older-than", "30d")
    assert not Task.all_objects.exists()
    told = _pull(v2, format_timestamp(gone.updated_at - dt.timedelta(seconds=1)))
    assert told.status_code == 200 and told.json() == []
    assert told[HORIZON_HEADER] == format_timestamp(gone.updated_at)


def test_no_horizon_row_reads_as_none_in_the_page(v2):
    Task.objects.create(text="x")
    told = _pull(v2, "2000-01-01T00:00:00.000Z")
    assert told.status_code == 200 and len(told.json()) == 1
    assert HORIZON_HEADER not in told
