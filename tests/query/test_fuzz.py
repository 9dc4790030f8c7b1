"""Fuzz: random bytes and mutated valid queries get 200 or a positioned 400, never a 500.

Requests go through Django's URL decoding (invalid UTF-8 included) to a minimal endpoint
that parses the options, runs the query and counts, as the table views do.
"""

import datetime as dt
import os
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.models import Item

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.query.urls")]

SETTINGS = settings(
    max_examples=int(os.environ.get("ODATA_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OPTIONS = ["$filter", "$orderby", "$skip", "$top", "$select", "$count", "$inlinecount", "__includeDeleted"]
VALID = [
    "(updatedAt ge datetimeoffset'1970-01-01T00:00:00.0000000+00:00')",
    "(__updatedAt gt datetime'2024-01-02T03:04:05.678Z') and (flag eq true)",
    "updatedAt gt cast(2024-01-02T03:04:05.678Z,Edm.DateTimeOffset)",
    "substringof('an', name) or contains(tolower(label), 'fr')",
    "startswith(name, 'A') and not endswith(label, 'x')",
    "count add 1 gt 2L and price lt 1.5M and ratio ge 0.5f",
    "(count div 2) mod 3 eq 1 or count sub 4 mul 2 lt -1",
    "ref eq guid'0f8fad5b-d9cb-469f-a165-70867728950e' or ref eq null",
    "version eq 'AAAAAAAAJyY=' or version eq X'0000000000002726'",
    "year(when) eq 2024 and month(day) le 6 and second(when) ne 0",
    "length(concat(name, label)) gt indexof(name, 'a')",
    "round(ratio) eq floor(price) or ceiling(ratio) ne 2",
    "replace(name, 'a', 'b') eq trim(substring(label, 1, 2))",
    "id in ('a', 'b', null) and day eq 2024-01-02",
    "toupper(name) ne 'X' and day lt cast(2024-01-02,Edm.Date)",
]
TOKENS = [" ", "(", ")", "'", ",", "eq", "and", "or", "not", "null", "add", "mul", "div", "in", "X'", "guid'",
          "datetime'", "cast(", "Edm.Guid", "9999999999999999999999", "-", ".", "1e308", "1e-300", "M", "L",
          "\x00", "%", "é", "\\", "/", "tolower(", "contains(", "$", "__", "()", "''"]


@pytest.fixture
def data(db):
    Item.objects.create(id="a", name="Apple", label="Fruit", count=3, ratio=0.5,
                        when=dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC))
    Item.objects.create(id="b", name="banana", count=2**31 - 1, ratio=1e300)


def assert_200_or_400(response):
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        body = response.json()
        assert set(body) >= {"detail", "option", "position", "expected"}
        assert body["option"]


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS) | st.text(max_size=3)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)):]
        elif action == "replace":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at + 1:]
        else:
            end = min(len(text), at + draw(st.integers(1, 20)))
            text = text[:end] + text[at:end] + text[end:]
    return text


@SETTINGS
@given(option=st.sampled_from(OPTIONS), raw=st.binary(max_size=64), generation=st.sampled_from(["v1", "v2", "v3"]))
def test_random_bytes_in_any_option(client, data, option, raw, generation):
    response = client.get(f"/query/{generation}/", QUERY_STRING=f"{quote(option)}={quote_from_bytes(raw)}")
    assert_200_or_400(response)


@SETTINGS
@given(text=mutated(), generation=st.sampled_from(["v1", "v2", "v3"]))
def test_mutated_valid_filters(client, data, text, generation):
    response = client.get(f"/query/{generation}/", QUERY_STRING="$filter=" + quote(text, safe=""))
    assert_200_or_400(response)


@SETTINGS
@given(orderby=mutated().map(lambda t: t.split(" eq ")[0]), top=st.text(max_size=6), skip=st.text(max_size=6))
def test_mutated_orderby_top_and_skip(client, data, orderby, top, skip):
    string = "&".join(f"{k}={quote(v, safe='')}" for k, v in (("$orderby", orderby), ("$top", top), ("$skip", skip)))
    assert_200_or_400(client.get("/query/v3/", QUERY_STRING=string))


@pytest.mark.parametrize("text", VALID)
def test_the_seed_filters_are_valid(client, data, text):
    response = client.get("/query/v2/", QUERY_STRING="$filter=" + quote(text, safe=""))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "text",
    [
        "count mul 2147483647 mul 2147483647 gt 0",
        "count mul 4611686018427387904 gt 0",
        "ratio mul 1e300 gt 0",
        "ratio mul ratio gt 0",
        "ratio mul 1e20 mul 1e20 mul 1e20 gt 0",
        "ratio div 1e-20 div 1e-20 gt 0",
        "count div 0 eq 1",
        "ratio div 0.0 eq 1",
        "name eq '\x00'",
        "substring(name, 2147483648) eq ''",
        "(" * 2000 + "flag" + ")" * 2000,
        "not " * 2000 + "flag",
        " or ".join(["flag"] * 1000),
        "'" * 5000,
        "ratio eq X'1e308000000000002726'",
        "ratio eq 1e308000000000002726",
        "count eq 1e308000000000002726",
        "ratio eq 1e308000000000002726m",
        "ratio eq 9e999999999999999999999",
        "ratio eq 1E-308000000000002726",
        "count eq 1e308000000000002726L",
        "ratio eq 1e308000000000002726d",
        "ratio eq 1e308000000000002726f",
    ],
)
def test_hostile_filters(client, data, text):
    assert_200_or_400(client.get("/query/v3/", QUERY_STRING="$filter=" + quote(text, safe="")))


def test_error_body_names_option_position_and_expectation(client, data):
    response = client.get("/query/v3/", QUERY_STRING="$filter=" + quote("count eq 'abc'"))
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Cannot compare an integer with a string in $filter at position 9",
        "option": "$filter", "position": 9, "expected": "an integer",
    }


def test_a_range_error_leaves_the_transaction_usable(client, data):
    response = client.get("/query/v3/", QUERY_STRING="$filter=" + quote("ratio mul ratio gt 0"))
    assert_200_or_400(response)
    assert client.get("/query/v3/").status_code == 200
