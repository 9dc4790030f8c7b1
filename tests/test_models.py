"""SyncModel: ids, the system fields' stamps, soft delete and the two stamping modes."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from django_offline_sync import stamping
from django_offline_sync.exceptions import InvalidId
from django_offline_sync.models import (
    ID_MAX_LENGTH,
    SyncClock,
    check_id,
    decode_version,
    encode_version,
    generate_id,
    validate_sync_id,
)
from example_project.tasks.models import Task
from tests.factories import ItemFactory, TaskFactory
from tests.models import Item

pytestmark = pytest.mark.django_db

HEX32 = re.compile(r"^[0-9a-f]{32}$")

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("x" * (ID_MAX_LENGTH + 1), id="too-long"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x1fb", id="unit-separator"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param('a"b', id="double-quote"),
    pytest.param("a+b", id="plus"),
    pytest.param("a?b", id="question-mark"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a/b", id="slash"),
    pytest.param("a`b", id="backtick"),
]

GOOD_IDS = ["a", "x" * ID_MAX_LENGTH, "ABC-123_x.y|z:w", "...", ".a", "a b", "café", "a'b", "a#b", "a%b"]


def assert_ms_utc(value: dt.datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == dt.timedelta(0)
    assert value.microsecond % 1000 == 0


# -- ids ------------------------------------------------------------------------------------


def test_generate_id_is_32_lowercase_hex_when_called():
    ids = {generate_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(HEX32.match(i) for i in ids)


def test_id_is_generated_when_a_row_is_created_without_one():
    item = Item.objects.create(name="x")
    assert HEX32.match(item.pk)
    assert Item.objects.get(pk=item.pk).name == "x"


def test_id_is_kept_when_the_client_supplies_one():
    Item.objects.create(id="client-id-1", name="x")
    assert Item.objects.get().pk == "client-id-1"


@pytest.mark.parametrize("value", BAD_IDS)
def test_check_id_raises_when_the_id_breaks_a_rule(value):
    with pytest.raises(InvalidId):
        check_id(value)


@pytest.mark.parametrize("value", BAD_IDS)
def test_validate_sync_id_raises_validation_error_when_the_id_breaks_a_rule(value):
    with pytest.raises(ValidationError) as info:
        validate_sync_id(value)
    assert info.value.code == "invalid_id"


@pytest.mark.parametrize("value", [None, 12, b"abc"])
def test_check_id_raises_when_the_id_is_not_a_string(value):
    with pytest.raises(InvalidId):
        check_id(value)


@pytest.mark.parametrize("value", GOOD_IDS)
def test_check_id_returns_the_id_when_it_is_valid(value):
    assert check_id(value) == value
    validate_sync_id(value)


def test_full_clean_rejects_a_bad_id_when_validating_a_model():
    with pytest.raises(ValidationError) as info:
        Item(id="a/b").full_clean()
    assert "id" in info.value.message_dict


# -- version encoding ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 10_022, 2**62, -1, -(2**63)])
def test_encode_version_round_trips_when_decoded(value):
    encoded = encode_version(value)
    assert len(encoded) == 12 and encoded.endswith("=")
    assert decode_version(encoded) == value


def test_encode_version_returns_none_when_version_is_none():
    assert encode_version(None) is None


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63), 1_700_000_000_123])
def test_encode_version_is_base64_of_the_8_big_endian_bytes(value):
    assert encode_version(value) == base64.b64encode(value.to_bytes(8, "big", signed=True)).decode("ascii")


def test_encode_version_takes_an_integral_float_or_decimal_and_refuses_what_8_bytes_cannot_hold():
    assert encode_version(7.0) == encode_version(decimal.Decimal(7)) == encode_version(7)
    with pytest.raises(OverflowError):
        encode_version(2**63)


@pytest.mark.parametrize("value", ["", "AAAA", "not base64!", "AAAAAAAAAAAAAAAAAAAAAA=="])
def test_decode_version_raises_when_the_value_is_not_8_bytes_of_base64(value):
    with pytest.raises(ValueError):
        decode_version(value)


def test_etag_version_is_the_encoded_version_when_read():
    item = ItemFactory()
    assert item.etag_version == encode_version(item.version)


# -- timestamps and versions ----------------------------------------------------------------


def test_timestamps_are_utc_with_millisecond_precision_when_created():
    item = ItemFactory()
    assert_ms_utc(item.created_at)
    assert_ms_utc(item.updated_at)
    assert item.created_at == item.updated_at
    stored = Item.objects.get(pk=item.pk)
    assert_ms_utc(stored.created_at)
    assert_ms_utc(stored.updated_at)
    assert stored.updated_at == item.updated_at


def test_created_at_is_kept_when_the_row_is_saved_again():
    item = ItemFactory()
    created = item.created_at
    item.name = "changed"
    item.save()
    item.refresh_from_db()
    assert item.created_at == created
    assert item.updated_at > created


def test_version_changes_when_the_row_is_saved():
    item = ItemFactory()
    versions = {item.version}
    for n in range(5):
        item.count = n
        item.save()
        versions.add(item.version)
        assert Item.objects.get(pk=item.pk).version == item.version
    assert len(versions) == 6


def test_stamps_are_distinct_and_increasing_when_saves_fall_in_the_same_millisecond(monkeypatch):
    monkeypatch.setattr(stamping, "now_ms", lambda: 1_700_000_000_000)
    item = ItemFactory()
    seen = [(item.updated_at, item.version)]
    for _ in range(3):
        item.save()
        seen.append((item.updated_at, item.version))
    other = ItemFactory()
    seen.append((other.updated_at, other.version))
    times = [t for t, _ in seen]
    versions = [v for _, v in seen]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len(set(versions)) == len(versions)
    assert all(t.microsecond % 1000 == 0 for t in times)


def test_clock_moves_ahead_of_the_wall_clock_when_it_went_backwards(monkeypatch):
    item = ItemFactory()
    first = item.updated_at
    monkeypatch.setattr(stamping, "now_ms", lambda: stamping.datetime_to_ms(first) - 60_000)
    item.save()
    assert item.updated_at > first


def test_clock_row_is_keyed_by_db_table_when_a_row_is_written():
    item = ItemFactory()
    clock = SyncClock.objects.get(table=Item._meta.db_table)
    assert clock.last_ms == stamping.datetime_to_ms(item.updated_at)
    assert str(clock) == f"{Item._meta.db_table}: {clock.last_ms}"


def test_save_with_update_fields_writes_updated_at_and_version_too():
    item = ItemFactory(name="before")
    old_updated, old_version = item.updated_at, item.version
    item.name = "after"
    item.save(update_fields=["name"])
    stored = Item.objects.get(pk=item.pk)
    assert stored.name == "after"
    assert stored.updated_at == item.updated_at > old_updated
    assert stored.version == item.version != old_version


def test_save_with_update_fields_leaves_other_columns_alone():
    item = ItemFactory(name="before", count=1)
    Item.objects.filter(pk=item.pk).update(count=2)
    item.name = "after"
    item.save(update_fields=["name"])
    assert Item.objects.get(pk=item.pk).count == 2


# -- delete, hard delete, undelete -------------------------------------------------------------


def test_delete_marks_the_row_deleted_and_bumps_stamps_when_called():
    item = ItemFactory()
    old_updated, old_version = item.updated_at, item.version
    result = item.delete()
    assert result == (1, {"tests.Item": 1})
    stored = Item.all_objects.get(pk=item.pk)
    assert stored.deleted is True
    assert stored.updated_at > old_updated
    assert stored.version != old_version
    assert not Item.objects.filter(pk=item.pk).exists()


def test_delete_returns_zero_when_the_row_is_already_deleted():
    item = ItemFactory()
    item.delete()
    stamp = Item.all_objects.get(pk=item.pk).version
    assert item.delete() == (0, {"tests.Item": 0})
    assert Item.all_objects.get(pk=item.pk).version == stamp


def test_hard_delete_removes_the_row_when_called():
    item = ItemFactory()
    result = item.hard_delete()
    assert result == (1, {"tests.Item": 1})
    assert not Item.all_objects.filter(pk=item.pk).exists()


def test_hard_delete_cascades_to_related_rows_when_called():
    task = TaskFactory()
    task.notes.create(body="x")
    count, per_model = task.hard_delete()
    assert count == 2
    assert per_model == {"tasks.Task": 1, "tasks.Note": 1}


def test_soft_delete_leaves_related_rows_alone_when_called():
    task = TaskFactory()
    note = task.notes.create(body="x")
    task.delete()
    assert type(note).objects.filter(pk=note.pk).exists()


def test_undelete_restores_and_bumps_stamps_when_called():
    item = ItemFactory()
    item.delete()
    deleted_version, deleted_at = item.version, item.updated_at
    item.undelete()
    stored = Item.objects.get(pk=item.pk)
    assert stored.deleted is False
    assert stored.version != deleted_version
    assert stored.updated_at > deleted_at


def test_restore_is_an_alias_of_undelete():
    assert Task.restore is Task.undelete


def test_factory_trait_creates_a_deleted_row_when_asked():
    task = TaskFactory(deleted_row=True)
    assert Task.deleted_objects.filter(pk=task.pk).exists()


# -- "now" stamping -----------------------------------------------------------------------------


@override_settings(OFFLINE_SYNC={"STAMPING": "now"})
def test_now_mode_stamps_the_wall_clock_and_a_random_version_when_saving(monkeypatch):
    monkeypatch.setattr(stamping, "now_ms", lambda: 1_700_000_000_123)
    item = ItemFactory()
    assert item.updated_at == stamping.ms_to_datetime(1_700_000_000_123)
    assert_ms_utc(item.updated_at)
    first = item.version
    item.save()
    assert item.version != first
    assert 0 <= item.version < 2**63
    # No clock row is used in this mode.
    assert not SyncClock.objects.exists()


@override_settings(OFFLINE_SYNC={"STAMPING": "now"})
def test_now_mode_soft_delete_bumps_the_version_when_called():
    item = ItemFactory()
    version = item.version
    item.delete()
    assert Item.all_objects.get(pk=item.pk).version != version


def test_full_clean_rejects_the_id_of_a_deleted_row_when_adding():
    gone = ItemFactory()
    gone.delete()
    with pytest.raises(ValidationError) as info:
        Item(id=gone.pk).full_clean()
    assert "id" in info.value.message_dict


def test_full_clean_accepts_a_saved_row_when_validating_it_again():
    item = ItemFactory()
    item.full_clean()
    item.delete()
    Item.all_objects.get(pk=item.pk).full_clean()
