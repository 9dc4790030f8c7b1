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
from django_offline_sync.query.timeout import _mysql_wrapper
from django_offline_sync.settings import validate
from example_project.tasks.models import Task

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
@pytest.mark.skipif(VENDOR != "postgresql", reason="PostgreSQL needs a transaction for SET LOCAL")
def test_outside_a_transaction_the_guard_opens_one_for_the_timeout():
    assert not connection.in_atomic_block
    with evaluation_guard(timeout_ms=1200):
        assert connection.in_atomic_block and current_timeout() == "1200ms"
    assert not connection.in_atomic_block and current_timeout() == "0"
    # The transaction's end takes the setting with it: one statement sets it, none restores it.
    with CaptureQueriesContext(connection) as queries, evaluation_guard(timeout_ms=1200):
        pass
    assert sum(q["sql"].count("set_config") for q in queries.captured_queries) == 1
    with pytest.raises(QueryTimeout), evaluation_guard(timeout_ms=100):
        run_slow_sql()
    assert Task.objects.count() == 0


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
    _mysql_wrapper(FakeMySQL(mariadb), 250)(lambda sql, *args: seen.append(sql), sql, None, False, {})
    return seen[0]


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
