"""What a write sends to PostgreSQL: an update or a delete locks the clock and reads its row in
one message (``stamping.reserve_reading``) and sends its UPDATE with the COMMIT
(``LockedRow._carry_commit``); an insert is one statement in autocommit. The same answers
as when they went apart, and the transaction kept wherever more than the row may be written."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.db import connection, connections, models, transaction

from django_offline_sync.models import SyncClock
from example_project.tasks.models import Task
from tests.pgtrace import idle, round_trips

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.requires_postgres]


@pytest.fixture
def row(v2):
    created = v2.post_json("/tables/Task", {"text": "before"})
    assert created.status_code == 201, created.content
    return created.json()["id"], created.headers["ETag"]


def sent(run):
    got = []
    trips = round_trips(lambda: got.append(run()))
    return got[0], trips


def test_an_update_locks_the_clock_and_reads_its_row_in_one_message(v2, row):
    pk, etag = row
    clock_before = SyncClock.objects.get(table="tasks_task").last_ms
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 200, response.content
    assert len(trips) == 3, trips  # BEGIN, clock and row, the row's UPDATE and COMMIT
    assert trips[0] == "BEGIN" and trips[-1].startswith('UPDATE "tasks_task"') and trips[-1].endswith("; COMMIT")
    assert trips[1].startswith('UPDATE "offline_sync_clock"') and 'FROM "tasks_task"' in trips[1], trips[1]
    stored = Task.all_objects.get(pk=pk)
    assert stored.text == "after" and response.headers["ETag"] != etag
    assert stored.version > clock_before and SyncClock.objects.get(table="tasks_task").last_ms == stored.version
    assert idle()


def test_a_delete_does_the_same(v2, row):
    pk, etag = row
    response, trips = sent(lambda: v2.delete(f"/tables/Task/{pk}", HTTP_IF_MATCH=etag))
    assert response.status_code == 204, response.content
    assert len(trips) == 3 and 'FROM "tasks_task"' in trips[1] and trips[2].endswith("; COMMIT"), trips
    assert Task.all_objects.get(pk=pk).deleted
    assert idle()


def test_an_undelete_does_the_same(v2, row):
    pk, etag = row
    deleted = v2.delete(f"/tables/Task/{pk}", HTTP_IF_MATCH=etag)
    assert deleted.status_code == 204
    response, trips = sent(lambda: v2.post(f"/tables/Task/{pk}"))
    assert response.status_code == 200, response.content
    assert len(trips) == 3 and trips[2].endswith("; COMMIT"), trips
    assert not Task.all_objects.get(pk=pk).deleted and response.json()["deleted"] is False
    assert idle()


def test_the_update_keeps_its_commit_where_a_post_save_receiver_may_write(v2, row):
    from django.db.models.signals import post_save

    from example_project.tasks.models import Note

    pk, etag = row
    failing = []

    def note_it(sender, instance, created, **kwargs):
        Note.objects.create(task=instance, body="made after the update")
        if failing:
            raise RuntimeError("the receiver fails after its write")

    post_save.connect(note_it, sender=Task, dispatch_uid="round-trips-update")
    try:
        response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "kept"}, HTTP_IF_MATCH=etag))
        failing.append(True)
        with pytest.raises(RuntimeError):
            v2.patch_json(f"/tables/Task/{pk}", {"text": "lost"}, HTTP_IF_MATCH=response.headers["ETag"])
    finally:
        post_save.disconnect(sender=Task, dispatch_uid="round-trips-update")
    assert response.status_code == 200
    assert trips[-1] == "COMMIT" and not any(trip.endswith("; COMMIT") for trip in trips), trips
    assert Task.all_objects.get(pk=pk).text == "kept"  # the failed update went with its receiver's write
    assert Note.objects.filter(task_id=pk).count() == 1
    assert idle()


def test_an_overridden_hook_keeps_the_commit_apart(v2, row, monkeypatch):
    """A view's own perform_update may write after the row: the COMMIT stays its own."""
    from example_project.tasks.views import TaskViewSet

    def perform_update(self, serializer):
        serializer.save()

    monkeypatch.setattr(TaskViewSet, "perform_update", perform_update)
    pk, etag = row
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 200
    assert len(trips) == 4 and trips[-1] == "COMMIT", trips


def test_inside_atomic_requests_the_update_commits_with_the_request(v2, row, monkeypatch):
    pk, etag = row
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 200
    assert trips[-1] == "COMMIT" and not any(trip.endswith("; COMMIT") for trip in trips), trips
    assert Task.all_objects.get(pk=pk).text == "after"


def test_a_row_deleted_outside_the_clock_while_it_is_written_is_404_not_a_new_row(v2, row, monkeypatch):
    """Another connection removes the row after the update read it (a raw DELETE takes no
    clock): the UPDATE that carries the COMMIT finds nothing. Django would INSERT the row
    instead, after the commit, outside the clock's lock; the write is refused."""
    from example_project.tasks.views import TaskViewSet

    pk, etag = row

    def check_object_permissions(self, request, obj):
        apart("DELETE FROM tasks_task WHERE id = %s", [pk])  # the row is read: now it goes

    monkeypatch.setattr(TaskViewSet, "check_object_permissions", check_object_permissions)
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 404, response.content
    assert trips[2].endswith("; COMMIT"), trips
    assert not Task.all_objects.filter(pk=pk).exists()
    assert idle()


def apart(sql, params):
    """``sql`` on a connection of its own, committed at once."""
    import psycopg

    with psycopg.connect(
        host=connection.settings_dict["HOST"], port=connection.settings_dict["PORT"] or 5432,
        user=connection.settings_dict["USER"], dbname=connection.settings_dict["NAME"], autocommit=True,
    ) as other:
        other.execute(sql, params)


def test_a_stale_version_is_412_and_takes_no_stamp(v2, row):
    pk, etag = row
    assert v2.patch_json(f"/tables/Task/{pk}", {"text": "first"}, HTTP_IF_MATCH=etag).status_code == 200
    clock = SyncClock.objects.get(table="tasks_task").last_ms
    stale = v2.patch_json(f"/tables/Task/{pk}", {"text": "lost"}, HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert stale.json()["text"] == "first"  # the server's row, read with the clock locked
    assert SyncClock.objects.get(table="tasks_task").last_ms == clock  # rolled back with the write
    assert idle()


def test_an_unknown_id_is_404(v2, row):
    response, trips = sent(lambda: v2.patch_json("/tables/Task/nope", {"text": "x"}))
    assert response.status_code == 404
    assert trips[0] == "BEGIN" and trips[1].startswith('UPDATE "offline_sync_clock"'), trips
    assert 'FROM "tasks_task"' in trips[1] and "ROLLBACK" in trips  # the clock's advance goes with it
    assert idle()


def test_without_a_clock_row_the_write_takes_the_two_statements_and_creates_it(v2, row):
    """The clock row exists once the table had a write; a row that arrived otherwise (a bulk
    load, a restore) meets a table without one: nothing was locked by the first message, so
    the write locks and reads again, as it did before they went together."""
    pk, etag = row
    SyncClock.objects.filter(table="tasks_task").delete()
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 200, response.content
    assert any(trip.startswith('INSERT INTO "offline_sync_clock"') for trip in trips), trips
    assert SyncClock.objects.get(table="tasks_task").last_ms == Task.all_objects.get(pk=pk).version


def test_the_row_is_read_after_the_clock_is_locked(live_server, row):
    """A writer holds the clock (it stamped the row and has not committed). A conditional
    update sent meanwhile waits in its first statement, the clock's; its second, the row's
    read, runs once the writer committed and so sees the writer's version: 412, with the
    writer's row. Were the row read before the lock, the update would match the old version
    and overwrite the writer's change."""
    pk, etag = row
    stamped, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                task = Task.all_objects.get(pk=pk)
                task.text = "the writer's"
                task.save()  # takes the clock's lock until the commit
                stamped.set()
                release.wait(30)
        finally:
            connections.close_all()

    answers = []

    def update():
        answers.append(httpx.patch(f"{live_server.url}/tables/Task/{pk}", json={"text": "lost"},
                                   headers={"ZUMO-API-VERSION": "2.0.0", "If-Match": etag}, timeout=30))

    holding = threading.Thread(target=writer)
    holding.start()
    assert stamped.wait(30)
    waiting = threading.Thread(target=update)
    waiting.start()
    try:
        deadline = time.monotonic() + 30
        while not _waits_on_a_lock():  # the update's first statement waits for the clock
            assert time.monotonic() < deadline, "the update never waited for the clock"
            time.sleep(0.02)
    finally:
        release.set()
        holding.join()
        waiting.join()
    assert answers[0].status_code == 412, answers[0].text
    assert answers[0].json()["text"] == "the writer's"
    assert Task.all_objects.get(pk=pk).text == "the writer's"


def _waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def test_an_insert_is_one_statement_in_autocommit(v2):
    """The row's INSERT takes its stamp from the clock in the same statement; one statement
    commits by itself, holding the clock's lock until it does, so no BEGIN and COMMIT."""
    clock_before = SyncClock.objects.get_or_create(table="tasks_task", defaults={"last_ms": 0})[0].last_ms
    response, trips = sent(lambda: v2.post_json("/tables/Task", {"id": "one-trip", "text": "alone"}))
    assert response.status_code == 201, response.content
    assert len(trips) == 1 and trips[0] != "BEGIN", trips
    stored = Task.all_objects.get(pk="one-trip")
    assert stored.text == "alone" and stored.version > clock_before
    assert SyncClock.objects.get(table="tasks_task").last_ms == stored.version
    assert response.json()["version"] and response.headers["ETag"]
    assert idle()


def test_a_taken_id_in_autocommit_is_still_a_conflict_and_leaves_the_clock(v2):
    first = v2.post_json("/tables/Task", {"id": "taken", "text": "first"})
    assert first.status_code == 201
    clock = SyncClock.objects.get(table="tasks_task").last_ms
    again, trips = sent(lambda: v2.post_json("/tables/Task", {"id": "taken", "text": "second"}))
    assert again.status_code == 409, again.content
    assert trips[0].startswith("WITH"), trips  # the INSERT in autocommit, then the lookups
    assert again.json()["text"] == "first"
    assert SyncClock.objects.get(table="tasks_task").last_ms == clock  # the failed statement took no stamp
    assert Task.all_objects.get(pk="taken").text == "first"
    assert idle()


def test_an_insert_keeps_its_transaction_where_more_than_the_row_is_written(v2):
    """A post_save receiver may write after the row: both commit together, or neither."""
    from django.db.models.signals import post_save

    from example_project.tasks.models import Note

    failing = []

    def note_it(sender, instance, created, **kwargs):
        if created:
            Note.objects.create(task=instance, body="made with the task")
            if failing:
                raise RuntimeError("the receiver fails after its write")

    post_save.connect(note_it, sender=Task, dispatch_uid="round-trips-test")
    try:
        response, trips = sent(lambda: v2.post_json("/tables/Task", {"id": "with-note", "text": "x"}))
        failing.append(True)
        with pytest.raises(RuntimeError):
            Task.objects.create(id="lost-with-note", text="y")
    finally:
        post_save.disconnect(sender=Task, dispatch_uid="round-trips-test")
    assert response.status_code == 201, response.content
    assert trips[0] == "BEGIN" and trips[-1] == "COMMIT", trips
    assert Note.objects.filter(task_id="with-note").count() == 1
    # the row and the receiver's write went together: neither stayed
    assert not Task.all_objects.filter(pk="lost-with-note").exists()
    assert not Note.objects.filter(task_id="lost-with-note").exists()
    assert idle()


def test_a_perform_create_override_keeps_the_writers_transaction():
    """The view's own perform_create may write more than the row (Inspection's sets the
    owner; another could write a second table): the writer's transaction stays."""
    from example_project.tasks.models import Inspection
    from tests.test_hardening_bodies import inspector

    client = inspector()
    response, trips = sent(lambda: client.post_json("/tables/Inspection", {"site": "s", "pipeId": "p"}))
    assert response.status_code == 201, response.content
    insert = next(i for i, trip in enumerate(trips) if 'INSERT INTO "tasks_inspection"' in trip)
    assert "BEGIN" in trips[:insert] and trips[-1] == "COMMIT", trips
    assert Inspection.objects.get(pk=response.json()["id"]).owner is not None


def test_a_serializer_that_overrides_create_keeps_the_writers_transaction():
    from django_offline_sync.writer import _creates_with_one_save
    from example_project.tasks.views import TaskViewSet

    library = TaskViewSet._table().serializer_class

    class Custom(library):
        def create(self, validated_data):
            return super().create(validated_data)

    for serializer_class, alone in ((library, True), (Custom, False)):
        serializer = serializer_class(data={"text": "x"})
        assert serializer.is_valid(), serializer.errors
        assert _creates_with_one_save(serializer, Task) is alone


def test_the_orm_creates_in_one_statement_too():
    _, trips = sent(lambda: Task.objects.create(id="orm-one", text="orm"))
    assert len(trips) == 1 and trips[0].startswith("WITH"), trips
    assert SyncClock.objects.get(table="tasks_task").last_ms == Task.all_objects.get(pk="orm-one").version


def test_where_the_stamped_insert_cannot_be_used_the_two_statements_share_a_transaction(monkeypatch):
    """The clock's UPDATE and the row's INSERT are two statements: the stamp must commit with
    the row (the clock's lock held until then), so they run in one transaction even where
    save() had left a one-statement insert to autocommit."""
    from django_offline_sync import rowsql

    monkeypatch.setattr(rowsql, "insert_stamped_row", lambda *args: None)
    _, trips = sent(lambda: Task.objects.create(id="two-statements", text="x"))
    assert trips[0] == "BEGIN" and trips[-1] == "COMMIT", trips
    row = next(i for i, trip in enumerate(trips) if trip.startswith('INSERT INTO "tasks_task"'))
    assert trips[1].startswith('UPDATE "offline_sync_clock"') and 1 < row < len(trips) - 1, trips
    assert SyncClock.objects.get(table="tasks_task").last_ms == Task.all_objects.get(pk="two-statements").version


def test_a_deferred_constraint_that_fails_at_the_commit_is_a_400_and_writes_nothing(v2, monkeypatch):
    """Django's foreign keys on PostgreSQL are checked at COMMIT (DEFERRABLE INITIALLY
    DEFERRED); the COMMIT that travels with the UPDATE fails there, and the write is refused
    as when the COMMIT went apart: a 400 naming the constraint, the row and clock unchanged."""
    from example_project.tasks.models import Note
    from example_project.tasks.views import NoteViewSet

    task, other = Task.objects.create(text="parent"), Task.objects.create(text="gone by the commit")
    note = v2.post_json("/tables/Note", {"taskId": task.pk, "body": "before"})
    assert note.status_code == 201, note.content
    pk, etag = note.json()["id"], note.headers["ETag"]
    clock = SyncClock.objects.get(table="tasks_note").last_ms

    def validate(self, attrs):
        apart("DELETE FROM tasks_task WHERE id = %s", [other.pk])  # checked, then deleted elsewhere
        return attrs

    monkeypatch.setattr(NoteViewSet._table().serializer_class, "validate", validate)
    response, trips = sent(lambda: v2.patch_json(f"/tables/Note/{pk}", {"taskId": other.pk}, HTTP_IF_MATCH=etag))
    assert response.status_code == 400, response.content
    assert "constraint" in response.content.decode()
    # the COMMIT went with the UPDATE, and failed there (the refusal ledger writes afterwards)
    update = next(trip for trip in trips if trip.startswith('UPDATE "tasks_note"'))
    assert update.endswith("; COMMIT"), trips
    stored = Note.all_objects.get(pk=pk)
    assert stored.body == "before" and stored.task_id == task.pk
    assert SyncClock.objects.get(table="tasks_note").last_ms == clock
    assert idle()



# -- where more than the row may be written ----------------------------------------------------


class _Audited(models.Model):
    """A mixin listed after SyncModel: its save() runs inside SyncModel.save's super().save()."""

    class Meta:
        abstract = True
        app_label = "tasks"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        from example_project.tasks.models import Note

        Note.objects.create(task_id=self.pk, body="audit of the write")
        if getattr(self, "fail_audit", False):
            raise RuntimeError("the audit fails after its write")


@pytest.fixture
def audited_task(monkeypatch):
    """Task as if declared ``class Task(SyncModel, _Audited)``: ``Task.save is SyncModel.save``."""
    from django_offline_sync.models import SyncModel

    bases = Task.__bases__
    Task.__bases__ = (SyncModel, _Audited)
    try:
        assert Task.save is SyncModel.save
        monkeypatch.setattr(Task, "fail_audit", True, raising=False)
        yield
    finally:
        Task.__bases__ = bases


def test_a_mixins_save_after_syncmodel_keeps_the_update_in_one_transaction(v2, row, audited_task):
    pk, etag = row
    with pytest.raises(RuntimeError):
        v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag)
    assert Task.all_objects.get(pk=pk).text == "before"
    assert idle()


def test_a_mixins_save_after_syncmodel_keeps_the_insert_in_one_transaction(v2, audited_task):
    from example_project.tasks.models import Note

    with pytest.raises(RuntimeError):
        v2.post_json("/tables/Task", {"id": "mixin-insert", "text": "x"})
    with pytest.raises(RuntimeError):
        Task.objects.create(id="mixin-orm", text="x")
    assert not Task.all_objects.filter(pk__in=["mixin-insert", "mixin-orm"]).exists()
    assert not Note.objects.exists()
    assert idle()


def test_with_autocommit_off_the_callers_transaction_decides(v2, row):
    """Manual transaction management: the write joins the caller's transaction (no COMMIT of
    its own, no autocommit insert), and the caller's rollback takes everything back."""
    pk, etag = row
    transaction.set_autocommit(False)
    try:
        Task.objects.create(id="callers-own", text="caller's write")
        updated = v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag)
        inserted = v2.post_json("/tables/Task", {"id": "manual-insert", "text": "x"})
        taken = v2.post_json("/tables/Task", {"id": pk, "text": "again"})
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert (updated.status_code, inserted.status_code, taken.status_code) == (200, 201, 409), taken.content
    assert not Task.all_objects.filter(pk__in=["callers-own", "manual-insert"]).exists()
    assert Task.all_objects.get(pk=pk).text == "before"
    assert idle()


def test_a_statement_after_the_carried_commit_is_refused(row):
    """Once the UPDATE carried the COMMIT, a statement would run in a transaction of its own:
    it is refused until the writer's block ends, instead of committing apart from the row."""
    from django.db.transaction import TransactionManagementError

    from django_offline_sync import rowsql
    from example_project.tasks.models import Note

    pk, _ = row
    task = Task.all_objects.get(pk=pk)
    try:
        with transaction.atomic():
            task.__dict__[rowsql.COMMIT_WITH_UPDATE] = "default"
            task.text = "carried"
            task.save()
            with pytest.raises(TransactionManagementError, match="after the COMMIT"):
                Note.objects.create(task=task, body="apart")
    finally:
        rowsql.end_of_write("default")
    assert Task.all_objects.get(pk=pk).text == "carried"
    assert not Note.objects.exists()
    Note.objects.create(task=task, body="allowed again")
    assert idle()



def test_a_models_own_save_keeps_the_inserts_transaction(v2, monkeypatch):
    from django_offline_sync.models import SyncModel

    def save(self, *args, **kwargs):
        SyncModel.save(self, *args, **kwargs)

    monkeypatch.setattr(Task, "save", save)
    response, trips = sent(lambda: v2.post_json("/tables/Task", {"id": "own-save", "text": "x"}))
    assert response.status_code == 201, response.content
    assert trips[0] == "BEGIN" and trips[-1] == "COMMIT", trips


def test_a_pre_save_receiver_keeps_the_updates_commit_apart(v2, row):
    from django.db.models.signals import pre_save

    def noop(sender, instance, **kwargs):
        pass

    pk, etag = row
    pre_save.connect(noop, sender=Task, dispatch_uid="round-trips-pre-save")
    try:
        response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    finally:
        pre_save.disconnect(sender=Task, dispatch_uid="round-trips-pre-save")
    assert response.status_code == 200
    assert len(trips) == 4 and trips[-1] == "COMMIT", trips


@pytest.mark.parametrize("hook", ["perform_destroy", "perform_undelete"])
def test_an_overridden_delete_or_undelete_hook_keeps_the_commit_apart(v2, row, monkeypatch, hook):
    from django_offline_sync.viewsets import SyncViewSet
    from example_project.tasks.views import TaskViewSet

    library = getattr(SyncViewSet, hook)

    def override(self, instance, stamp=None):
        library(self, instance, stamp)

    pk, etag = row
    if hook == "perform_undelete":
        assert v2.delete(f"/tables/Task/{pk}", HTTP_IF_MATCH=etag).status_code == 204
    monkeypatch.setattr(TaskViewSet, hook, override)
    request = v2.delete if hook == "perform_destroy" else v2.post
    response, trips = sent(lambda: request(f"/tables/Task/{pk}"))
    assert response.status_code in (200, 204), response.content
    assert len(trips) == 4 and trips[-1] == "COMMIT", trips


def test_a_serializer_that_overrides_update_keeps_the_commit_apart(v2, row, monkeypatch):
    from django_offline_sync.serializers import SyncModelSerializer
    from example_project.tasks.views import TaskViewSet

    def update(self, instance, validated_data):
        return SyncModelSerializer.update(self, instance, validated_data)

    monkeypatch.setattr(TaskViewSet._table().serializer_class, "update", update)
    pk, etag = row
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 200
    assert len(trips) == 4 and trips[-1] == "COMMIT", trips


@pytest.fixture
def audited_proxy():
    """A proxy of Task with its own save(), registered for this test only (a model of the
    tasks app at module level would be a migration makemigrations finds missing)."""
    from django.apps import apps

    from example_project.tasks.models import Note

    def save(self, *args, **kwargs):
        super(proxy, self).save(*args, **kwargs)
        Note.objects.create(task_id=self.pk, body="audit")

    meta = type("Meta", (), {"proxy": True, "app_label": "tasks"})
    proxy = type("AuditedTask", (Task,), {"__module__": __name__, "Meta": meta, "save": save})
    try:
        yield proxy
    finally:
        del apps.all_models["tasks"]["auditedtask"]
        apps.clear_cache()


def test_a_proxy_rows_own_save_keeps_the_commit_apart(v2, row, monkeypatch, audited_proxy):
    """The save hooks that run are those of the loaded row's class, not the view's model's."""
    from example_project.tasks.models import Note
    from example_project.tasks.views import TaskViewSet

    monkeypatch.setattr(TaskViewSet, "queryset", audited_proxy.all_objects.all(), raising=False)
    pk, etag = row
    response, trips = sent(lambda: v2.patch_json(f"/tables/Task/{pk}", {"text": "after"}, HTTP_IF_MATCH=etag))
    assert response.status_code == 200, response.content
    assert not any(trip.endswith("; COMMIT") for trip in trips), trips
    assert Task.all_objects.get(pk=pk).text == "after"
    assert Note.objects.filter(task_id=pk, body="audit").count() == 1
    assert idle()
