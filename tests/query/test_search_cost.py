"""The static bound on string searches (``MAX_FILTER_SEARCH``) and honest ``TextField`` lengths.

An anonymous client stored a 900 KB Note body (writes take up to ``MAX_BODY_BYTES``) and sent
``contains(concat(body × 8), concat(substring(body,0,400000),'b',substring(body,0,400000)))``:
SQLite answered after 31 s, PostgreSQL was still running at 88 s, past a 10 s
``QUERY_TIMEOUT_MS``. A naive ``instr``/``strpos`` costs the searched length times the sought
one and neither SQLite's progress handler nor ``statement_timeout`` can stop it inside a row;
``MAX_FILTER_STRING`` did not see it because a ``TextField`` counted as 4096 characters. Now a
column without ``max_length`` counts as the largest body the endpoints accept, one copy of it
is free of ``MAX_FILTER_STRING`` (``concat(body, '!')`` still works), and the searches of one
expression may compare at most ``MAX_FILTER_SEARCH`` characters per row, all before any SQL.
"""

import time
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_offline_sync.query import FieldMap, ODataLimitError, parse_filter, parse_orderby
from django_offline_sync.query.translator import (
    DEFAULT_MAX_SEARCH,
    UNBOUNDED_STRING_LENGTH,
    translate_filter,
    translate_orderby,
)
from django_offline_sync.settings import DEFAULTS, validate
from example_project.tasks.models import Note, Task
from tests.factories import TaskFactory

NOTES = FieldMap.for_model(Note)  # body is a TextField
TASKS = FieldMap.for_model(Task)  # text is a CharField(max_length=500)
SOUGHT = "concat(substring(body,0,400000),'b',substring(body,0,400000))"
ATTACK = f"id eq 'big1' and contains(concat(body,body,body,body,body,body,body,body), {SOUGHT})"
# The PostgreSQL variants of the report: two copies, and no concat() at all.
ATTACK_TWO = (
    "id eq 'big1' and contains(concat(body,body), concat(substring(body,0,100000),'b',substring(body,0,100000)))"
)
ATTACK_SEARCH_ONLY = "id eq 'big1' and contains(body, substring(body, 0, 400000))"


def refused(text, fields=NOTES, **limits):
    with pytest.raises(ODataLimitError) as caught:
        translate_filter(parse_filter(text), fields, **limits)
    return caught.value


def accepted(text, fields=NOTES, **limits):
    translate_filter(parse_filter(text), fields, **limits)


def test_the_default_text_length_is_the_largest_body_the_defaults_accept():
    assert DEFAULTS.MAX_BODY_BYTES == UNBOUNDED_STRING_LENGTH
    assert DEFAULT_MAX_SEARCH == DEFAULTS.MAX_FILTER_SEARCH == 2**28


def test_the_attack_is_refused_at_its_first_concat():
    exc = refused(ATTACK)
    assert exc.position == ATTACK.index("concat(body")
    assert "MAX_FILTER_STRING" in exc.message
    assert exc.message.startswith(f"concat() could build a string of {7 * UNBOUNDED_STRING_LENGTH} characters more")
    assert refused(ATTACK_TWO).position == ATTACK_TWO.index("concat(body")


def test_a_search_for_a_long_string_built_from_a_column_is_refused_at_the_search():
    exc = refused(ATTACK_SEARCH_ONLY)
    assert exc.position == ATTACK_SEARCH_ONLY.index("contains(")
    assert "(MAX_FILTER_SEARCH)" in exc.message and f"the {DEFAULT_MAX_SEARCH} allowed" in exc.message
    assert "a shorter string to search for" in exc.expected


@pytest.mark.parametrize(
    "text",
    [
        "contains(body, body)",
        "substringof(body, body)",
        "indexof(body, substring(body, 1, 1000)) ge 0",
        "contains(body, tolower(body))",
        "length(replace(body, substring(body, 0, 1000), '')) gt 0",
        "contains(body, '" + "x" * 300 + "')",  # 1 MiB searched for 300 characters: 315 million
    ],
)
def test_searches_whose_worst_case_is_too_slow_are_refused(text):
    exc = refused(text if " ge " in text or " gt " in text else text + " eq true")
    assert "MAX_FILTER_SEARCH" in exc.message


def test_the_searches_of_one_expression_add_up():
    one = "contains(body, '" + "x" * 120 + "')"  # 1 MiB * 120: 126 million
    accepted(f"{one} or {one}")
    exc = refused(f"{one} or {one} or {one}")
    assert exc.position == len(f"{one} or {one} or ")
    assert f"more than the {DEFAULT_MAX_SEARCH} allowed" in exc.message


@pytest.mark.parametrize(
    "text",
    [
        # What the Azure clients send, over the largest text and a CharField.
        "substringof('milk', body)",
        "substringof('milk', tolower(body)) and substringof('bread', tolower(body))",
        "contains(body, 'milk')",
        "contains(tolower(body), 'milk') or contains(toupper(body), 'MILK')",
        "startswith(body, 'abc') and endswith(body, 'xyz')",
        "startswith(body, '" + "x" * 4000 + "')",  # a prefix is compared once: linear work
        "tolower(body) eq 'x'",
        "trim(body) ne '' and length(body) gt 3",
        "indexof(body, 'milk') eq 4",
        "concat(body, '!') eq 'x'",
        "concat('note: ', tolower(body), '!') eq 'x'",
        "replace(body, 'a', 'b') eq 'x'",
        "replace(body, 'milk', 'cow') eq 'x'",
        "concat(substring(body, 0, 100), body) eq 'x'",
        "contains(body, '" + "x" * 100 + "')",
        "contains(substring(body, 0, 1000), substring(body, 1000, 1000))",
    ],
)
def test_ordinary_filters_on_a_text_field_pass(text):
    accepted(text)


@pytest.mark.parametrize(
    "text",
    [
        "substringof('milk', text)",
        "contains(text, 'milk') and startswith(text, 'abc')",
        "tolower(text) eq 'x'",
        "indexof(text, 'k') eq 3",
        "concat(text, 'x') eq 'y'",
        "contains(tolower(text), tolower(text))",  # a column sought in a CharField: 500 * 500
        "contains(replace(text, 'a', '" + "a" * 131 + "'), '" + "a" * 3000 + "b')",  # tests/test_query_timeout.py
    ],
)
def test_ordinary_filters_on_a_char_field_pass(text):
    accepted(text + (" eq true" if text.startswith("contains(tolower(text)") else ""), TASKS)


@pytest.mark.parametrize(
    "text, cost",
    [
        ("contains(text, 'abc')", 500 * 3),
        ("indexof(text, text) eq 0", 500 * 500),
        ("contains('abc', text)", 3 * 3),  # a sought string longer than the text fails at once
        ("contains(text, '')", 0),
        ("replace(text, 'ab', 'x') eq 'y'", 500 * 2),
        ("contains(replace(text, 'a', 'aa'), 'xyz')", 500 * 1 + 1000 * 3),
    ],
)
def test_the_cost_is_the_searched_length_times_the_sought_one(text, cost):
    accepted(text, TASKS, max_search=cost)
    if cost:
        assert "MAX_FILTER_SEARCH" in refused(text, TASKS, max_search=cost - 1).message


def test_a_second_copy_of_a_stored_value_counts_against_max_filter_string():
    accepted("concat(body, 'x') eq 'y'", text_length=10**6, max_string=1)
    exc = refused("concat(body, 'xy') eq 'y'", text_length=10**6, max_string=1)
    assert exc.message == (
        "concat() could build a string of 2 characters more than a stored value, more than the 1 allowed "
        "(MAX_FILTER_STRING)"
    )
    assert "MAX_FILTER_STRING" in refused("replace(body, 'a', 'aa') eq 'y'", text_length=1000, max_string=999).message
    accepted("replace(body, 'a', 'aa') eq 'y'", text_length=1000, max_string=1000)


def test_orderby_searches_are_bounded_too():
    with pytest.raises(ODataLimitError, match="MAX_FILTER_SEARCH"):
        translate_orderby(parse_orderby("indexof(body, substring(body, 0, 5000)), id"), NOTES)
    translate_orderby(parse_orderby("indexof(body, 'milk') desc"), NOTES)


@pytest.mark.parametrize(
    "value, check_id", [(0, "offline_sync.E006"), (-5, "offline_sync.E006"), ("lots", "offline_sync.E002")]
)
def test_max_filter_search_must_be_a_positive_integer(value, check_id):
    loaded, problems = validate({"MAX_FILTER_SEARCH": value})
    assert [p.id for p in problems] == [check_id]
    assert loaded.MAX_FILTER_SEARCH == DEFAULT_MAX_SEARCH


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def big_note(db, v3):
    """The attacker's note, stored the way the attacker stored it: a 900 KB body over POST."""
    task = TaskFactory()
    response = v3.post_json("/tables/Note", {"id": "big1", "taskId": task.id, "body": "a" * 900_000})
    assert response.status_code == 201, response.content[:500]
    return Note.objects.get(pk="big1")


@pytest.mark.django_db
@pytest.mark.parametrize("attack", [ATTACK, ATTACK_TWO, ATTACK_SEARCH_ONLY])
def test_the_attack_is_a_quick_400_and_runs_nothing_on_the_table(big_note, v3, attack):
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        response = v3.get("/tables/Note?$select=id&$filter=" + quote(attack, safe=""))
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errorCode"] == "invalid_query" and body["option"] == "$filter"
    assert body["position"] == (attack.index("contains(") if attack is ATTACK_SEARCH_ONLY else attack.index("concat("))
    assert "MAX_FILTER_S" in body["title"] and body["expected"]
    assert not [q["sql"] for q in queries if "tasks_note" in q["sql"]]
    assert elapsed < 2, elapsed  # was 31 s on SQLite, over 88 s on PostgreSQL


@pytest.mark.django_db
def test_the_refusal_names_the_limit_in_v2_too(big_note, v2):
    response = v2.get("/tables/Note?$filter=" + quote(ATTACK_SEARCH_ONLY, safe=""))
    assert response.status_code == 400
    assert "MAX_FILTER_SEARCH" in response.json()["message"]


@pytest.mark.django_db
def test_ordinary_filters_still_find_the_big_note(big_note, v3):
    other = Note.objects.create(id="small", task=big_note.task, body="Buy milk and bread")
    cases = {
        "contains(body, 'milk')": ["small"],
        "substringof('aaaa', body)": ["big1"],
        "startswith(body, 'aaa') or endswith(body, 'bread')": ["big1", "small"],
        "indexof(body, 'milk') eq 4": ["small"],
        "tolower(body) eq 'buy milk and bread'": ["small"],
        "concat(body, '!') eq 'Buy milk and bread!'": ["small"],
        "contains(tolower(body), 'milk') and contains(toupper(body), 'BREAD')": ["small"],
        "replace(body, 'milk', 'tea') eq 'Buy tea and bread'": ["small"],
        "length(body) gt 100000": ["big1"],
    }
    for text, expected in cases.items():
        response = v3.get("/tables/Note?$select=id&$filter=" + quote(text, safe=""))
        assert response.status_code == 200, (text, response.content)
        assert sorted(item["id"] for item in response.json()["items"]) == expected, text
    assert other.pk == "small"


@pytest.mark.django_db
def test_smaller_body_limits_make_text_columns_cheaper(v3):
    # A site that accepts 64 KB bodies may search its text columns for longer strings.
    text = "contains(body, '" + "x" * 1000 + "')"  # 1 MiB * 1000 by default: refused
    assert v3.get("/tables/Note?$filter=" + quote(text, safe="")).status_code == 400
    with override_settings(OFFLINE_SYNC={"MAX_BODY_BYTES": 65536}):
        assert v3.get("/tables/Note?$filter=" + quote(text, safe="")).status_code == 200


@pytest.mark.django_db
@override_settings(OFFLINE_SYNC={"MAX_FILTER_SEARCH": 1000})
def test_the_limit_comes_from_max_filter_search(v3):
    ok = v3.get("/tables/Task?$filter=" + quote("contains(text, 'ab')", safe=""))  # 500 * 2
    assert ok.status_code == 200
    too_much = v3.get("/tables/Task?$filter=" + quote("contains(text, 'abc')", safe=""))
    assert too_much.status_code == 400
    assert "more than the 1000 allowed (MAX_FILTER_SEARCH)" in too_much.json()["title"]
    ordered = v3.get("/tables/Task?$orderby=" + quote("indexof(text, 'abc')", safe=""))
    assert ordered.status_code == 400 and ordered.json()["option"] == "$orderby"


def test_a_text_column_can_be_searched_for_a_literal_of_up_to_256_characters_by_default():
    # 1 MiB (MAX_BODY_BYTES) * 256 = 2**28 comparisons, the default MAX_FILTER_SEARCH.
    accepted("contains(body, '" + "x" * 256 + "')")
    exc = refused("contains(body, '" + "x" * 257 + "')")
    assert "MAX_FILTER_SEARCH" in exc.message
