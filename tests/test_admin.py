"""``SyncModelAdmin`` through the Django test client: filter, soft delete, restore, hard delete."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse

from django_offline_sync.admin import DeletedListFilter, SyncModelAdmin
from django_offline_sync.models import SyncClock
from example_project.tasks.models import Inspection, Note, Task
from tests.factories import InspectionFactory, NoteFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tasks_task_changelist")


def change_url(obj) -> str:
    return reverse("admin:tasks_task_change", args=[obj.pk])


def delete_url(obj) -> str:
    return reverse("admin:tasks_task_delete", args=[obj.pk])


def listed(response) -> set[str]:
    return {obj.pk for obj in response.context["cl"].result_list}


def action(client, name, objs, url=CHANGELIST, **extra):
    data = {"action": name, helpers.ACTION_CHECKBOX_NAME: [o.pk for o in objs], **extra}
    return client.post(url, data)


@pytest.fixture
def live():
    return TaskFactory.create_batch(2)


@pytest.fixture
def gone():
    return TaskFactory(deleted_row=True)


def test_example_models_are_registered_with_sync_model_admin():
    for model in (Task, Note, Inspection):
        assert isinstance(admin.site._registry[model], SyncModelAdmin)


def test_changelist_shows_live_rows_when_unfiltered(admin_client, live, gone):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert listed(response) == {t.pk for t in live}
    # The default choice reads "Live" and is selected.
    spec = next(s for s in response.context["cl"].filter_specs if isinstance(s, DeletedListFilter))
    choices = list(spec.choices(response.context["cl"]))
    assert [str(c["display"]) for c in choices] == ["Live", "Deleted", "All"]
    assert choices[0]["selected"]


def test_changelist_shows_only_deleted_rows_when_filtered_by_deleted(admin_client, live, gone):
    response = admin_client.get(CHANGELIST, {"deleted": "deleted"})
    assert listed(response) == {gone.pk}


def test_changelist_shows_every_row_when_filtered_by_all(admin_client, live, gone):
    response = admin_client.get(CHANGELIST, {"deleted": "all"})
    assert listed(response) == {t.pk for t in live} | {gone.pk}


def test_changelist_finds_a_row_by_text_or_id_when_searching(admin_client, live):
    live[0].text = "Inspect culvert C-12"
    live[0].save()
    assert listed(admin_client.get(CHANGELIST, {"q": "culvert"})) == {live[0].pk}
    assert listed(admin_client.get(CHANGELIST, {"q": live[1].pk})) == {live[1].pk}


def test_change_view_opens_when_the_row_is_deleted(admin_client, gone):
    response = admin_client.get(change_url(gone))
    assert response.status_code == 200


def test_system_fields_are_read_only_when_changing(admin_client, live):
    response = admin_client.get(change_url(live[0]))
    form = response.context["adminform"].form
    assert "id" not in form.fields
    for name in ("id", "created_at", "updated_at", "version", "deleted"):
        assert name in response.context["adminform"].readonly_fields


def test_id_is_editable_when_adding(admin_client):
    response = admin_client.get(reverse("admin:tasks_task_add"))
    form = response.context["adminform"].form
    assert "id" in form.fields
    assert "version" not in form.fields


def test_adding_a_row_stamps_it_when_saved(admin_client):
    response = admin_client.post(
        reverse("admin:tasks_task_add"),
        {"id": "from-admin", "text": "new", "priority": 1, "notes-TOTAL_FORMS": 0, "notes-INITIAL_FORMS": 0},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    task = Task.objects.get(pk="from-admin")
    assert task.updated_at is not None and task.version


def test_adding_a_row_fails_when_the_id_is_invalid(admin_client):
    response = admin_client.post(
        reverse("admin:tasks_task_add"),
        {"id": "a/b", "text": "new", "priority": 1, "notes-TOTAL_FORMS": 0, "notes-INITIAL_FORMS": 0},
    )
    assert response.status_code == 200
    assert "id" in response.context["adminform"].form.errors
    assert not Task.all_objects.exists()


def test_delete_view_asks_for_a_soft_delete_when_opened(admin_client, live):
    NoteFactory(task=live[0])
    response = admin_client.get(delete_url(live[0]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "marked deleted" in content
    # A soft delete does not cascade, so no related note is listed.
    assert "Note:" not in content
    assert response.context["deleted_objects"] and len(response.context["deleted_objects"]) == 1


def test_delete_view_soft_deletes_when_confirmed(admin_client, live):
    task = live[0]
    note = NoteFactory(task=task)
    response = admin_client.post(delete_url(task), {"post": "yes"})
    assert response.status_code == 302
    stored = Task.all_objects.get(pk=task.pk)
    assert stored.deleted and stored.version != task.version and stored.updated_at > task.updated_at
    assert Note.objects.filter(pk=note.pk).exists()


def test_delete_action_shows_a_soft_delete_confirmation_when_chosen(admin_client, live):
    response = action(admin_client, "delete_selected", live)
    assert response.status_code == 200
    assert "marked deleted" in response.content.decode()
    assert Task.objects.count() == 2


def test_delete_action_soft_deletes_when_confirmed(admin_client, live, gone):
    response = action(admin_client, "delete_selected", live, post="yes")
    assert response.status_code == 302
    assert Task.objects.count() == 0
    assert Task.deleted_objects.count() == 3
    assert Task.all_objects.count() == 3


def test_delete_action_is_described_as_restorable_when_listed(admin_client, live):
    response = admin_client.get(CHANGELIST)
    choices = dict(response.context["action_form"].fields["action"].choices)
    assert choices["delete_selected"] == "Delete selected tasks (can be restored)"
    assert choices["restore_selected"] == "Restore selected tasks"
    assert choices["hard_delete_selected"] == "Hard delete selected tasks (permanent)"


def test_restore_action_undeletes_and_bumps_when_chosen(admin_client, gone):
    url = CHANGELIST + "?deleted=deleted"
    response = action(admin_client, "restore_selected", [gone], url=url)
    assert response.status_code == 302
    stored = Task.objects.get(pk=gone.pk)
    assert stored.version != gone.version


def test_hard_delete_action_shows_a_confirmation_page_when_chosen(admin_client, live):
    NoteFactory(task=live[0])
    response = action(admin_client, "hard_delete_selected", live)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="confirm"' in content and "cannot be undone" in content
    # The permanent delete cascades, so the page lists the related note.
    assert "Note:" in content
    assert Task.all_objects.count() == 2


def test_hard_delete_action_deletes_nothing_when_the_box_is_not_ticked(admin_client, live):
    response = action(admin_client, "hard_delete_selected", live, post="yes")
    assert response.status_code == 200
    assert response.context["confirm_missing"]
    assert Task.all_objects.count() == 2


def test_hard_delete_action_removes_rows_and_children_when_confirmed(admin_client, live, gone):
    NoteFactory(task=live[0])
    url = CHANGELIST + "?deleted=all"
    response = action(admin_client, "hard_delete_selected", [live[0], gone], url=url, post="yes", confirm="yes")
    assert response.status_code == 302
    assert list(Task.all_objects.values_list("pk", flat=True)) == [live[1].pk]
    assert not Note.all_objects.exists()


def test_delete_actions_are_hidden_when_the_user_lacks_delete_permission(client, live):
    user = UserFactory(username="clerk", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_task", "change_task"]))
    client.force_login(user)
    response = client.get(CHANGELIST)
    choices = dict(response.context["action_form"].fields["action"].choices)
    assert "restore_selected" in choices
    assert "delete_selected" not in choices and "hard_delete_selected" not in choices
    response = action(client, "hard_delete_selected", live, post="yes", confirm="yes")
    assert Task.all_objects.count() == 2


@pytest.mark.parametrize("name", ["inspection", "note"])
def test_changelist_opens_when_the_model_is_an_example_table(admin_client, name):
    NoteFactory()
    InspectionFactory()
    response = admin_client.get(reverse(f"admin:tasks_{name}_changelist"), {"q": "x"})
    assert response.status_code == 200


def test_sync_clock_admin_lists_clocks_read_only(admin_client, live):
    response = admin_client.get(reverse("admin:offline_sync_syncclock_changelist"))
    assert response.status_code == 200
    assert Task._meta.db_table in response.content.decode()
    clock = SyncClock.objects.get(table=Task._meta.db_table)
    assert admin_client.get(reverse("admin:offline_sync_syncclock_add")).status_code == 403
    delete = reverse("admin:offline_sync_syncclock_delete", args=[clock.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert SyncClock.objects.filter(pk=clock.pk).exists()


def test_autocomplete_offers_only_live_rows_when_another_form_asks(admin_client, live, gone):
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "tasks", "model_name": "note", "field_name": "task", "term": ""},
    )
    assert response.status_code == 200
    assert {r["id"] for r in response.json()["results"]} == {t.pk for t in live}


def test_adding_a_row_fails_when_its_id_belongs_to_a_deleted_row(admin_client, gone):
    response = admin_client.post(
        reverse("admin:tasks_task_add"),
        {"id": gone.pk, "text": "new", "priority": 1, "notes-TOTAL_FORMS": 0, "notes-INITIAL_FORMS": 0},
    )
    assert response.status_code == 200
    assert "id" in response.context["adminform"].form.errors


def test_sync_import_admin_lists_imports_read_only(admin_client):
    from django_offline_sync.models import SyncImport

    record = SyncImport.objects.create(
        key="k" * 64, target="tasks.Task", source="http://old.example/tables/TodoItem", generation="v2",
        token="2026-01-02T03:04:05.678Z", complete=True,
    )
    response = admin_client.get(reverse("admin:offline_sync_syncimport_changelist"))
    assert response.status_code == 200
    assert "http://old.example/tables/TodoItem" in response.content.decode()
    assert admin_client.get(reverse("admin:offline_sync_syncimport_add")).status_code == 403
    change = reverse("admin:offline_sync_syncimport_change", args=[record.pk])
    assert admin_client.post(change, {"token": ""}).status_code == 403
    SyncImport.objects.get(pk=record.pk, token="2026-01-02T03:04:05.678Z")
