"""A device offline across a tombstone purge converges, over real HTTP against a live server.

The server purges tombstones the device never pulled; its next delta pull is answered with
``X-Offline-Sync-Horizon`` and the client pulls the table afresh on its own: the purged rows
disappear locally, queued local changes survive, and the pull after that is incremental again.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import QuerySet
from django.utils import timezone

from django_offline_sync.wire import truncate_ms
from example_project.tasks.models import Task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def backdate(pks, days: float) -> None:
    QuerySet(Task).filter(pk__in=pks).update(
        updated_at=truncate_ms(timezone.now() - dt.timedelta(days=days))  # stamps are whole ms
    )


def purge(older_than: str = "30d") -> None:
    call_command("purge_tombstones", "--older-than", older_than, stdout=StringIO())


def offline_device_and_a_purge(device, *, priority: int = 1):
    """A device that pulled 60 days ago; since then one row was deleted and its tombstone purged."""
    kept, gone, also_gone = (Task.objects.create(text=t, priority=priority) for t in ("kept", "gone", "also gone"))
    backdate([kept.pk, gone.pk, also_gone.pk], 60)
    phone = device("phone")
    return phone, kept, gone, also_gone


def delete_and_purge(*tasks: Task) -> None:
    for task in tasks:
        Task.objects.get(pk=task.pk).delete()
    backdate([t.pk for t in tasks], 40)
    purge()
    assert not Task.all_objects.filter(pk__in=[t.pk for t in tasks]).exists()


def test_device_offline_across_a_purge_converges(device):
    phone, kept, gone, also_gone = offline_device_and_a_purge(device)
    assert phone.pull("Task").resynced_from is None
    assert phone.table("Task").count() == 3

    delete_and_purge(gone, also_gone)
    fresh = Task.objects.create(text="written while offline")
    mine = phone.table("Task").insert({"text": "queued on the phone"})  # a pending operation

    result = phone.pull("Task")

    assert result.resynced_from is not None
    local = {row["id"] for row in phone.table("Task").query()}
    assert local == {kept.pk, fresh.pk, mine["id"]}
    assert Task.objects.filter(pk=mine["id"]).exists()  # pushed, not lost
    assert phone.store.pending_count() == 0

    again = phone.pull("Task")  # the token now lies past the horizon: incremental, no resync
    assert again.resynced_from is None and again.received <= 1
    assert {row["id"] for row in phone.table("Task").query()} == local


def test_resync_keeps_rows_with_pending_changes_of_other_tables(device):
    phone, kept, gone, _ = offline_device_and_a_purge(device)
    phone.pull("Task")
    delete_and_purge(gone)
    phone.table("Note").insert({"taskId": kept.pk, "body": "queued note"})  # not pushed by a Task pull
    assert phone.pull("Task").resynced_from is not None
    local = {row["id"] for row in phone.table("Task").query()}
    assert kept.pk in local and gone.pk not in local
    assert phone.store.pending_count("Note") == 1


def test_filtered_pull_resyncs_and_keeps_rows_other_queries_hold(device):
    phone, kept, gone, _ = offline_device_and_a_purge(device, priority=1)
    other = Task.objects.create(text="other query", priority=2)
    backdate([other.pk], 60)
    phone.pull("Task", filter="priority eq 1")
    phone.pull("Task", filter="priority eq 2")
    assert phone.table("Task").count() == 4

    delete_and_purge(gone)
    result = phone.pull("Task", filter="priority eq 1")

    assert result.resynced_from is not None
    local = {row["id"] for row in phone.table("Task").query()}
    assert gone.pk not in local
    assert {kept.pk, other.pk} <= local  # a row of the other query is still on the server: kept
