"""Integer arguments and literals at the edges of the database's integer types: 200 or 400, never 500.

``substring(text, 2147483647)`` made PostgreSQL bind ``start + 1`` as a bigint (no
``substring(text, bigint)`` exists: ProgrammingError), and an integral number beyond 64 bits
compared with an integer column (``priority eq 1e27``) could not be bound by SQLite
(OverflowError). Both were 500s; the same filters now give the same rows on every backend.
"""

from urllib.parse import quote

import pytest

from django_offline_sync.query import ODataSyntaxError, parse_filter
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks():
    return [TaskFactory(text="abc", priority=1), TaskFactory(text="", priority=-2**31)]


def ids(response):
    assert response.status_code == 200, response.content
    return sorted(item["id"] for item in response.json()["items"])


def get(client, text):
    return client.get("/tables/Task?$filter=" + quote(text, safe=""))


@pytest.mark.parametrize(
    "text, matches",
    [
        ("substring(text, 2147483647) eq 'x'", False),
        ("substring(text, 2147483647) eq ''", True),
        ("substring(text, 2147483647, 2147483647) eq ''", True),
        ("substring(text, 2147483646, 2147483647) eq ''", True),
        ("substring(text, 0, 2147483647) eq text", True),
    ],
)
def test_substring_takes_every_accepted_start_and_length_when_at_the_int32_edge(v3, tasks, text, matches):
    assert ids(get(v3, text)) == (sorted(t.id for t in tasks) if matches else [])


def test_substring_start_beyond_int32_is_a_positioned_400(v3, tasks):
    response = get(v3, "substring(text, 2147483648) eq ''")
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "invalid_query" and body["position"] == 16
    assert body["expected"] == "an integer below 2147483648"


@pytest.mark.parametrize(
    "text, matches",
    [
        ("priority eq 1e27", []),
        ("priority lt 1e27", [0, 1]),
        ("priority gt -1e27", [0, 1]),
        ("priority ge 9.3e18", []),
        ("priority in (1e27, 1)", [0]),
        ("priority eq 123456789012345678901234567.0", []),
        ("length(text) lt 1e27", [0, 1]),
        ("round(priority) eq 1e27", []),
        ("priority eq 9223372036854775807", []),
        ("priority eq -9223372036854775808", []),
    ],
)
def test_numbers_beyond_64_bits_compare_with_integers_when_sent(v2, tasks, text, matches):
    rows = v2.get("/tables/Task?$filter=" + quote(text, safe="")).json()
    assert sorted(r["id"] for r in rows) == sorted(tasks[i].id for i in matches)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("priority eq cast(1e27, Edm.Int64)", "an integer from -9223372036854775808 to 9223372036854775807"),
        ("priority eq cast(300, Edm.Byte)", "an integer from 0 to 255"),
        ("priority eq cast(-129, Edm.SByte)", "an integer from -128 to 127"),
        ("priority eq cast(32768, Edm.Int16)", "an integer from -32768 to 32767"),
        ("priority eq cast(2147483648, Edm.Int32)", "an integer from -2147483648 to 2147483647"),
    ],
)
def test_cast_to_an_integer_type_checks_its_range_when_folded(v3, tasks, text, expected):
    response = get(v3, text)
    assert response.status_code == 400
    body = response.json()
    assert body["expected"] == expected and body["position"] == 17
    assert "out of range for Edm." in body["title"]


def test_cast_in_range_folds_into_an_integer_literal():
    node = parse_filter("cast(255, Edm.Byte) eq 1")
    assert node.left.value == 255  # type: ignore[attr-defined]
    with pytest.raises(ODataSyntaxError):
        parse_filter("cast(256, Edm.Byte) eq 1")


@pytest.mark.parametrize(
    "text",
    [
        "length(text) mul 4294967295 gt 0",
        "indexof(text, 'a') mul 4294967295 gt 0",
        "year(dueDate) mul 922337203685477 gt 0",
        "priority mod -1 eq 0",
        "priority div -1 gt 0",
        "priority add 9223372036854775807 gt 0",
        "length(text) eq 9223372036854775807",
        "indexof(text, 'a') eq -9223372036854775808",
        "year(dueDate) eq 9223372036854775807",
        "ceiling(priority) gt 1e27",
        "floor(priority add 0.5) lt -1e27",
    ],
)
def test_integer_valued_functions_at_the_edges_never_fail_in_the_database(v3, tasks, text):
    # The test client re-raises a server error, so a 500 fails here with its traceback.
    response = get(v3, text)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["errorCode"] == "invalid_query"
