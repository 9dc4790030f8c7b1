"""``QUERY_TIMEOUT_MS``: a list or count statement that runs too long is stopped, answered 503.

A filter within every static limit can still be slow for the data it meets: a 3 KB
``contains(replace(…), '…')`` costs PostgreSQL 19 s on 200 rows of 500 characters. The
statements of ``evaluation_guard`` (the page and the count) now run under a time limit on
every backend (``query.timeout``), and a stopped statement is the 503 ``query_timeout``,
never a 500, leaving the connection and the request's transaction usable.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from django.db import OperationalError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_offline_sync.exceptions import QueryTimeout
from django_offline_sync.query import evaluation_guard
from django_offline_sync.query.timeout import TimeLimit, _mysql_wrapper, is_timeout
from django_offline_sync.settings import validate
from example_project.tasks.models import Task
from tests.pgtrace import idle, round_trips

VENDOR = connection.vendor
# A statement that runs for seconds unless stopped, per backend.
SLOW_SQL = {
    "postgresql": "SELECT pg_sleep(5)",
    "mysql": "SELECT SLEEP(5)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2e9) SELECT max(x) FROM c",
}[VENDOR]
# The worst case of strpos()/LOCATE()/instr() differs: PostgreSQL is slow to reject a needle
# that differs in its first character, MariaDB and SQLite one that differs in its last.
NEEDLE = "b" + "a" * 3000 if VENDOR == "postgresql" else "a" * 3000 + "b"
SLOW_FILTER = f"contains(replace(text, 'a', '{'a' * 131}'), '{NEEDLE}')"  # within MAX_FILTER_STRING

pytestmark = pytest.mark.django_db


def run_slow_sql():
    with connection.cursor() as cursor:
        cursor.execute(SLOW_SQL)
        return cursor.fetchall()


def current_timeout():
    with connection.cursor() as cursor:
        if VENDOR == "postgresql":
            cursor.execute("SHOW statement_timeout")
        else:
            cursor.execute("SELECT @@max_statement_time")
        return cursor.fetchone()[0]


# -- evaluation_guard ---------------------------------------------------------------------------


def test_a_slow_statement_is_stopped_and_raises_query_timeout():
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as caught, evaluation_guard(timeout_ms=200):
        run_slow_sql()
    assert time.monotonic() - started < 3
    assert caught.value.status_code == 503 and caught.value.default_code == "query_timeout"
    assert "longer than 200 ms" in str(caught.value.detail)
    assert isinstance(caught.value.__cause__, OperationalError)
    # The request's transaction (here the test's) and the connection are still usable.
    assert Task.objects.count() == 0


def test_the_limit_comes_from_query_timeout_ms(settings):
    settings.OFFLINE_SYNC = {"QUERY_TIMEOUT_MS": 150}
    with pytest.raises(QueryTimeout, match="longer than 150 ms"), evaluation_guard():
        run_slow_sql()


def test_a_fast_statement_runs_under_the_limit_and_leaves_no_handler_behind():
    with evaluation_guard(timeout_ms=50):
        assert list(Task.objects.all()) == []
    time.sleep(0.1)  # past the block's deadline: nothing may stop the next statements
    assert Task.objects.count() == 0


def test_other_operational_errors_pass_through_unchanged():
    lost = OperationalError("server closed the connection unexpectedly")
    with pytest.raises(OperationalError) as caught, evaluation_guard(timeout_ms=1000):
        raise lost
    assert caught.value is lost


def test_zero_disables_the_limit():
    with evaluation_guard(timeout_ms=0):
        assert Task.objects.count() == 0
        if VENDOR == "postgresql":
            assert current_timeout() == "0"
        elif VENDOR == "mysql" and connection.mysql_is_mariadb:
            assert current_timeout() == 0


@pytest.mark.skipif(VENDOR != "postgresql", reason="PostgreSQL's transaction-local statement_timeout")
class TestPostgreSQL:
    def test_the_timeout_is_set_inside_and_restored_after_the_block_in_a_transaction(self):
        assert current_timeout() == "0"
        with evaluation_guard(timeout_ms=1500):
            assert current_timeout() == "1500ms"
        assert current_timeout() == "0"  # not left behind for the rest of the request

    def test_a_lower_timeout_already_in_force_is_kept(self):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 700")
        with evaluation_guard(timeout_ms=10_000):
            assert current_timeout() == "700ms"
        assert current_timeout() == "700ms"

    def test_a_stopped_statement_rolls_back_to_the_savepoint_with_the_setting(self):
        with pytest.raises(QueryTimeout), evaluation_guard(timeout_ms=100):
            run_slow_sql()
        assert current_timeout() == "0"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(VENDOR != "postgresql", reason="PostgreSQL's statement_timeout")
class TestPostgreSQLAutocommit:
    """Outside a transaction each statement carries the timeout in its own message."""

    def test_each_statement_carries_the_timeout_and_nothing_is_left_behind(self):
        assert not connection.in_atomic_block
        with evaluation_guard(timeout_ms=1200, per_statement=True):
            # The time the block has left: 1200 ms, less what ran before the statement.
            assert not connection.in_atomic_block and 1000 <= int(current_timeout().removesuffix("ms")) <= 1200
        assert current_timeout() == "0" and idle()
        limited = evaluation_guard(timeout_ms=100, per_statement=True)
        with pytest.raises(QueryTimeout, match="longer than 100 ms"), limited:
            run_slow_sql()
        assert idle() and current_timeout() == "0"
        assert Task.objects.count() == 0

    def test_the_statements_of_one_block_share_its_time(self):
        """A page and its $count share the limit, as SQLite's deadline does: the second
        statement gets what the first left, not the limit again."""
        with evaluation_guard(timeout_ms=600, per_statement=True):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.4)")
            left = int(current_timeout().removesuffix("ms"))
        assert 0 < left <= 200
        def two_sleeps():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.4)")
                cursor.execute("SELECT pg_sleep(0.4)")  # alone within 600 ms, not after the first

        started = time.monotonic()
        with pytest.raises(QueryTimeout), evaluation_guard(timeout_ms=600, per_statement=True):
            two_sleeps()
        assert time.monotonic() - started < 1.0
        assert idle() and current_timeout() == "0"

    def test_a_statement_is_one_round_trip_with_no_transaction(self):
        Task.objects.create(text="x")
        sent = []

        def page():
            with evaluation_guard(timeout_ms=1200, per_statement=True):
                sent.append(list(Task.objects.values_list("text", flat=True)))

        trips = round_trips(page)
        assert len(trips) == 1 and "set_config('statement_timeout'" in trips[0], trips
        assert sent == [["x"]]  # the rows are the statement's, not the setting's
        assert round_trips(current_timeout) == ["SHOW statement_timeout"]
        assert current_timeout() == "0"

    def test_a_lower_session_timeout_is_kept(self):
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 700")
        try:
            with evaluation_guard(timeout_ms=10_000, per_statement=True):
                assert current_timeout() == "700ms"
            with evaluation_guard(timeout_ms=300, per_statement=True):
                assert current_timeout() == "300ms"
            assert current_timeout() == "700ms"
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")

    def test_an_executemany_takes_a_transaction_of_its_own(self):
        limited = evaluation_guard(timeout_ms=100, per_statement=True)
        with pytest.raises(QueryTimeout), limited, connection.cursor() as cursor:
            cursor.executemany("SELECT pg_sleep(%s)", [(5,)])
        assert idle() and current_timeout() == "0"

    def test_a_transaction_opened_inside_the_block_gets_the_timeout(self):
        with pytest.raises(QueryTimeout), evaluation_guard(timeout_ms=100, per_statement=True), transaction.atomic():
            run_slow_sql()
        assert idle() and current_timeout() == "0"

    def test_without_per_statement_the_guard_opens_a_transaction(self):
        with evaluation_guard(timeout_ms=1200):
            assert connection.in_atomic_block and current_timeout() == "1200ms"
        assert not connection.in_atomic_block and current_timeout() == "0"
        with CaptureQueriesContext(connection) as queries, evaluation_guard(timeout_ms=1200):
            pass
        assert sum(q["sql"].count("set_config") for q in queries.captured_queries) == 1
        with pytest.raises(QueryTimeout), evaluation_guard(timeout_ms=100):
            run_slow_sql()
        assert idle() and current_timeout() == "0"

    def test_server_side_binding_falls_back_to_a_transaction(self):
        options = connection.settings_dict["OPTIONS"]
        connection.close()
        options["server_side_binding"] = True
        try:
            with evaluation_guard(timeout_ms=1200, per_statement=True):
                assert connection.in_atomic_block and current_timeout() == "1200ms"
            assert not connection.in_atomic_block and current_timeout() == "0"
            # The transaction's end takes the setting with it: one statement sets it, none restores it.
            with CaptureQueriesContext(connection) as queries, evaluation_guard(timeout_ms=1200, per_statement=True):
                pass
            assert sum(q["sql"].count("set_config") for q in queries.captured_queries) == 1
            with pytest.raises(QueryTimeout), evaluation_guard(timeout_ms=100, per_statement=True):
                run_slow_sql()
            assert Task.objects.count() == 0
        finally:
            connection.close()
            del options["server_side_binding"]

    def test_a_repeatable_read_database_keeps_one_transaction(self):
        # A page and its $count share one snapshot there, as they did before.
        from django.db.backends.postgresql.psycopg_any import IsolationLevel

        options = connection.settings_dict["OPTIONS"]
        connection.close()
        options["isolation_level"] = IsolationLevel.REPEATABLE_READ
        try:
            with evaluation_guard(timeout_ms=1200, per_statement=True):
                assert connection.in_atomic_block and current_timeout() == "1200ms"
            assert not connection.in_atomic_block and current_timeout() == "0"
        finally:
            connection.close()
            del options["isolation_level"]


@pytest.mark.skipif(VENDOR != "mysql", reason="MariaDB's SET STATEMENT max_statement_time")
def test_mariadb_keeps_a_lower_session_max_statement_time():
    if not connection.mysql_is_mariadb:
        pytest.skip("MySQL has no max_statement_time")
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION max_statement_time = 0.7")
    try:
        with evaluation_guard(timeout_ms=10_000):
            assert current_timeout() == pytest.approx(0.7)
        with evaluation_guard(timeout_ms=300):
            assert current_timeout() == pytest.approx(0.3)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION max_statement_time = 0")


class FakeMySQL:
    def __init__(self, mariadb):
        self.mysql_is_mariadb = mariadb


def rewrite(mariadb, sql):
    seen = []
    _mysql_wrapper(FakeMySQL(mariadb), 250, TimeLimit())(lambda sql, *args: seen.append(sql), sql, None, False, {})
    return seen[0]


@pytest.mark.parametrize("mariadb", [True, False])
def test_a_statement_after_the_blocks_time_ran_out_is_stopped_before_it_is_sent(mariadb):
    limit, seen = TimeLimit(), []
    wrapper = _mysql_wrapper(FakeMySQL(mariadb), 5, limit)
    time.sleep(0.02)
    with pytest.raises(OperationalError, match="time limit"):
        wrapper(lambda sql, *args: seen.append(sql), "SELECT 1", None, False, {})
    assert limit.fired and seen == []
    assert is_timeout(connection, OperationalError("x"), limit)  # the guard answers it 503


def test_mysql_selects_carry_the_max_execution_time_hint():
    assert rewrite(False, "SELECT `a` FROM `t`") == "SELECT /*+ MAX_EXECUTION_TIME(250) */ `a` FROM `t`"
    assert rewrite(False, "  select count(*) from t") == "  select /*+ MAX_EXECUTION_TIME(250) */ count(*) from t"
    assert rewrite(False, "SAVEPOINT `s1`") == "SAVEPOINT `s1`"


def test_mariadb_selects_are_wrapped_in_set_statement():
    sql = rewrite(True, "SELECT 1")
    assert sql.startswith("SET STATEMENT max_statement_time = IF(@@max_statement_time > 0, ")
    assert sql.endswith("LEAST(@@max_statement_time, 0.250), 0.250) FOR SELECT 1")
    assert rewrite(True, "RELEASE SAVEPOINT `s1`") == "RELEASE SAVEPOINT `s1`"


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def long_texts():
    Task.objects.bulk_create([Task(text="a" * 500) for _ in range(1000)])


@pytest.mark.parametrize("generation, query", [("v3", "$count=true"), ("v2", "$inlinecount=allpages")])
def test_a_slow_filter_is_a_503_query_timeout_for_an_anonymous_client(request, long_texts, generation, query):
    client = request.getfixturevalue(generation)
    with override_settings(OFFLINE_SYNC={"QUERY_TIMEOUT_MS": 100}):
        started = time.monotonic()
        response = client.get(f"/tables/Task?{query}&$filter=" + quote(SLOW_FILTER, safe=""))
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["errorCode"] == "query_timeout"
    message = body["title"] if generation == "v3" else body["message"]
    assert message == (
        "The query ran longer than 100 ms and was stopped; narrow $filter or $orderby, or try again later."
    )
    assert elapsed < 5, elapsed
    # The next request on the same connection is answered normally.
    assert client.get("/tables/Task?$top=1").status_code == 200


def test_the_default_limit_leaves_ordinary_pulls_alone(v3, long_texts):
    response = v3.get("/tables/Task?$count=true&$filter=" + quote("contains(text, 'b') or length(text) gt 3"))
    assert response.status_code == 200 and response.json()["count"] == 1000


def test_under_atomic_requests_a_timeout_leaves_the_request_transaction_usable(v3, long_texts, settings):
    settings.OFFLINE_SYNC = {"QUERY_TIMEOUT_MS": 100}
    with transaction.atomic():
        response = v3.get("/tables/Task?$filter=" + quote(SLOW_FILTER, safe=""))
        assert response.status_code == 503
        assert Task.objects.count() == 1000


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(VENDOR != "postgresql", reason="PostgreSQL's round trips")
class TestPageRoundTrips:
    """What a pull page sends to PostgreSQL: one message per statement, its timeout in it."""

    @pytest.fixture
    def tasks(self):
        Task.objects.bulk_create([Task(text=f"t{i}") for i in range(5)])

    def pull(self, client, query):
        got = []
        trips = round_trips(lambda: got.append(client.get(f"/tables/Task?{query}")))
        assert got[0].status_code == 200, got[0].content
        return got[0], trips

    @pytest.mark.parametrize("generation, query", [
        ("v2", "$top=2&$orderby=updatedAt&$filter=" + quote("updatedAt ge datetimeoffset'2000-01-01T00:00:00.000Z'")),
        ("v3", "$filter=" + quote("updatedAt gt 2000-01-01T00:00:00.000Z") + "&$orderby=updatedAt"),
    ])
    def test_a_delta_page_is_one_round_trip(self, request, settings, tasks, generation, query):
        settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2}
        client = request.getfixturevalue(generation)
        response, trips = self.pull(client, query)
        assert len(trips) == 1, trips
        assert trips[0].startswith("SELECT s.v, set_config('statement_timeout'") and "tasks_task" in trips[0]
        assert idle() and current_timeout() == "0"
        if generation == "v3":  # the next page, by its cursor, the same way
            link = response.json()["nextLink"]
            response, trips = self.pull(client, link.split("?", 1)[-1])
            assert len(trips) == 1 and "tasks_task" in trips[0], trips

    def test_a_count_and_its_page_are_a_round_trip_each(self, v3, tasks):
        response, trips = self.pull(v3, "$count=true&$top=2")
        assert response.json()["count"] == 5
        assert len(trips) == 2 and all(t.startswith("SELECT s.v, set_config(") for t in trips), trips

    def test_atomic_requests_keep_the_timeout_in_the_request_transaction(self, v2, tasks):
        connection.settings_dict["ATOMIC_REQUESTS"] = True
        try:
            response, trips = self.pull(v2, "$top=2")
        finally:
            connection.settings_dict["ATOMIC_REQUESTS"] = False
        assert trips[0] == "BEGIN" and trips[-1] == "COMMIT", trips
        assert not any("; " in t and "set_config" in t for t in trips), trips  # no statement carries it
        assert any(t.startswith("SELECT s.v, set_config(") for t in trips), trips
        assert idle() and current_timeout() == "0"


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, check_id",
    [
        (-1, "offline_sync.E006"),
        (2**31, "offline_sync.E006"),
        ("10s", "offline_sync.E002"),
        (True, "offline_sync.E002"),
    ],
)
def test_query_timeout_ms_must_be_a_non_negative_int4(value, check_id):
    loaded, problems = validate({"QUERY_TIMEOUT_MS": value})
    assert [p.id for p in problems] == [check_id]
    assert loaded.QUERY_TIMEOUT_MS == 10_000


@pytest.mark.parametrize("value", [0, 1, 2**31 - 1])
def test_query_timeout_ms_accepts_zero_to_turn_the_limit_off(value):
    loaded, problems = validate({"QUERY_TIMEOUT_MS": value})
    timeout = loaded.QUERY_TIMEOUT_MS
    assert problems == [] and timeout == value
