"""rowsql: the write's statements compiled once per model, and the cases left to Django.

Each behaviour is checked both ways: through the cached statements (the common case) and
through Django's own implementation where rowsql steps aside (expressions, save() overrides
that change what is saved, signal receivers, a data view of the project's own).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, models
from django.db.models import F
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from django_offline_sync import rowsql, stamping
from django_offline_sync.managers import AllObjectsManager
from django_offline_sync.models import SyncClock
from django_offline_sync.viewsets import SyncViewSet, _plain_manager
from example_project.tasks.models import Note, Task
from example_project.tasks.views import InspectionViewSet, NoteViewSet, TaskViewSet
from tests.models import Coded, Item

pytestmark = pytest.mark.django_db

#: The cached statements are built for SQLite and PostgreSQL only (``rowsql.VENDORS``); on any
#: other database every write takes Django's own path, which the rest of the suite covers.
cached_statements = pytest.mark.skipif(
    connection.vendor not in rowsql.VENDORS, reason=f"cached statements only on {sorted(rowsql.VENDORS)}"
)


class ShoutingTask(Task):
    """A save() override that changes what is saved, on a proxy (same table, same rowsql)."""

    class Meta:
        proxy = True
        app_label = "tests"

    def save(self, *args, **kwargs):
        self.text = self.text.upper()
        super().save(*args, **kwargs)


class ScopedTaskViewSet(SyncViewSet):
    model = Task

    def get_queryset(self):
        return super().get_queryset().filter(priority__lt=5)


class QuerysetTaskViewSet(SyncViewSet):
    queryset = Task.all_objects.filter(complete=False)


class _HidingManager(AllObjectsManager):
    def get_queryset(self):
        return super().get_queryset().filter(priority__lt=5)


def _statements(queries):
    return [q["sql"] for q in queries.captured_queries]


@cached_statements
def test_an_update_runs_the_cached_statement_and_writes_every_column():
    task = Task.objects.create(text="a", priority=1)
    task.text, task.priority, task.complete = "b", 2, True
    with CaptureQueriesContext(connection) as queries:
        task.save()
    updates = [sql for sql in _statements(queries) if sql.startswith('UPDATE "tasks_task"')]
    assert len(updates) == 1
    assert "WHERE \"tasks_task\".\"id\" = " in updates[0]
    stored = Task.all_objects.get(pk=task.pk)
    assert (stored.text, stored.priority, stored.complete) == ("b", 2, True)
    assert stored.updated_at == task.updated_at and stored.version == task.version


def test_an_update_with_update_fields_writes_those_and_the_stamp_only():
    task = Task.objects.create(text="a", priority=1)
    Task.all_objects.filter(pk=task.pk).update(priority=7)  # behind the instance's back
    task.text = "b"
    task.save(update_fields=["text"])
    stored = Task.all_objects.get(pk=task.pk)
    assert (stored.text, stored.priority, stored.version) == ("b", 7, task.version)


def test_an_update_of_a_missing_row_inserts_it_as_django_does():
    task = Task(id="gone", text="a")
    task.save()
    Task.all_objects.filter(pk="gone").hard_delete()
    task._state.adding = False
    task.text = "again"
    task.save()  # the UPDATE finds no row: Django inserts
    assert Task.all_objects.get(pk="gone").text == "again"


def test_an_update_with_update_fields_of_a_missing_row_fails_as_django_does():
    task = Task.objects.create(text="a")
    Task.all_objects.filter(pk=task.pk).hard_delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        task.save(update_fields=["text"])


def test_an_expression_falls_back_to_django():
    task = Task.objects.create(text="a", priority=1)
    task.priority = F("priority") + 41
    task.save()
    assert Task.all_objects.get(pk=task.pk).priority == 42


@cached_statements
def test_an_insert_runs_the_cached_statement():
    with CaptureQueriesContext(connection) as queries:
        task = Task.objects.create(text="x", priority=3, due_date=dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC))
    statements = _statements(queries)
    inserts = [sql for sql in statements if 'INSERT INTO "tasks_task"' in sql]
    assert len(inserts) == 1
    if connection.vendor == "postgresql":  # the stamp is taken in the same statement
        assert inserts[0].startswith('WITH "clock" AS (INSERT INTO "offline_sync_clock"')
        assert not any(sql.startswith('UPDATE "offline_sync_clock"') for sql in statements)
    stored = Task.all_objects.get(pk=task.pk)
    assert stored.due_date == dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
    assert (stored.created_at, stored.updated_at, stored.version) == (task.created_at, task.updated_at, task.version)
    assert task.created_at == task.updated_at and task.version == stamping.datetime_to_ms(task.updated_at)
    assert SyncClock.objects.get(table="tasks_task").last_ms == task.version


def test_inserts_take_strictly_increasing_stamps_from_the_clock_and_create_it():
    SyncClock.objects.filter(table="tasks_task").delete()  # a table's first write makes its clock row
    future = stamping.now_ms() + 3_600_000
    first = Task.objects.create(text="a")
    SyncClock.objects.filter(table="tasks_task").update(last_ms=future)  # a clock ahead of now
    second = Task.objects.create(text="b")
    third = Task.objects.create(text="c")
    assert first.version < future
    assert (second.version, third.version) == (future + 1, future + 2)
    assert third.updated_at == stamping.ms_to_datetime(future + 2)
    assert SyncClock.objects.get(table="tasks_task").last_ms == future + 2


def test_a_pre_save_receiver_sees_the_stamp_and_an_expression_falls_back():
    seen = []

    def before(sender, instance, **kwargs):
        seen.append(instance.version)

    pre_save.connect(before, sender=Task)
    try:
        task = Task.objects.create(text="a")
    finally:
        pre_save.disconnect(before, sender=Task)
    assert seen == [task.version] and task.version > 0
    from django.db.models.functions import Upper

    shouted = Task.objects.create(text=Upper(models.Value("quiet")))  # not a plain value: Django's INSERT
    stored = Task.all_objects.get(pk=shouted.pk)
    assert stored.text == "QUIET" and stored.version == shouted.version > task.version


def test_every_column_type_round_trips_through_the_cached_statements():
    values = {
        "name": "n", "count": 3, "price": Decimal("12.3400"), "ratio": 0.5, "flag": True,
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC), "day": dt.date(2024, 1, 2),
        "ref": uuid.UUID(int=7), "label": None,
    }
    item = Item.objects.create(**values)
    stored = Item.all_objects.get(pk=item.pk)
    assert {k: getattr(stored, k) for k in values} == values
    item.flag, item.label, item.price = False, "l", None
    item.save()
    stored = Item.all_objects.get(pk=item.pk)
    assert (stored.flag, stored.label, stored.price) == (False, "l", None)
    coded = Coded.objects.create(tags=["a", {"b": 1}])
    coded.tags = {"c": [1, 2]}
    coded.save()
    assert Coded.all_objects.get(pk=coded.pk).tags == {"c": [1, 2]}


def test_a_save_override_and_the_signals_see_and_change_what_is_saved():
    seen = []

    def before(sender, instance, **kwargs):
        instance.priority = 9  # a receiver that changes the row: it must be written
        seen.append(("pre", instance.text))

    def after(sender, instance, created, **kwargs):
        seen.append(("post", created, instance.version))

    pre_save.connect(before, sender=ShoutingTask)
    post_save.connect(after, sender=ShoutingTask)
    try:
        task = ShoutingTask.objects.create(text="quiet")
        task.text = "still quiet"
        task.save()
    finally:
        pre_save.disconnect(before, sender=ShoutingTask)
        post_save.disconnect(after, sender=ShoutingTask)
    stored = Task.all_objects.get(pk=task.pk)
    assert (stored.text, stored.priority) == ("STILL QUIET", 9)
    assert seen == [("pre", "QUIET"), ("post", True, seen[1][2]), ("pre", "STILL QUIET"), ("post", False, task.version)]


@cached_statements
def test_the_loader_reads_a_row_as_the_orm_does():
    task = Task.objects.create(text="t", complete=True, due_date=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    loader = rowsql.row_loader(Task, "default")
    assert loader is not None
    loaded = loader.load("default", task.pk)
    orm = Task.all_objects.get(pk=task.pk)
    fields = [f.attname for f in Task._meta.concrete_fields]
    assert [getattr(loaded, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert loaded._state.adding is False and loaded._state.db == "default"
    assert loader.load("default", "no-such-row") is None


@cached_statements
def test_the_loader_finds_tombstones_too():
    task = Task.objects.create(text="t")
    task.delete()
    loaded = rowsql.row_loader(Task, "default").load("default", task.pk)
    assert loaded is not None and loaded.deleted is True


def test_only_the_librarys_own_data_view_is_loaded_with_the_cached_statement(monkeypatch):
    assert TaskViewSet._table().plain_data_view is True
    assert NoteViewSet._table().plain_data_view is True
    assert InspectionViewSet._table().plain_data_view is False  # get_queryset overridden
    assert ScopedTaskViewSet._table().plain_data_view is False
    view = QuerysetTaskViewSet()
    assert view._table().plain_data_view is True and view.plain_data_view is False  # a queryset attribute
    view = TaskViewSet(queryset=Task.all_objects.filter(complete=False))  # as_view(queryset=…)
    assert view.plain_data_view is False
    monkeypatch.setattr(Task, "all_objects", _HidingManager())
    Task.all_objects.model = Task
    assert _plain_manager(Task) is False


GENERATION_HEADERS = {
    "v1": {"HTTP_X_ZUMO_APPLICATION": "app-key"},
    "v2": {"HTTP_ZUMO_API_VERSION": "2.0.0"},
    "v3": {"HTTP_ZUMO_API_VERSION": "3.0.0"},
}


@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
def test_a_data_view_of_the_projects_own_still_decides_what_a_write_finds(generation):
    visible = Task.objects.create(text="v", priority=1)
    hidden = Task.objects.create(text="h", priority=7)
    view = ScopedTaskViewSet.as_view({"patch": "partial_update"})
    factory = APIRequestFactory()
    for task, status in ((visible, 200), (hidden, 404)):
        req = factory.patch(f"/tables/Task/{task.pk}", {"text": "new"}, format="json", **GENERATION_HEADERS[generation])
        response = view(req, pk=task.pk)
        assert response.status_code == status, response.data
    assert Task.all_objects.get(pk=hidden.pk).text == "h"
    assert Task.all_objects.get(pk=visible.pk).text == "new"


def test_a_model_with_its_own_base_manager_is_left_to_django():
    assert rowsql._simple_table(Task) is True
    opts = Task._meta
    original = opts.base_manager_name
    opts.base_manager_name = "all_objects"
    try:
        assert rowsql._simple_table(Task) is False
        assert rowsql._update_sql(Task, connection, (opts.get_field("text"),)) is None
    finally:
        opts.base_manager_name = original


# -- the serializer's nested-write check ------------------------------------------------------


def test_a_writable_dotted_source_is_still_refused_as_drf_refuses_it():
    from rest_framework import serializers

    from django_offline_sync.serializers import SyncModelSerializer

    class NoteSerializer(SyncModelSerializer):
        task_text = serializers.CharField(source="task.text")

        class Meta:
            model = Note
            fields = ["body", "task_text"]

    serializer = NoteSerializer(data={"body": "b", "task_text": "x"})
    assert serializer.is_valid(), serializer.errors
    with pytest.raises(AssertionError, match="writable dotted-source"):
        serializer.save()


def test_a_post_save_receiver_and_a_save_override_see_the_stamped_row():
    seen = []

    def after(sender, instance, created, **kwargs):
        seen.append((created, instance.version, instance.updated_at, instance.created_at))

    post_save.connect(after, sender=ShoutingTask)
    try:
        task = ShoutingTask.objects.create(text="quiet")  # no pre_save receiver: one statement on PostgreSQL
    finally:
        post_save.disconnect(after, sender=ShoutingTask)
    stored = Task.all_objects.get(pk=task.pk)
    assert stored.text == "QUIET"
    assert seen == [(True, stored.version, stored.updated_at, stored.created_at)]


# -- parameters that Django would leave unchanged ---------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (models.CharField(max_length=10), "text"),
        (models.CharField(max_length=10, null=True), None),
        (models.TextField(), "a longer text"),
        (models.TextField(null=True), None),
        (models.BooleanField(), True),
        (models.BooleanField(), False),
        (models.BooleanField(null=True), None),
    ],
)
def test_the_values_passed_through_unprepared_are_what_django_prepares(field, value):
    # rowsql skips get_db_prep_save for these exact pairs; this pins that Django (of whatever
    # version is installed) and the backend return the very value.
    assert (type(field), type(value)) in rowsql._UNCHANGED
    assert field.get_db_prep_save(value, connection=connection) is value
    assert rowsql._prepared([(field, value)], connection) == [value]


def test_a_subclass_of_a_passed_through_field_is_still_prepared_by_django():
    class Upper(models.CharField):
        def get_prep_value(self, value):
            return super().get_prep_value(value).upper()

    assert rowsql._prepared([(Upper(max_length=5), "abc")], connection) == ["ABC"]
