"""The static bound on string growth: ``MAX_FILTER_STRING``.

A 2 KB anonymous ``$filter`` of three nested ``replace()`` calls grew one string a thousand
times per level inside the database: 17.8 s, then PostgreSQL ran out of memory (a 500).
The length, depth and node limits cannot see it, so every string-valued expression now
carries its worst-case length (a column's ``max_length``, the largest body for a
``TextField``, a literal's own length) and a ``concat``/``replace`` whose result could exceed
the limit is a 400 naming the function and the limit, before any SQL runs.
"""

import time
from urllib.parse import quote

import pytest
from django.http import QueryDict
from django.test import override_settings

from django_offline_sync.exceptions import ODataError
from django_offline_sync.query import FieldMap, ODataLimitError, parse_filter, parse_orderby, parse_query
from django_offline_sync.query.translator import (
    DEFAULT_MAX_STRING,
    UNBOUNDED_STRING_LENGTH,
    translate_filter,
    translate_orderby,
)
from django_offline_sync.settings import validate
from example_project.tasks.models import Note
from tests.factories import TaskFactory
from tests.models import Item

A200, A1000 = "a" * 200, "a" * 1000
ATTACK = f"length(replace(replace(replace('{A200}','a','{A1000}'),'a','{A1000}'),'a','aaaaaaaaaa')) gt 0"


def refused(text, field_map, max_string):
    with pytest.raises(ODataLimitError) as caught:
        translate_filter(parse_filter(text), field_map, max_string=max_string)
    return caught.value


def accepted(text, field_map, max_string):
    translate_filter(parse_filter(text), field_map, max_string=max_string)


def test_the_replace_attack_is_refused_at_the_innermost_replace(field_map):
    exc = refused(ATTACK, field_map, DEFAULT_MAX_STRING)
    assert exc.position == ATTACK.index("replace('")
    assert exc.message == (
        "replace() could build a string of 200000 characters, more than the 65536 allowed (MAX_FILTER_STRING)"
    )


# Item.name is a CharField(max_length=200), Item.label a CharField(max_length=100).
@pytest.mark.parametrize(
    "text, worst",
    [
        ("replace(name, 'a', 'bb') eq 'x'", 400),  # every character matches: 200 * 2
        ("replace(name, 'ab', 'abc') eq 'x'", 300),  # at most 100 matches, each one longer
        ("replace(name, 'abc', 'x') eq 'x'", 200),  # shrinking never grows
        ("replace(name, '', 'xxxxxxxxxx') eq 'x'", 200),  # replacing '' changes nothing
        ("replace(name, label, 'bb') eq 'x'", 400),  # a column to find may be one character long
        ("replace(label, 'a', name) eq 'x'", 20000),  # replaced by the longest value of name
        ("concat(name, label) eq 'x'", 300),
        ("concat(name, name, 'xyz') eq 'x'", 403),
        ("concat(substring(name, 150), substring(label, 0, 3)) eq 'x'", 53),
        ("replace(substring(name, 0, 2), 'a', '" + "b" * 150 + "') eq 'x'", 300),
        ("tolower(concat(name, name)) eq toupper(trim(concat(label, label)))", 400),
        ("replace(concat(name, 'é'), 'a', 'bb') eq 'x'", 402),  # characters, not bytes
    ],
)
def test_worst_case_length_is_the_largest_string_the_expression_can_build(field_map, text, worst):
    accepted(text, field_map, worst)
    assert "allowed (MAX_FILTER_STRING)" in refused(text, field_map, worst - 1).message


def test_a_column_without_max_length_counts_as_unbounded_string_length():
    # It once counted as 4096 characters, which no write enforced (tests/query/test_search_cost.py):
    # now as the largest body, and one copy of it is free, so only what a filter adds counts.
    notes = FieldMap.for_model(Note)  # body is a TextField
    accepted("replace(body, 'a', 'b') eq 'x'", notes, DEFAULT_MAX_STRING)  # never grows
    accepted(f"concat(body, '{'b' * 100}') eq 'x'", notes, 100)
    assert "allowed (MAX_FILTER_STRING)" in refused(f"concat(body, '{'b' * 101}') eq 'x'", notes, 100).message
    exc = refused("replace(body, 'a', 'bb') eq 'x'", notes, DEFAULT_MAX_STRING)
    assert exc.message.startswith(
        f"replace() could build a string of {UNBOUNDED_STRING_LENGTH} characters more than a stored value"
    )


def test_functions_that_do_not_grow_pass_whatever_the_column_size(field_map):
    # A bare column, tolower/toupper/trim/substring: no growth, whatever the limit.
    accepted("tolower(trim(substring(name, 1))) eq 'x' and length(toupper(name)) gt 3", field_map, 10)


def test_orderby_expressions_are_bounded_too(field_map):
    terms = parse_orderby(f"replace(name, 'a', '{'b' * 50}')")
    with pytest.raises(ODataLimitError):
        translate_orderby(terms, field_map, max_string=1000)
    translate_orderby(terms, field_map)


@pytest.mark.parametrize("option", ["$filter", "$orderby"])
@override_settings(OFFLINE_SYNC={"MAX_FILTER_STRING": 300})
def test_the_limit_comes_from_max_filter_string(field_map, option):
    expression = "concat(name, label)" if option == "$orderby" else "concat(name, label) eq 'x'"
    parse_query(QueryDict(f"{option}={quote(expression)}"), field_map)
    too_long = expression.replace("label", "label, 'x'")
    with pytest.raises(ODataError) as caught:
        parse_query(QueryDict(f"{option}={quote(too_long)}"), field_map)
    assert caught.value.option == option and caught.value.position == 0
    assert "more than the 300 allowed (MAX_FILTER_STRING)" in str(caught.value.detail)


@pytest.mark.parametrize(
    "value, check_id", [(0, "offline_sync.E006"), (-5, "offline_sync.E006"), ("64k", "offline_sync.E002")]
)
def test_max_filter_string_must_be_a_positive_integer(value, check_id):
    loaded, problems = validate({"MAX_FILTER_STRING": value})
    assert [p.id for p in problems] == [check_id]
    assert loaded.MAX_FILTER_STRING == DEFAULT_MAX_STRING == 65536


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_the_replace_attack_is_a_quick_400_for_an_anonymous_client(request, generation):
    TaskFactory.create_batch(3)
    client = request.getfixturevalue(generation)
    started = time.monotonic()
    response = client.get("/tables/Task?$filter=" + quote(ATTACK, safe=""))
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "invalid_query" and body["option"] == "$filter"
    message = body["title"] if generation == "v3" else body["message"]
    assert "replace() could build a string of 200000 characters" in message and "MAX_FILTER_STRING" in message
    assert elapsed < 2, elapsed  # was 17.8 s and a 500 on PostgreSQL


@pytest.mark.django_db
def test_ordinary_string_functions_still_answer_over_http(v3):
    task = TaskFactory(text="Buy milk")
    text = "concat(replace(tolower(text), 'milk', 'bread'), '!') eq 'buy bread!'"
    response = v3.get("/tables/Task?$filter=" + quote(text, safe=""))
    assert [item["id"] for item in response.json()["items"]] == [task.id]


def test_item_field_lengths_are_what_the_cases_assume():
    fields = {f.name: f.max_length for f in Item._meta.get_fields() if hasattr(f, "max_length")}
    assert fields["name"] == 200 and fields["label"] == 100
