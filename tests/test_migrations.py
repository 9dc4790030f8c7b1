"""Migrations: none missing, and an existing populated table adopting SyncModel.

The suite runs with ``--no-migrations``; these tests point ``MIGRATION_MODULES`` back at
the migration files on disk. The ``legacy`` app is installed only inside its fixture and
migrated forward (and back to zero) on the real test database.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import QuerySet
from django.test import modify_settings, override_settings

from django_offline_sync import stamping
from django_offline_sync.migration_operations import StampExistingRows, stamp_existing_rows
from django_offline_sync.models import SyncClock
from tests.factories import ItemFactory
from tests.models import Item

FROZEN_MS = 1_750_000_000_000
#: The legacy app's last migration: adopting SyncModel (0002), then the column 0.2.0 added.
LATEST = "0003"


@pytest.mark.django_db
@override_settings(MIGRATION_MODULES={"tests": None})
@pytest.mark.parametrize("label", ["tasks", "offline_sync"])
def test_makemigrations_finds_nothing_when_models_match_the_migration_files(label):
    # --check exits with status 1 when a change is detected; no exception means none.
    call_command("makemigrations", label, "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
@override_settings(MIGRATION_MODULES={"tests": None})
def test_makemigrations_check_fails_when_a_migration_is_missing(monkeypatch):
    # Proves the test above is not vacuous under --no-migrations.
    from example_project.tasks.models import Task

    field = Task._meta.get_field("priority")
    monkeypatch.setattr(field, "default", 3)
    with pytest.raises(SystemExit):
        call_command("makemigrations", "tasks", "--check", "--dry-run", verbosity=0)


# -- the helper on its own ------------------------------------------------------------------


def test_stamp_existing_rows_operation_deconstructs_when_serialized():
    assert StampExistingRows("asset").deconstruct() == ("StampExistingRows", ["asset"], {})
    assert StampExistingRows("asset", batch_size=10).deconstruct() == (
        "StampExistingRows",
        ["asset"],
        {"batch_size": 10},
    )
    assert StampExistingRows("Asset").describe() == "Stamp existing rows of Asset for sync"
    assert StampExistingRows("Asset").migration_name_fragment == "stamp_asset"


@pytest.mark.django_db
def test_stamp_existing_rows_stamps_only_unstamped_rows_when_called(monkeypatch):
    old = ItemFactory()
    bare = ItemFactory.create_batch(5)
    # A plain QuerySet.update bypasses stamping, as adding the columns to a full table does.
    QuerySet(Item).filter(pk__in=[i.pk for i in bare]).update(created_at=None, updated_at=None, version=0)
    monkeypatch.setattr(stamping, "now_ms", lambda: FROZEN_MS)
    assert stamp_existing_rows(Item, batch_size=2) == 5
    stored = {i.pk: i for i in Item.all_objects.all()}
    assert stored[old.pk].version == old.version and stored[old.pk].updated_at == old.updated_at
    fresh = sorted((stored[i.pk] for i in bare), key=lambda i: i.pk)
    times = [i.updated_at for i in fresh]
    assert times == sorted(times) and len(set(times)) == 5
    assert len({i.version for i in fresh}) == 5
    assert all(i.created_at == i.updated_at for i in fresh)
    assert all(i.updated_at > old.updated_at for i in fresh)
    assert stamp_existing_rows(Item) == 0


@pytest.mark.django_db
@override_settings(OFFLINE_SYNC={"STAMPING": "now"})
def test_stamp_existing_rows_uses_now_stamps_when_stamping_is_now(monkeypatch):
    bare = ItemFactory.create_batch(3)
    QuerySet(Item).update(created_at=None, updated_at=None, version=0)
    monkeypatch.setattr(stamping, "now_ms", lambda: FROZEN_MS)
    assert stamp_existing_rows(Item) == 3
    rows = list(Item.objects.all())
    assert {r.updated_at for r in rows} == {stamping.ms_to_datetime(FROZEN_MS)}
    assert all(r.version for r in rows) and len(bare) == 3


# -- an existing table adopts SyncModel -------------------------------------------------------


def _legacy_migration_modules() -> dict[str, str | None]:
    # Every other app stays unmigrated (its tables come from --no-migrations' syncdb).
    modules: dict[str, str | None] = {config.label: None for config in apps.get_app_configs()}
    modules["legacy"] = "tests.legacy.migrations"
    return modules


@pytest.fixture
def legacy(transactional_db):
    """Install ``tests.legacy`` with its migrations on disk; migrate back to zero afterwards."""
    with (
        modify_settings(INSTALLED_APPS={"append": "tests.legacy"}),
        override_settings(MIGRATION_MODULES=_legacy_migration_modules()),
    ):
        call_command("migrate", "legacy", "0001", verbosity=0, skip_checks=True)
        try:
            yield
        finally:
            call_command("migrate", "legacy", "zero", verbosity=0, skip_checks=True)


def _historical_asset(target: str):
    state = MigrationExecutor(connection).loader.project_state(("legacy", target))
    return state.apps.get_model("legacy", "Asset")


def _seed_old_rows(count: int) -> list[int]:
    OldAsset = _historical_asset("0001_initial")
    OldAsset.objects.bulk_create([OldAsset(name=f"asset {n}", serial=f"S-{n:03d}") for n in range(count)])
    return list(OldAsset.objects.order_by("pk").values_list("pk", flat=True))


def test_adopting_migration_stamps_existing_rows_when_applied(legacy, monkeypatch):
    pks = _seed_old_rows(7)
    before = stamping.now_ms()
    # Every row in one millisecond: the clock must still give each its own stamp.
    monkeypatch.setattr(stamping, "now_ms", lambda: max(before, FROZEN_MS))
    call_command("migrate", "legacy", LATEST, verbosity=0, skip_checks=True)

    Asset = apps.get_model("legacy", "Asset")
    rows = list(Asset.all_objects.order_by("pk"))
    assert [r.pk for r in rows] == pks  # integer ids untouched
    assert all(isinstance(r.pk, int) for r in rows)
    assert [r.name for r in rows] == [f"asset {n}" for n in range(7)]
    times = [r.updated_at for r in rows]
    assert times == sorted(times) and len(set(times)) == 7
    assert len({r.version for r in rows}) == 7 and all(r.version for r in rows)
    for r in rows:
        assert r.deleted is False
        assert r.created_at == r.updated_at
        assert r.updated_at.utcoffset() == dt.timedelta(0) and r.updated_at.microsecond % 1000 == 0
        assert r.updated_at >= stamping.ms_to_datetime(before)
    clock = SyncClock.objects.get(table=Asset._meta.db_table)
    assert clock.last_ms == stamping.datetime_to_ms(times[-1])


def test_adopted_table_behaves_as_a_sync_model_when_keeping_an_integer_pk(legacy):
    _seed_old_rows(3)
    call_command("migrate", "legacy", LATEST, verbosity=0, skip_checks=True)
    Asset = apps.get_model("legacy", "Asset")
    cursor = Asset.objects.order_by("-updated_at").first().updated_at

    new = Asset.objects.create(name="new pump")
    assert isinstance(new.pk, int) and new.version and new.updated_at > cursor
    bulk = Asset.objects.bulk_create([Asset(name="b1"), Asset(name="b2")])
    assert len({b.version for b in bulk}) == 2
    first = Asset.objects.order_by("pk").first()
    first.serial = "CHANGED"
    first.save(update_fields=["serial"])
    assert Asset.objects.filter(serial__startswith="S-").update(serial="bulk") == 2
    assert first.delete() == (1, {"legacy.Asset": 1})

    changed = list(Asset.all_objects.changed_since(cursor))
    assert len(changed) == 6  # the new row, two bulk rows, the deleted one and the two updated
    stamps = [(r.updated_at, r.pk) for r in changed]
    assert stamps == sorted(stamps) and len({u for u, _ in stamps}) == 6
    assert [r.pk for r in Asset.all_objects.changed_since(stamps[2][0], stamps[2][1])] == [p for _, p in stamps[3:]]
    assert Asset.deleted_objects.get().pk == first.pk


def test_adopting_migration_matches_the_model_when_checked(legacy):
    call_command("migrate", "legacy", LATEST, verbosity=0, skip_checks=True)
    call_command("makemigrations", "legacy", "--check", "--dry-run", verbosity=0)


def test_adopting_migration_stamps_nothing_when_the_table_is_empty(legacy):
    call_command("migrate", "legacy", LATEST, verbosity=0, skip_checks=True)
    Asset = apps.get_model("legacy", "Asset")
    assert not Asset.all_objects.exists()


def test_adopting_migration_reverses_when_migrated_back(legacy):
    pks = _seed_old_rows(2)
    call_command("migrate", "legacy", LATEST, verbosity=0, skip_checks=True)
    call_command("migrate", "legacy", "0001", verbosity=0, skip_checks=True)
    OldAsset = _historical_asset("0001_initial")
    assert list(OldAsset.objects.order_by("pk").values_list("pk", flat=True)) == pks
    columns = {c.name for c in connection.introspection.get_table_description(connection.cursor(), "legacy_asset")}
    assert columns == {"id", "name", "serial"}
