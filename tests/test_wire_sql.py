"""List pages format timestamps (and versions) in SQL; they must equal the Python rendering."""

import datetime as dt

import pytest
from django.db import connection
from django.db.models import QuerySet

from django_offline_sync.serializers import Representer
from django_offline_sync.wire import encode_version
from django_offline_sync.wire_sql import key_timestamp
from example_project.tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.mark.parametrize(
    "due",
    [
        None,
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),  # no fraction (stored without one on SQLite)
        dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ],
)
@pytest.mark.parametrize("imported", [None, "MQ==", "AAAAAAAAJyY=", "AAAAAAAAAAAAAAAAAAAAAA=="])
def test_sql_formatted_page_equals_python_rendering(v2, due, imported):
    task = TaskFactory(due_date=due, priority=-3)
    # A negative version too, written around the stamping update() on purpose.
    QuerySet.update(Task.all_objects.filter(pk=task.pk), version=-(2**62), imported_version=imported)
    listed = v2.get("/tables/Task").json()[0]
    single = v2.get(f"/tables/Task/{task.id}").json()
    assert listed == single
    representer = Representer(Task)
    select, converters = representer.select_plan(connection.vendor)
    row = Task.all_objects.filter(pk=task.pk).values_list(*select).get()
    assert representer.from_values(row, converters) == representer.from_instance(Task.all_objects.get(pk=task.pk))
    assert single["version"] == (imported or encode_version(-(2**62)))


# -- rows written as JSON by the database -------------------------------------------------------

import base64  # noqa: E402
import decimal  # noqa: E402
import json  # noqa: E402
import uuid  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from django_offline_sync import wire_sql  # noqa: E402
from django_offline_sync.renderers import SyncJSONRenderer  # noqa: E402
from tests.models import Coded, Item, Ledger  # noqa: E402


def _rows_both_ways(model, parse_float=float):
    """Each row of ``model`` as the database writes it (``WireRow``) and as Python does, both
    read back from their JSON text (``parse_float=decimal.Decimal`` reads numbers exactly)."""
    representer = Representer(model)
    row_json = representer.row_json(connection.vendor)
    render = SyncJSONRenderer().render
    by_python = {
        r.pk: json.loads(render(representer.from_instance(r)), parse_float=parse_float)
        for r in model.all_objects.all()
    }
    if row_json is None:
        return by_python, by_python  # this backend has no JSON path: nothing to compare
    rows = model.all_objects.values_list("pk", row_json)
    by_sql = {pk: json.loads(text, parse_float=parse_float) for pk, text in rows}
    return by_sql, by_python


_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=_text,
    count=st.none() | st.integers(-(2**31), 2**31 - 1),
    price=st.none() | st.decimals(min_value=-(10**7), max_value=10**7, places=4, allow_nan=False),
    ratio=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    flag=st.booleans(),
    when=st.none()
    | st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC)),
    day=st.none() | st.dates(min_value=dt.date(1, 1, 1)),
    ref=st.none() | st.uuids(version=4),  # MariaDB's UUID type refuses some other variants
    imported=st.none() | st.binary(min_size=1, max_size=16).map(lambda raw: base64.b64encode(raw).decode()),
)
def test_rows_written_by_the_database_equal_the_python_rendering(
    db, name, count, price, ratio, flag, when, day, ref, imported
):
    Item.all_objects.all().hard_delete()
    item = Item.objects.create(name=name, count=count, price=price, ratio=ratio, flag=flag, when=when, day=day, ref=ref)
    QuerySet.update(Item.all_objects.filter(pk=item.pk), imported_version=imported)
    by_sql, by_python = _rows_both_ways(Item)
    assert by_python[item.pk]["version"] == (imported or encode_version(item.version))
    for pk, row in by_python.items():
        assert {k: v for k, v in by_sql[pk].items() if row[k] != v} == {}, row
    # Decimals read exactly: both paths carry the stored value, digit for digit.
    exact_sql, exact_python = _rows_both_ways(Item, parse_float=decimal.Decimal)
    stored = Item.all_objects.get().price
    assert [r["price"] for r in exact_sql.values()] == [r["price"] for r in exact_python.values()] == [stored]
    if price is not None and connection.vendor != "sqlite":  # SQLite keeps a decimal as a double
        assert stored == price


def test_rows_with_json_columns_and_system_extremes_are_written_alike(db):
    Coded.objects.create(name="a", tags=[1, "x", {"k": None}], slug=None)
    row = Coded.objects.create(name="b", tags={})
    QuerySet.update(Coded.all_objects.filter(pk=row.pk), version=-(2**63), deleted=True)
    by_sql, by_python = _rows_both_ways(Coded)
    assert by_sql == by_python


@pytest.mark.urls("tests.pipeline.urls")
def test_a_list_answer_is_the_same_whichever_path_wrote_it(v2, v3):
    for i in range(3):
        Item.objects.create(name=f"n{i}", price=decimal.Decimal("1.2500"), ref=uuid.uuid4(), flag=bool(i % 2))
    Item.objects.create(name="n3 \u00e9\u4e2d\U0001f600 \"q\"\n")  # SQLite hands the rows over as UTF-8 bytes
    QuerySet.update(Item.all_objects.filter(name="n1"), imported_version="MTI=")
    for client in (v2, v3):
        fast = client.get("/tables/Item?$orderby=name", HTTP_ACCEPT="application/json").json()
        slow = client.get("/tables/Item?$orderby=name", HTTP_ACCEPT="application/json; indent=2").json()
        assert fast == slow
        rows = fast if isinstance(fast, list) else fast["items"]
        assert [row["version"] for row in rows if row["name"] == "n1"] == ["MTI="]


@pytest.mark.urls("tests.pipeline.urls")
@pytest.mark.parametrize("debug", [False, True])
def test_a_page_with_float_and_decimal_columns_can_be_logged(v2, v3, settings, debug):
    """Django formats a query's SQL with its parameters (``sql % params``) to log it: with
    ``DEBUG`` on, and under ``CaptureQueriesContext``. A bare ``%`` in the page's SQL (SQLite's
    ``printf``) made that raise, so every page of a table with a float or decimal column
    answered 500 on a site in development."""
    from django.test.utils import CaptureQueriesContext

    settings.DEBUG = debug
    Item.objects.create(name="a", price=decimal.Decimal("1.2500"), ratio=0.1)
    for client in (v2, v3):
        with CaptureQueriesContext(connection) as captured:
            # A filter, so that the statement has parameters to format.
            response = client.get("/tables/Item?$orderby=name&$filter=name ne 'b'", HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.content
        body = response.json()
        rows = body if isinstance(body, list) else body["items"]
        assert [(row["price"], row["ratio"]) for row in rows] == [(1.25, 0.1)]
        assert any("tests_item" in query["sql"] for query in captured.captured_queries)


def test_models_with_columns_sql_cannot_write_take_the_python_path():
    class Field:
        name = "blob"
        attname = "blob"
        is_relation = False
        primary_key = False

        def get_internal_type(self):
            return "BinaryField"

    assert wire_sql.row_kind(Field()) is None
    assert not wire_sql.supports_rows([Field()], "sqlite")
    assert not wire_sql.supports_rows([], "mysql")


@pytest.mark.parametrize("ratio", [1.5864050752233245e299, 0.1, -2.5e-308, 5e-324, 1.7976931348623157e308, 123456789.0])
def test_floats_that_sqlite_rounds_badly_at_17_digits_come_back_exact(db, ratio):
    Item.all_objects.all().hard_delete()
    Item.objects.create(ratio=ratio)
    by_sql, by_python = _rows_both_ways(Item)
    assert [row["ratio"] for row in by_sql.values()] == [ratio] == [row["ratio"] for row in by_python.values()]


WIDE = [
    "12345678901234567890.1234567890",  # 30 digits: no double holds it
    "-0.0000000001",
    "0.1000000000",
    "-98765432109876543.2109876543",
    "1.0000000000",
]


@pytest.mark.urls("tests.pipeline.urls")
def test_decimals_wider_than_a_double_reach_every_client_exactly(v1, v2, v3):
    for amount in WIDE:
        Ledger.objects.create(amount=decimal.Decimal(amount))
    stored = sorted(Ledger.objects.values_list("amount", flat=True))
    if connection.vendor != "sqlite":
        assert stored == sorted(map(decimal.Decimal, WIDE))  # SQLite keeps decimals as doubles (15 digits)
    for client in (v1, v2, v3):
        for accept in ("application/json", "application/json; indent=2"):  # the SQL path and the Python one
            response = client.get("/tables/Ledger", HTTP_ACCEPT=accept)
            assert response.status_code == 200
            body = json.loads(response.content, parse_float=decimal.Decimal)
            rows = body["items"] if isinstance(body, dict) else body
            assert sorted(r["amount"] for r in rows) == stored, (client.generation, accept)
    by_sql, by_python = _rows_both_ways(Ledger, parse_float=decimal.Decimal)
    assert by_sql == by_python


# -- SQLite's version function and the page's key timestamp --------------------------------------


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the function is registered on SQLite connections")
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63), None]))
def test_sqlites_version_function_writes_what_encode_version_writes(db, version):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {wire_sql.SQLITE_VERSION_FUNCTION}(%s)", [version])
        assert cursor.fetchone()[0] == encode_version(version)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the function is registered on SQLite connections")
def test_sqlites_version_function_reads_a_real_as_encode_version_does(db):
    # Only another writer could leave a REAL in the column; the page still renders it.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {wire_sql.SQLITE_VERSION_FUNCTION}(CAST(%s AS REAL))", [7])
        assert cursor.fetchone()[0] == encode_version(7)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    when=st.none()
    | st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC))
    | st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=0)  # stored without a fraction on SQLite
    )
)
def test_a_pages_key_timestamp_reads_as_the_wire_timestamp(db, when):
    """The cursor reads the last row's ``KeyTimestamp`` through ``key_timestamp``: the same text
    as ``WireTimestamp`` and as the Python rendering of the row."""
    Item.all_objects.all().hard_delete()
    item = Item.objects.create(name="k", when=when)
    key, wire = Item.all_objects.values_list(wire_sql.KeyTimestamp("when"), wire_sql.WireTimestamp("when")).get()
    assert key_timestamp(key, connection.vendor) == wire
    assert wire == Representer(Item).from_instance(Item.all_objects.get(pk=item.pk))["when"]
