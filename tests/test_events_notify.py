"""On PostgreSQL a write's change event is queued by the statement that takes its stamp.

The notification goes out with the write's transaction: PostgreSQL delivers it when that
commits and drops it when it rolls back, and no statement of its own follows the commit.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg.conninfo import make_conninfo

from django_offline_sync import stamping
from django_offline_sync.events import _CONNINFO_KEYS, CHANNEL
from django_offline_sync.wire import datetime_to_ms
from example_project.tasks.models import Task

pytestmark = [pytest.mark.requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def listener():
    params = connection.get_connection_params()
    conninfo = make_conninfo("", **{k: v for k, v in params.items() if k in _CONNINFO_KEYS and v is not None})
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


def _received(conn: psycopg.Connection) -> list[str]:
    return [note.payload for note in conn.notifies(timeout=0.5)]


def _key() -> str:
    return stamping.clock_key(Task)


def test_an_insert_and_an_update_announce_their_stamps_without_a_statement_after_the_commit(v2, listener):
    item_id = str(uuid.uuid4())
    with CaptureQueriesContext(connection) as queries:
        created = v2.post_json("/tables/Task", {"id": item_id, "text": "a"})
    assert created.status_code == 201, created.content
    assert not [q for q in queries.captured_queries if q["sql"].startswith("SELECT pg_notify")]
    row = Task.all_objects.get(pk=item_id)
    assert _received(listener) == [f"{_key()} {datetime_to_ms(row.updated_at)}"]

    updated = v2.patch_json(f"/tables/Task/{item_id}", {"text": "b"}, HTTP_IF_MATCH=created["ETag"])
    assert updated.status_code == 200, updated.content
    row.refresh_from_db()
    assert _received(listener) == [f"{_key()} {datetime_to_ms(row.updated_at)}"]


def test_a_write_that_rolls_back_announces_nothing(v2, listener):
    item_id = str(uuid.uuid4())
    assert v2.post_json("/tables/Task", {"id": item_id, "text": "a"}).status_code == 201
    _received(listener)
    # A stale If-Match: the stamp is taken (the lock), then the precondition fails and the
    # transaction rolls back, its notification with it.
    stale = v2.patch_json(f"/tables/Task/{item_id}", {"text": "b"}, HTTP_IF_MATCH='"AAAAAAAAAAE="')
    assert stale.status_code == 412, stale.content
    assert _received(listener) == []


def test_without_events_no_notification_is_queued(v2, listener, settings):
    settings.OFFLINE_SYNC = {**getattr(settings, "OFFLINE_SYNC", {}), "EVENTS": False}
    assert v2.post_json("/tables/Task", {"id": str(uuid.uuid4()), "text": "a"}).status_code == 201
    Task.objects.create(text="saved outside the endpoints")
    assert _received(listener) == []


def test_a_save_outside_the_endpoints_is_announced_too(listener):
    task = Task.objects.create(text="from the admin or a shell")
    assert _received(listener) == [f"{_key()} {datetime_to_ms(task.updated_at)}"]


def test_with_now_stamping_the_receiver_still_sends_it_after_the_commit(v2, listener, settings):
    settings.OFFLINE_SYNC = {**getattr(settings, "OFFLINE_SYNC", {}), "STAMPING": "now"}
    item_id = str(uuid.uuid4())
    assert v2.post_json("/tables/Task", {"id": item_id, "text": "a"}).status_code == 201
    row = Task.all_objects.get(pk=item_id)
    assert _received(listener) == [f"{_key()} {datetime_to_ms(row.updated_at)}"]


def test_notify_in_write_off_sends_it_after_the_commit_in_a_statement_of_its_own(v2, listener, settings):
    settings.OFFLINE_SYNC = {**getattr(settings, "OFFLINE_SYNC", {}), "EVENTS_NOTIFY_IN_WRITE": False}
    item_id = str(uuid.uuid4())
    with CaptureQueriesContext(connection) as queries:
        assert v2.post_json("/tables/Task", {"id": item_id, "text": "a"}).status_code == 201
    sent = [q["sql"] for q in queries.captured_queries if "pg_notify" in q["sql"]]
    assert len(sent) == 1 and sent[0].startswith("SELECT pg_notify"), sent
    row = Task.all_objects.get(pk=item_id)
    assert _received(listener) == [f"{_key()} {datetime_to_ms(row.updated_at)}"]
    # A stale If-Match rolls back: nothing was committed, so nothing is sent.
    stale = v2.patch_json(f"/tables/Task/{item_id}", {"text": "b"}, HTTP_IF_MATCH='"AAAAAAAAAAE="')
    assert stale.status_code == 412, stale.content
    assert _received(listener) == []
