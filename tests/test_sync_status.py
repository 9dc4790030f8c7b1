"""The admin's sync status page, and the last pull/push per user it shows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from django_offline_sync.models import SyncActivity, SyncHorizon, SyncRejection
from django_offline_sync.wire import encode_version
from example_project.tasks.models import Note, Task
from tests.conftest import ZumoClient
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STATUS = reverse("admin:offline_sync_syncactivity_changelist")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def rows(response) -> dict[str, dict]:
    return {row["label"]: row for row in response.context["tables"]}


def test_table_figures(admin_client):
    live = [Task.objects.create(text=f"t{i}") for i in range(3)]
    old = Task.objects.create(text="old")
    QuerySet(Task).filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(hours=5))
    yesterday = Task.objects.create(text="old tombstone")
    yesterday.delete()
    QuerySet(Task).filter(pk=yesterday.pk).update(updated_at=timezone.now() - dt.timedelta(days=2))
    horizon = timezone.now() - dt.timedelta(days=40)
    SyncHorizon.objects.create(table="tasks_task", horizon=horizon, purged=4)
    stale = f'"{encode_version(live[0].version)}"'
    live[0].save()
    ZumoClient("v3").put_json(f"/tables/Task/{live[0].pk}", {"text": "x"}, HTTP_IF_MATCH=stale)
    ZumoClient("v2").patch_json("/tables/Task/nope", {"text": "x"})  # a rejection, not a conflict

    response = admin_client.get(STATUS)

    assert response.status_code == 200
    task = rows(response)["tasks.task"]
    assert (task["live"], task["tombstones"], task["hour"], task["day"]) == (4, 1, 3, 4)
    assert task["newest"] == Task.objects.order_by("-updated_at").first().updated_at
    assert task["horizon"] == horizon and task["conflicts"] == 1
    assert rows(response)["tasks.note"]["live"] == 0
    html = response.content.decode()
    assert 'href="/admin/offline_sync/syncrejection/?kind=open&amp;table=tasks.task"' in html
    assert "/admin/tasks/task/?deleted=deleted" in html
    assert SyncRejection.objects.count() == 2


def test_last_pull_and_push_per_user_are_recorded_once_a_minute(admin_client):
    alice = UserFactory(username="alice")
    client = ZumoClient("v3")
    client.force_authenticate(alice)
    assert client.get("/tables/Task").status_code == 200
    first = SyncActivity.objects.get(user=alice, table="tasks.task")
    assert first.last_pull is not None and first.last_push is None

    client.get("/tables/Task")  # within the minute: no write
    assert SyncActivity.objects.get(pk=first.pk).last_pull == first.last_pull
    assert client.post_json("/tables/Task", {"text": "pushed"}).status_code == 201
    assert SyncActivity.objects.get(pk=first.pk).last_push is not None

    cache.clear()  # the minute is over
    client.get("/tables/Task")
    assert SyncActivity.objects.get(pk=first.pk).last_pull > first.last_pull

    ZumoClient("v3").get("/tables/Task")  # anonymous: not recorded
    client.patch_json("/tables/Task/nope", {"text": "x"})  # refused: not a push
    assert SyncActivity.objects.count() == 1

    response = admin_client.get(STATUS)
    assert [a.user.username for a in response.context["activity"]] == ["alice"]
    assert "alice" in response.content.decode()


def test_a_staff_user_sees_only_tables_they_may_view(client):
    Task.objects.create(text="secret")
    note_owner = Task.objects.create(text="owner")
    Note.objects.create(task=note_owner, body="n")
    bob = UserFactory(username="bob")
    SyncActivity.objects.create(user=bob, table="tasks.task", last_pull=timezone.now())
    staff = UserFactory(username="staff", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_syncactivity", "view_note"]))
    client.force_login(staff)

    response = client.get(STATUS)

    assert response.status_code == 200
    assert set(rows(response)) == {"tasks.note"}
    assert list(response.context["activity"]) == []

    nobody = UserFactory(username="nobody", is_staff=True)
    client.force_login(nobody)
    assert client.get(STATUS).status_code == 403


def test_the_page_is_listed_in_the_admin_index(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert STATUS in response.content.decode()
    assert admin_client.get(reverse("admin:offline_sync_syncactivity_add")).status_code == 403
