"""The example project's ``load_demo_data`` and ``ensure_admin`` commands."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from example_project.tasks.management.commands.load_demo_data import DELETED_COUNT, TASK_COUNT
from example_project.tasks.models import Inspection, Note, Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        model.__name__: dict(model.all_objects.values_list("pk", "version"))
        for model in (Task, Note, Inspection)
    }


def test_load_demo_data_creates_tasks_notes_and_inspections_when_empty():
    output = run("load_demo_data")
    assert f"created {TASK_COUNT} tasks" in output
    assert Task.all_objects.count() == TASK_COUNT
    assert Task.deleted_objects.count() == DELETED_COUNT
    assert Task.objects.filter(complete=True).exists() and Task.objects.filter(complete=False).exists()
    assert len(set(Task.objects.values_list("priority", flat=True))) > 1
    assert Task.objects.filter(due_date__isnull=False).count() == Task.objects.count()
    assert Note.objects.exists()
    assert not Note.objects.filter(task__deleted=True).exists()
    inspections = Inspection.objects.all()
    assert inspections.count() >= 3
    assert {i.owner.username for i in inspections} == {"inspector"}
    # Every row is stamped like any other write.
    assert not Task.all_objects.filter(updated_at__isnull=True).exists()


def test_load_demo_data_writes_realistic_task_texts():
    run("load_demo_data")
    texts = list(Task.objects.values_list("text", flat=True))
    assert all(" on " in text for text in texts)
    assert any(text.split()[0] in ("Inspect", "Survey", "Flush", "Photograph") for text in texts)


def test_load_demo_data_adds_nothing_when_run_twice():
    run("load_demo_data")
    first = snapshot()
    output = run("load_demo_data")
    assert "created 0 tasks, 0 notes and 0 inspections" in output
    assert snapshot() == first
    assert get_user_model().objects.filter(username="inspector").count() == 1


def test_load_demo_data_keeps_a_restored_row_restored_when_run_again():
    run("load_demo_data")
    restored = Task.deleted_objects.first()
    restored.undelete()
    run("load_demo_data")
    assert Task.objects.filter(pk=restored.pk).exists()


def test_load_demo_data_gives_the_same_ids_when_the_seed_is_the_same():
    run("load_demo_data", "--seed", "7")
    ids = set(Task.all_objects.values_list("pk", flat=True))
    run("load_demo_data", "--reset", "--seed", "7")
    assert set(Task.all_objects.values_list("pk", flat=True)) == ids


def test_load_demo_data_reset_wipes_other_rows_and_reloads():
    own = TaskFactory(text="my own task")
    run("load_demo_data")
    Task.objects.update(text="edited")
    output = run("load_demo_data", "--reset")
    assert "Removed all" in output
    assert not Task.all_objects.filter(pk=own.pk).exists()
    assert Task.all_objects.count() == TASK_COUNT
    assert not Task.all_objects.filter(text="edited").exists()


def test_ensure_admin_creates_a_superuser_with_a_generated_password_when_absent():
    output = run("ensure_admin")
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert "Login URL: http://127.0.0.1:8000/admin/" in output
    assert "Username:  admin" in output
    password = next(line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Password:"))
    assert len(password) >= 12
    assert user.check_password(password)


def test_ensure_admin_uses_the_given_password_and_base_url_when_passed(client):
    output = run("ensure_admin", "--password", "s3cret-pass", "--base-url", "https://demo.example.org/")
    assert "Login URL: https://demo.example.org/admin/" in output
    assert "Password:  s3cret-pass" in output
    assert client.login(username="admin", password="s3cret-pass")
    assert client.get("/admin/").status_code == 200


def test_ensure_admin_takes_a_password_that_begins_with_a_dash(client):
    """As the fuzz run passes a generated one (``secrets.token_urlsafe`` may begin with "-")."""
    output = run("ensure_admin", "--password=-lHa8nQFwnFLk0NF8")
    assert "Password:  -lHa8nQFwnFLk0NF8" in output
    assert client.login(username="admin", password="-lHa8nQFwnFLk0NF8")


def test_ensure_admin_keeps_the_password_when_the_user_exists():
    run("ensure_admin", "--password", "first-pass")
    output = run("ensure_admin")
    assert "exists" in output and "unchanged" in output
    assert get_user_model().objects.get(username="admin").check_password("first-pass")
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_ensure_admin_resets_the_password_when_the_user_exists_and_one_is_given():
    run("ensure_admin", "--password", "first-pass")
    run("ensure_admin", "--password", "second-pass")
    assert get_user_model().objects.get(username="admin").check_password("second-pass")


def test_ensure_admin_prints_the_inspector_token_when_run():
    output = run("ensure_admin")
    token = Token.objects.get(user__username="inspector")
    assert f"API token for 'inspector': {token.key}" in output
    # Stable across runs, and the same user that owns the demo inspections.
    assert token.key in run("ensure_admin")
    run("load_demo_data")
    assert {i.owner_id for i in Inspection.objects.all()} == {token.user_id}
