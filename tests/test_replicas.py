"""ReplicaRouter's decisions, the READ_DATABASES setting and its checks (any database).

The router against a real streaming replica, over HTTP, is in ``tests/replica/``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings

from django_offline_sync import checks
from django_offline_sync.replicas import ReplicaRouter
from example_project.database import replicas_from_env
from example_project.tasks.models import Inspection, Task

ROUTER = "django_offline_sync.replicas.ReplicaRouter"
TWO = {"READ_DATABASES": ["replica1", "replica2"]}


def new_request() -> None:
    # As Django's test client does: the signals without close_old_connections.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        request_finished.send(sender=None)
        request_started.send(sender=None)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@override_settings(OFFLINE_SYNC=TWO)
def test_sync_table_reads_go_to_one_replica_per_request():
    router = ReplicaRouter()
    seen = set()
    for _ in range(60):
        new_request()
        first = router.db_for_read(Task)
        assert first in ("replica1", "replica2")
        # A page, its count and every other sync-table read of the request: one replica.
        assert {router.db_for_read(Task) for _ in range(5)} | {router.db_for_read(Inspection)} == {first}
        seen.add(first)
    assert seen == {"replica1", "replica2"}


@override_settings(OFFLINE_SYNC=TWO)
def test_writes_and_other_apps_tables_go_to_the_primary():
    router = ReplicaRouter()
    assert router.db_for_write(Task) == "default"
    # Not None: Django would fall back to the database the instance was read from.
    assert router.db_for_write(Task, instance=Task(text="x")) == "default"
    assert router.db_for_read(User) is None  # authentication reads the primary
    assert router.db_for_write(User) is None


def test_without_replicas_everything_reads_the_primary():
    assert ReplicaRouter().db_for_read(Task) == "default"


@pytest.mark.django_db(transaction=True)
@override_settings(OFFLINE_SYNC=TWO)
def test_reads_inside_a_primary_transaction_stay_on_the_primary():
    router = ReplicaRouter()
    with transaction.atomic():
        assert router.db_for_read(Task) == "default"
    assert router.db_for_read(Task) in ("replica1", "replica2")


@override_settings(OFFLINE_SYNC=TWO)
def test_replicas_are_never_migrated_and_may_relate_to_primary_rows():
    router = ReplicaRouter()
    assert router.allow_migrate("replica1", "tasks", "task") is False
    assert router.allow_migrate("default", "tasks", "task") is None
    a, b = Task(text="a"), Task(text="b")
    a._state.db, b._state.db = "replica2", "default"
    assert router.allow_relation(a, b) is True
    b._state.db = "elsewhere"
    assert router.allow_relation(a, b) is None


@pytest.mark.django_db(transaction=True)
@override_settings(DATABASE_ROUTERS=[ROUTER], OFFLINE_SYNC={"READ_DATABASES": ["no-such-replica"]})
def test_bulk_writes_and_their_clock_use_the_primary():
    """``update()`` and ``bulk_create()`` choose the write database, not the read router's.

    The replica alias does not exist: any statement sent to it would raise.
    """
    Task.all_objects.bulk_create([Task(text="a"), Task(text="b")])
    assert Task.all_objects.using("default").filter(text="a").update(priority=3) == 1
    assert Task.all_objects.using("default").filter(text__in=["a", "b"]).delete()[0] == 2
    obj = Task.all_objects.using("default").get(text="a")
    obj.undelete()
    assert Task.all_objects.using("default").get(pk=obj.pk).deleted is False


@pytest.mark.django_db(transaction=True)
@override_settings(DATABASE_ROUTERS=[ROUTER], OFFLINE_SYNC={"READ_DATABASES": ["no-such-replica"]})
def test_a_row_read_from_a_replica_is_saved_to_the_primary():
    task = Task(text="x")
    task.save()
    task._state.db = "no-such-replica"  # as if loaded from the replica
    task.text = "y"
    task.save()
    assert Task.all_objects.using("default").get(pk=task.pk).text == "y"


# -- READ_DATABASES (its checks are in test_checks.py) ----------------------------------------


@pytest.mark.parametrize("value", ["replica1", [1], [""], None])
def test_e002_when_read_databases_is_not_a_list_of_aliases(value):
    with override_settings(OFFLINE_SYNC={"READ_DATABASES": value}):
        assert [m.id for m in checks.check_settings()] == ["offline_sync.E002"]



# -- the example site's REPLICA_DATABASE_URL -----------------------------------------------------


def test_replica_urls_are_split_on_spaces_and_commas_into_test_mirrors():
    replicas = replicas_from_env("postgres://u@h1:5433/db, postgres://u@h2:5434/db  postgres://u@h3/db")
    assert list(replicas) == ["replica1", "replica2", "replica3"]
    assert replicas["replica2"]["HOST"] == "h2" and replicas["replica2"]["PORT"] == 5434
    assert all(r["TEST"] == {"MIRROR": "default"} for r in replicas.values())
    assert replicas_from_env("  ") == {}


def test_a_replica_url_that_is_not_postgresql_is_refused():
    with pytest.raises(ValueError, match="replica 1 is not a PostgreSQL URL"):
        replicas_from_env("sqlite:///x.db")
