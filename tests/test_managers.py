"""The three managers and ``SyncQuerySet``: bulk writes stamp every row they touch."""

from __future__ import annotations

import pytest
from django.db import models
from django.test import override_settings

from django_offline_sync import managers, stamping
from django_offline_sync.managers import SyncQuerySet
from tests.factories import ItemFactory, TaskFactory
from tests.models import Item

pytestmark = pytest.mark.django_db


def stamps(qs):
    return list(qs.order_by("pk").values_list("pk", "updated_at", "version"))


@pytest.fixture
def rows():
    live = ItemFactory.create_batch(3)
    gone = ItemFactory.create_batch(2)
    for item in gone:
        item.delete()
    return live, gone


def test_objects_hides_deleted_rows_when_queried(rows):
    live, gone = rows
    assert set(Item.objects.values_list("pk", flat=True)) == {i.pk for i in live}


def test_all_objects_includes_deleted_rows_when_queried(rows):
    live, gone = rows
    assert Item.all_objects.count() == 5


def test_deleted_objects_holds_only_deleted_rows_when_queried(rows):
    live, gone = rows
    assert set(Item.deleted_objects.values_list("pk", flat=True)) == {i.pk for i in gone}


def test_every_manager_returns_a_sync_queryset():
    for manager in (Item.objects, Item.all_objects, Item.deleted_objects):
        assert isinstance(manager.all(), SyncQuerySet)


def test_update_bumps_every_row_with_distinct_increasing_stamps_when_called(monkeypatch):
    items = ItemFactory.create_batch(4)
    before = {pk: (u, v) for pk, u, v in stamps(Item.objects.all())}
    # Same millisecond for the whole batch: the clock must still hand out distinct stamps.
    monkeypatch.setattr(stamping, "now_ms", lambda: stamping.datetime_to_ms(max(u for u, _ in before.values())))
    assert Item.objects.update(name="bulk") == 4
    after = stamps(Item.objects.all())
    assert set(Item.objects.values_list("name", flat=True)) == {"bulk"}
    updated = [u for _, u, _ in after]
    versions = [v for _, _, v in after]
    assert len(set(updated)) == 4 and len(set(versions)) == 4
    for pk, u, v in after:
        assert u > max(b for b, _ in before.values())
        assert v != before[pk][1]
        assert u.microsecond % 1000 == 0
    assert len(items) == 4


def test_update_stamps_only_the_filtered_rows_when_called():
    a, b = ItemFactory(count=1), ItemFactory(count=2)
    b_before = stamps(Item.objects.filter(pk=b.pk))
    assert Item.objects.filter(pk=a.pk).update(count=10) == 1
    assert stamps(Item.objects.filter(pk=b.pk)) == b_before
    assert Item.objects.get(pk=a.pk).version != a.version


def test_update_returns_zero_when_no_row_matches():
    assert Item.objects.filter(pk="missing").update(name="x") == 0


def test_update_stamps_rows_across_chunks_when_many_rows_match(monkeypatch):
    monkeypatch.setattr(managers, "STAMP_CHUNK", 3)
    ItemFactory.create_batch(7)
    assert Item.objects.update(flag=True) == 7
    after = stamps(Item.objects.all())
    assert len({u for _, u, _ in after}) == 7
    assert len({v for _, _, v in after}) == 7
    assert Item.objects.filter(flag=True).count() == 7


@override_settings(OFFLINE_SYNC={"STAMPING": "now"})
def test_update_in_now_mode_gives_every_row_one_new_stamp():
    items = ItemFactory.create_batch(3)
    assert Item.objects.update(name="now") == 3
    after = stamps(Item.objects.all())
    assert len({v for _, _, v in after}) == 1
    assert all(v != i.version for i, (_, _, v) in zip(sorted(items, key=lambda i: i.pk), after))


def test_delete_soft_deletes_and_returns_the_count_tuple_when_called(rows):
    live, gone = rows
    before = {pk: v for pk, _, v in stamps(Item.all_objects.all())}
    result = Item.all_objects.all().delete()
    # Already-deleted rows are not counted or restamped.
    assert result == (3, {"tests.Item": 3})
    assert Item.all_objects.count() == 5
    assert Item.objects.count() == 0
    for pk, _, v in stamps(Item.all_objects.all()):
        if pk in {i.pk for i in live}:
            assert v != before[pk]
        else:
            assert v == before[pk]


def test_delete_returns_zero_when_nothing_matches():
    assert Item.objects.filter(pk="missing").delete() == (0, {"tests.Item": 0})


def test_hard_delete_removes_the_rows_when_called(rows):
    count, per_model = Item.all_objects.filter(deleted=True).hard_delete()
    assert count == 2 and per_model == {"tests.Item": 2}
    assert Item.all_objects.count() == 3


def test_hard_delete_cascades_when_the_rows_have_children():
    task = TaskFactory()
    task.notes.create(body="a")
    count, per_model = type(task).objects.all().hard_delete()
    assert per_model == {"tasks.Task": 1, "tasks.Note": 1} and count == 2


def test_undelete_restores_deleted_rows_and_bumps_them_when_called(rows):
    live, gone = rows
    before = {pk: v for pk, _, v in stamps(Item.deleted_objects.all())}
    assert Item.all_objects.undelete() == 2
    assert Item.objects.count() == 5
    for pk, _, v in stamps(Item.objects.filter(pk__in=before)):
        assert v != before[pk]


def test_bulk_create_generates_ids_and_stamps_each_row():
    created = Item.objects.bulk_create([Item(name=str(n)) for n in range(5)])
    assert len({i.pk for i in created}) == 5
    stored = stamps(Item.objects.all())
    assert len(stored) == 5
    assert len({u for _, u, _ in stored}) == 5
    assert len({v for _, _, v in stored}) == 5
    for item in Item.objects.all():
        assert item.created_at == item.updated_at
        assert len(item.pk) == 32


def test_bulk_create_returns_an_empty_list_when_given_nothing():
    assert Item.objects.bulk_create([]) == []


def test_changed_since_returns_everything_in_pull_order_when_no_cursor():
    items = ItemFactory.create_batch(3)
    items[0].save()
    result = list(Item.objects.changed_since(None))
    assert [i.pk for i in result] == [items[1].pk, items[2].pk, items[0].pk]


def test_changed_since_returns_rows_after_the_timestamp_when_no_pk():
    items = ItemFactory.create_batch(3)
    result = list(Item.objects.changed_since(items[0].updated_at))
    assert [i.pk for i in result] == [items[1].pk, items[2].pk]


def test_changed_since_breaks_ties_by_pk_when_a_cursor_pk_is_given():
    # "now" mode can give several rows one timestamp; the keyset cursor tells them apart.
    stamp = stamping.ms_to_datetime(1_700_000_000_000)
    Item.objects.bulk_create([Item(id=f"row{n}") for n in range(4)])
    # A plain QuerySet.update writes the tie without stamping.
    models.QuerySet.update(Item.all_objects.filter(pk__in=["row1", "row2", "row3"]), updated_at=stamp)
    result = [i.pk for i in Item.objects.changed_since(stamp, "row1")]
    assert result == ["row2", "row3", "row0"]


def test_changed_since_includes_tombstones_when_called_on_all_objects():
    item = ItemFactory()
    cursor = item.updated_at
    item.delete()
    assert [i.pk for i in Item.all_objects.changed_since(cursor)] == [item.pk]
    assert list(Item.objects.changed_since(cursor)) == []
