"""Integer-key tables: a filter takes an id the way the wire sends it, as a string.

Integer primary keys, and foreign keys to them, travel as strings (``"id": "7"``,
``"ownerId": "5"``: every client's id is a string), yet ``$filter=id eq '7'`` was a 400
"Cannot compare an integer with a string". A string holding an integer, written as the server
writes it, now compares with those columns (and only those) as that integer; any other
string there is a 400 naming it.

``Asset`` (``tests.legacy``) keeps its ``BigAutoField`` id; ``Inspection.owner`` is a foreign
key to ``auth.User``'s integer id.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import modify_settings, override_settings
from django.urls import include, path

from django_offline_sync.query import FieldMap
from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Inspection, Note, Task
from tests.factories import TaskFactory, UserFactory
from tests.legacy.models import Asset
from tests.models import Item


class AssetViewSet(SyncViewSet):
    model = Asset


class OwnedInspectionViewSet(SyncViewSet):
    """Inspections with their owner exposed (``ownerId``), open to anyone for the test."""

    model = Inspection
    fields = ["owner", "site", "pipe_id", "condition"]


router = SyncRouter()
router.register("Asset", AssetViewSet, basename="asset")
router.register("Inspection", OwnedInspectionViewSet, basename="owned-inspection")
router.register("Task", type("TaskViewSet", (SyncViewSet,), {"model": Task}), basename="task")
urlpatterns = [path("tables/", include(router.urls))]

pytestmark = pytest.mark.urls(__name__)


def _migration_modules() -> dict[str, str | None]:
    # Every other app stays unmigrated (its tables come from --no-migrations' syncdb).
    modules: dict[str, str | None] = {config.label: None for config in apps.get_app_configs()}
    modules["legacy"] = "tests.legacy.migrations"
    return modules


@pytest.fixture
def assets(transactional_db):
    """The legacy ``Asset`` table, migrated, with rows whose ids are 7, 8 and 10."""
    with (
        modify_settings(INSTALLED_APPS={"append": "tests.legacy"}),
        override_settings(MIGRATION_MODULES=_migration_modules()),
    ):
        call_command("migrate", "legacy", verbosity=0, skip_checks=True)
        try:
            for pk in (7, 8, 10):
                Asset.objects.create(id=pk, name=f"pump {pk}")
            yield
        finally:
            call_command("migrate", "legacy", "zero", verbosity=0, skip_checks=True)


@pytest.fixture
def inspections(db):
    """Two inspectors' rows: {owner pk: [inspection ids]}."""
    owners = [UserFactory(), UserFactory()]
    rows = {}
    for owner in owners:
        made = [Inspection.objects.create(owner=owner, site="s", pipe_id=f"p{i}") for i in range(2)]
        rows[owner.pk] = sorted(i.id for i in made)
    Inspection.objects.create(owner=None, site="s", pipe_id="orphan")
    return rows


def listed(client, table, text, generation="v3"):
    response = client.get(f"/tables/{table}?$filter=" + quote(text, safe=""))
    assert response.status_code == 200, response.content
    body = response.json()
    return body["items"] if generation == "v3" else body


# -- the wire sends strings ---------------------------------------------------------------------


def test_integer_ids_and_foreign_keys_to_them_go_out_as_strings(v3, assets, inspections):
    assert sorted(row["id"] for row in listed(v3, "Asset", "true")) == ["10", "7", "8"]
    owners = {row["ownerId"] for row in listed(v3, "Inspection", "true")}
    assert owners == {str(pk) for pk in inspections} | {None}


def test_the_field_map_marks_exactly_the_columns_the_wire_sends_as_strings():
    def flags(model, fields=None):
        return {info.wire_name: info.string_id for info in FieldMap.for_model(model, fields) if info.type == "int"}

    assert flags(Asset) == {"id": True}  # version has its own type
    assert flags(Inspection, ["owner", "site"])["ownerId"] is True
    assert flags(Task) == {"priority": False}
    assert not any(info.string_id for info in FieldMap.for_model(Item))  # string ids stay strings
    assert not any(info.string_id for info in FieldMap.for_model(Note))  # a foreign key to a string id


# -- filters take them back -----------------------------------------------------------------------


@pytest.mark.parametrize("generation", ["v2", "v3"])
@pytest.mark.parametrize(
    "text, expected",
    [
        ("id eq '7'", ["7"]),
        ("'8' eq id", ["8"]),
        ("id eq 7", ["7"]),
        ("id ne '7'", ["10", "8"]),
        ("id in ('7', '8')", ["7", "8"]),
        ("id in ('7', 10, null)", ["10", "7"]),
        ("id in ('9')", []),
        ("id gt '8'", ["10"]),  # compared as integers, as the ids are
        ("id le '8' and name eq 'pump 8'", ["8"]),
        ("id eq '-1'", []),
        ("id eq '9223372036854775807'", []),
    ],
)
def test_a_string_holding_an_integer_compares_with_an_integer_id(request, assets, generation, text, expected):
    client = request.getfixturevalue(generation)
    assert sorted(row["id"] for row in listed(client, "Asset", text, generation)) == expected


def test_the_id_a_client_received_finds_its_row(v3, assets):
    for row in listed(v3, "Asset", "true"):
        assert [r["name"] for r in listed(v3, "Asset", f"id eq '{row['id']}'")] == [row["name"]]


@pytest.mark.parametrize(
    "text, position, value",
    [
        ("id eq 'abc'", 6, "abc"),
        ("id eq '7.0'", 6, "7.0"),
        ("id eq '007'", 6, "007"),
        ("id eq ' 7'", 6, " 7"),
        ("id eq ''", 6, ""),
        ("id eq '99999999999999999999'", 6, "99999999999999999999"),
        ("id in ('7', 'x')", 12, "x"),
    ],
)
def test_a_string_that_is_not_an_integer_id_is_a_400_naming_it(v3, assets, text, position, value):
    response = v3.get("/tables/Asset?$filter=" + quote(text, safe=""))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "invalid_query" and body["position"] == position
    assert body["title"].startswith(f"{value!r} is not an id of this table: its ids are integers")
    assert body["expected"] == "an integer id as the server sends it, such as '7'"
    assert Asset.objects.count() == 3


@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_a_foreign_key_to_an_integer_id_takes_the_string_the_wire_sends(request, inspections, generation):
    client = request.getfixturevalue(generation)
    first, second = inspections
    rows = listed(client, "Inspection", f"ownerId eq '{first}'", generation)
    assert sorted(r["id"] for r in rows) == inspections[first]
    rows = listed(client, "Inspection", f"ownerId in ('{first}', '{second}')", generation)
    assert sorted(r["id"] for r in rows) == sorted(inspections[first] + inspections[second])
    rows = listed(client, "Inspection", f"ownerId ne '{first}'", generation)
    assert len(rows) == 3  # the second owner's two rows and the orphan (C# null semantics)


def test_a_foreign_key_filter_with_a_non_integer_string_is_a_400(v3, inspections):
    response = v3.get("/tables/Inspection?$filter=" + quote("ownerId eq 'alice'", safe=""))
    assert response.status_code == 400
    assert response.json()["title"].startswith("'alice' is not an id of this table")


def test_other_integer_columns_still_refuse_strings(v3, db, inspections):
    TaskFactory(priority=5)
    response = v3.get("/tables/Task?$filter=" + quote("priority eq '5'", safe=""))
    assert response.status_code == 400
    assert response.json()["title"].startswith("Cannot compare an integer with a string")
    # A string column compares with a string of digits as before.
    assert listed(v3, "Inspection", "pipeId eq '5'") == []
