"""The ledger in the admin: listing, filters, permission scoping, and the two resolve actions."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse

from django_offline_sync.models import SyncRejection
from django_offline_sync.wire import encode_version
from example_project.tasks.models import Note, Task
from tests.conftest import ZumoClient
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LEDGER = reverse("admin:offline_sync_syncrejection_changelist")


def conflict_on(obj, body: dict) -> SyncRejection:
    stale = f'"{encode_version(obj.version)}"'
    type(obj).all_objects.get(pk=obj.pk).save()
    path = f"/tables/{type(obj).__name__}/{obj.pk}"
    assert ZumoClient("v3").put_json(path, body, HTTP_IF_MATCH=stale).status_code == 412
    return SyncRejection.objects.latest("id")


@pytest.fixture
def entries():
    task = Task.objects.create(text="server")
    note = Note.objects.create(task=task, body="server note")
    task_conflict = conflict_on(task, {"text": "client"})
    note_conflict = conflict_on(note, {"body": "client note", "taskId": task.pk})
    ZumoClient("v2").patch_json("/tables/Task/missing", {"text": "x"})
    rejection = SyncRejection.objects.latest("id")
    return task, note, task_conflict, note_conflict, rejection


def listed(response) -> set[int]:
    return {entry.pk for entry in response.context["cl"].result_list}


def staff(*codenames: str):
    user = UserFactory(username="-".join(codenames) or "nobody", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_superuser_lists_everything_and_filters(admin_client, entries):
    _, _, task_conflict, note_conflict, rejection = entries
    assert listed(admin_client.get(LEDGER)) == {task_conflict.pk, note_conflict.pk, rejection.pk}
    assert listed(admin_client.get(LEDGER, {"table": "tasks.note"})) == {note_conflict.pk}
    assert listed(admin_client.get(LEDGER, {"status__exact": "404"})) == {rejection.pk}
    assert listed(admin_client.get(LEDGER, {"kind": "open"})) == {task_conflict.pk, note_conflict.pk}
    assert listed(admin_client.get(LEDGER, {"kind": "rejection"})) == {rejection.pk}
    day = task_conflict.created_at
    by_date = {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day}
    assert len(listed(admin_client.get(LEDGER, by_date))) == 3
    detail = admin_client.get(reverse("admin:offline_sync_syncrejection_change", args=[task_conflict.pk]))
    assert detail.status_code == 200
    assert b"client" in detail.content and b"server" in detail.content


def test_user_filter(admin_client, entries):
    alice = UserFactory(username="alice")
    client = ZumoClient("v2")
    client.force_authenticate(alice)
    client.patch_json("/tables/Task/missing", {"text": "x"})
    mine = SyncRejection.objects.latest("id")
    assert listed(admin_client.get(LEDGER, {"user__id__exact": alice.pk})) == {mine.pk}


def test_staff_sees_only_tables_they_may_view(client, entries):
    _, _, task_conflict, note_conflict, rejection = entries
    client.force_login(staff("view_syncrejection", "view_note"))
    response = client.get(LEDGER)
    assert listed(response) == {note_conflict.pk}
    assert b"tasks.task" not in response.content.lower()  # not even in the table filter
    hidden = reverse("admin:offline_sync_syncrejection_change", args=[task_conflict.pk])
    assert client.get(hidden).status_code == 302  # the admin's "does not exist" redirect

    client.force_login(staff("view_syncrejection"))
    assert listed(client.get(LEDGER)) == set()


def test_keep_the_server_row_action(admin_client, entries):
    task, _, task_conflict, _, rejection = entries
    version = Task.objects.get().version
    data = {"action": "keep_server_row", helpers.ACTION_CHECKBOX_NAME: [task_conflict.pk, rejection.pk]}
    admin_client.post(LEDGER, data)
    task_conflict.refresh_from_db()
    rejection.refresh_from_db()
    assert task_conflict.resolution == "server" and task_conflict.resolved_by.username == "admin"
    assert rejection.resolution == ""  # a rejection is not a conflict to resolve
    assert Task.objects.get().version == version


def test_apply_the_client_item_action(admin_client, entries):
    task, note, task_conflict, note_conflict, _ = entries
    data = {"action": "apply_client_item", helpers.ACTION_CHECKBOX_NAME: [task_conflict.pk, note_conflict.pk]}
    admin_client.post(LEDGER, data)
    assert Task.objects.get(pk=task.pk).text == "client"
    assert Note.objects.get(pk=note.pk).body == "client note"
    task_conflict.refresh_from_db()
    assert task_conflict.resolution == "client"
    assert task_conflict.applied_version == encode_version(Task.objects.get(pk=task.pk).version)


def test_applying_needs_change_permission_on_the_table(client, entries):
    task, _, task_conflict, _, _ = entries
    client.force_login(staff("view_syncrejection", "change_syncrejection", "view_task"))
    data = {"action": "apply_client_item", helpers.ACTION_CHECKBOX_NAME: [task_conflict.pk]}
    response = client.post(LEDGER, data, follow=True)
    assert b"you may not change this table" in response.content
    assert Task.objects.get(pk=task.pk).text == "server"
    task_conflict.refresh_from_db()
    assert task_conflict.is_open


def test_the_ledger_is_read_only(admin_client, entries):
    assert admin_client.get(reverse("admin:offline_sync_syncrejection_add")).status_code == 403
    entry = entries[2]
    assert admin_client.get(reverse("admin:offline_sync_syncrejection_delete", args=[entry.pk])).status_code == 403


def test_horizon_admin_is_read_only(admin_client):
    from django.utils import timezone

    from django_offline_sync.models import SyncHorizon

    SyncHorizon.objects.create(table="tasks_task", horizon=timezone.now(), purged=3)
    response = admin_client.get(reverse("admin:offline_sync_synchorizon_changelist"))
    assert response.status_code == 200 and b"tasks_task" in response.content
    assert admin_client.get(reverse("admin:offline_sync_synchorizon_add")).status_code == 403
