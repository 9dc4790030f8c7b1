"""``purge_tombstones`` while devices write and pull, on PostgreSQL, with threads.

Writers insert, update, delete and undelete rows through the ORM; devices (the Python client
over HTTP against a live server) pull incrementally the whole time; the purge runs in small
batches meanwhile. Afterwards:

* no live row was lost, and no tombstone younger than the retention;
* every old tombstone nobody revived is gone;
* every device, after one more pull, holds exactly the server's live rows: the horizon made
  those whose token predated a purge start afresh.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.utils import timezone

from django_offline_sync.client import SyncClient
from django_offline_sync.models import SyncHorizon
from django_offline_sync.retention import purge_tombstones
from django_offline_sync.wire import truncate_ms
from example_project.tasks.models import Task

pytestmark = [pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]

RETENTION = dt.timedelta(days=30)
SECONDS = 4.0


def _old(pks, days: int) -> None:
    """Backdate rows ``days``, one millisecond apart: the clock never gives two rows one stamp."""
    start = truncate_ms(timezone.now() - dt.timedelta(days=days))
    for offset, pk in enumerate(pks):
        QuerySet(Task).filter(pk=pk).update(updated_at=start + dt.timedelta(milliseconds=offset))


@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_purge_under_concurrent_writers_and_pullers(live_server, tmp_path, generation):
    old_live = [Task.objects.create(text=f"old live {i}") for i in range(60)]
    old_dead = [Task.objects.create(text=f"old dead {i}") for i in range(240)]
    mixed = [t.pk for t in old_live + old_dead]
    random.Random(7).shuffle(mixed)  # live rows between the tombstones, as in a real table
    _old(mixed, 50)

    stop, final, go = threading.Event(), threading.Event(), threading.Event()
    ready = threading.Barrier(3)  # the two devices and the test: all pulled once before anything runs
    holdings: dict[int, set[str]] = {}
    errors: list[BaseException] = []
    revived: set[str] = set()  # old tombstones a writer undeleted before the purge reached them
    young_dead: set[str] = set()
    created: set[str] = set()
    lock = threading.Lock()
    purged = 0
    resyncs = 0

    def guarded(work):
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)
                stop.set()
            finally:
                connections.close_all()

        return run

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        dead_pool = [t.pk for t in old_dead]
        while not stop.is_set():
            choice = rng.random()
            if choice < 0.4:
                task = Task.objects.create(text="new")
                with lock:
                    created.add(task.pk)
            elif choice < 0.7:
                with lock:
                    candidates = sorted(created - young_dead)
                if candidates:
                    pk = rng.choice(candidates)
                    Task.all_objects.get(pk=pk).delete()  # the other writer may have deleted it
                    with lock:
                        young_dead.add(pk)
            else:
                pk = rng.choice(dead_pool)
                task = Task.all_objects.filter(pk=pk).first()
                if task is None or not task.deleted:
                    continue
                try:
                    task.undelete()  # races the purge: either it is revived or it was purged
                except DatabaseError:  # "did not affect any rows": the purge got there first
                    continue
                with lock:
                    revived.add(pk)

    def puller(number: int) -> None:
        # A client's store belongs to the thread that opened it.
        nonlocal resyncs
        with SyncClient(live_server.url, tmp_path / f"d{number}.db", generation=generation, timeout=20) as device:
            device.pull("Task")  # holds every old row, with a token 50 days old
            ready.wait(300)
            go.wait(300)
            if number == 1:  # this one starts once the purge has committed a horizon; the other races it
                deadline = time.monotonic() + 300
                while not SyncHorizon.objects.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
            while not stop.is_set():
                if device.pull("Task").resynced_from is not None:
                    with lock:
                        resyncs += 1
            final.wait(300)
            device.pull("Task")
            holdings[number] = {row["id"] for row in device.table("Task").query()}

    def purger() -> None:
        nonlocal purged
        while not stop.is_set():
            purged += purge_tombstones(Task, RETENTION, batch_size=7).purged
            time.sleep(0.05)

    pullers = [threading.Thread(target=guarded(lambda n=n: puller(n))) for n in range(2)]
    for thread in pullers:
        thread.start()
    ready.wait(300)
    # While the devices were offline, 240 of their rows were deleted 35 days ago.
    for task in old_dead:
        task.delete()
    _old([t.pk for t in old_dead], 35)
    go.set()
    threads = [threading.Thread(target=guarded(lambda s=s: writer(s))) for s in range(2)]
    threads.append(threading.Thread(target=guarded(purger)))
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(300)
    purged += purge_tombstones(Task, RETENTION).purged
    final.set()
    for thread in pullers:
        thread.join(300)
    assert not errors, errors

    rows = dict(Task.all_objects.values_list("pk", "deleted"))
    # No live row lost: the old ones, the revived ones, every new one not deleted since.
    for pk in [t.pk for t in old_live] + sorted(revived) + sorted(created - young_dead):
        assert rows.get(pk) is False, pk
    # No young tombstone lost.
    for pk in young_dead:
        assert rows.get(pk) is True, pk
    # Every old tombstone nobody revived is gone, and it was this purge that removed them.
    assert not ({t.pk for t in old_dead} - revived) & set(rows)
    assert purged == len(old_dead) - len(revived)

    live = {pk for pk, deleted in rows.items() if not deleted}
    for number, held in holdings.items():
        extra, missing = held - live, live - held
        assert not extra and not missing, (number, resyncs, [(pk, rows.get(pk), pk in revived) for pk in extra],
            [(pk in revived, pk in created, pk in {t.pk for t in old_live}) for pk in missing])
    assert len(holdings) == 2
    assert resyncs >= 1  # the devices held a 50-day-old token when the purge began


@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_a_tombstone_purged_while_its_id_is_inserted_again_is_a_new_row(generation):
    # A device pushes a new row under the id of an old tombstone just as the purge removes
    # it: the INSERT is refused by the tombstone, which is gone when the writer looks for
    # the row that refused it. The id is free again: 201, not a 400 "violates a constraint".
    from django.db import IntegrityError, connection

    from tests.conftest import ZumoClient

    Task.objects.create(id="reused", text="old").delete()
    _old(["reused"], 50)
    purged: list[int] = []

    def purge() -> None:
        try:
            purged.append(purge_tombstones(Task, RETENTION).purged)
        finally:
            connections.close_all()

    def purge_then_refuse(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except IntegrityError:
            if not purged:  # the purge commits between the refusal and the lookup
                thread = threading.Thread(target=purge)
                thread.start()
                thread.join()
            raise

    with connection.execute_wrapper(purge_then_refuse):
        response = ZumoClient(generation).post_json("/tables/Task", {"id": "reused", "text": "new"})
    assert purged == [1]
    assert response.status_code == 201, response.content
    row = Task.all_objects.get(pk="reused")
    assert (row.text, row.deleted) == ("new", False)
    assert response.json()["text"] == "new"
