"""``migrate`` stamps rows that predate a table's system columns (the ``post_migrate`` step).

The full path (``startproject``, ``makemigrations``, ``migrate``, a live server, a device
pulling) is ``test_adoption_e2e.py``; this checks the step in-process on the suite's database.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection

from django_offline_sync.adoption import stamp_unstamped_rows, unstamped_rows
from tests.factories import ItemFactory, TaskFactory
from tests.models import Item

pytestmark = pytest.mark.django_db


def unstamp(*items: Any) -> None:
    """Leave rows as ``AddField`` (or raw SQL, or ``loaddata``) would: no stamp at all."""
    table = connection.ops.quote_name(type(items[0])._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET updated_at = NULL, created_at = NULL, version = 0 WHERE id IN "
            f"({', '.join(['%s'] * len(items))})",
            [item.pk for item in items],
        )


def test_post_migrate_stamps_every_unstamped_row_and_says_so():
    old = ItemFactory.create_batch(4)
    fresh = ItemFactory()
    unstamp(*old)
    assert unstamped_rows() == [(Item, 4)]
    before = Item.all_objects.get(pk=fresh.pk).updated_at
    out = StringIO()
    emit_post_migrate_signal(1, False, "default", stdout=out)
    assert "Stamped 4 existing row(s) of tests.Item for sync." in out.getvalue()
    rows = list(Item.all_objects.order_by("pk"))
    assert all((row.updated_at and row.created_at == row.updated_at) or row.pk == fresh.pk for row in rows)
    stamps = [row.updated_at for row in rows if row.pk != fresh.pk]
    assert len(set(stamps)) == 4 and min(stamps) > before  # distinct, after every earlier write
    assert all(row.version for row in rows)
    assert Item.all_objects.get(pk=fresh.pk).updated_at == before  # stamped rows are left alone
    assert unstamped_rows() == []


def test_post_migrate_is_quiet_and_does_nothing_when_every_row_is_stamped():
    ItemFactory.create_batch(2)
    versions = dict(Item.all_objects.values_list("pk", "version"))
    out = StringIO()
    emit_post_migrate_signal(1, False, "default", stdout=out)
    assert "Stamped" not in out.getvalue()
    assert dict(Item.all_objects.values_list("pk", "version")) == versions
    assert stamp_unstamped_rows() == []


def test_stamped_rows_are_pulled_after_a_device_s_last_token(v3):
    row = TaskFactory()
    token = v3.get("/tables/Task").json()["items"][0]["updatedAt"]
    unstamp(row)
    since = {"$filter": f"updatedAt gt cast({token},Edm.DateTimeOffset)", "__includedeleted": "true"}
    assert v3.get("/tables/Task", since).json()["items"] == []  # what devices saw: nothing
    emit_post_migrate_signal(0, False, "default")
    assert [item["id"] for item in v3.get("/tables/Task", since).json()["items"]] == [row.pk]
