"""``import_sync_table`` against a hostile old server: crafted pages from a fake one on 127.0.0.1."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import QuerySet

from django_offline_sync import stamping
from django_offline_sync.models import SyncClock
from example_project.tasks.models import Task

pytestmark = [pytest.mark.django_db]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("autocommit", [True, False])
def test_a_clock_at_the_end_of_time_refuses_writes_clearly(autocommit):
    # Only a clock row moved there by hand gets here now: writes fail with a message saying what
    # to fix, before anything is written (PostgreSQL's one-statement insert too, in autocommit).
    first = Task.objects.create(text="a")
    QuerySet(SyncClock).filter(table=Task._meta.db_table).update(last_ms=stamping.MAX_MS)
    exhausted = r"'tasks_task' is at 253402300800000 ms, past 9999-12-31T23:59:59\.999Z"
    if autocommit:
        with pytest.raises(stamping.ClockExhausted, match=exhausted):
            Task.objects.create(text="b")
    else:
        first.text = "changed"
        with pytest.raises(stamping.ClockExhausted, match=exhausted), transaction.atomic():
            first.save()
    assert list(Task.all_objects.values_list("text", flat=True)) == ["a"]
    assert SyncClock.objects.get(table=Task._meta.db_table).last_ms == stamping.MAX_MS
