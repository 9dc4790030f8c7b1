"""Comparison symbols and ``datetimeoffset(…)`` as old articles print them.

``$filter=(__updatedAt >= datetimeoffset(2015-01-01T00:00:00Z))`` appears in Mobile Services
articles: ``>= <= > < = !=`` for ``ge le gt lt eq ne``, and the quoted literal written as a call.
No client sends either and neither was valid, so both now mean what they obviously mean,
the same tree as the canonical spelling, down to the v1/v2 pull boundary.
"""

import datetime as dt
from urllib.parse import quote

import pytest
from django.db.models import QuerySet

from django_offline_sync.generations import policy_for
from django_offline_sync.query import FieldMap, ODataSyntaxError, parse_filter, parse_orderby, parse_query
from django_offline_sync.query.lexer import tokenize
from django_offline_sync.query.pull import pull_boundary, pull_floor
from example_project.tasks.models import Task
from tests.factories import TaskFactory

from .test_parser import shape

UTC = dt.UTC
ARTICLE = "(__updatedAt >= datetimeoffset(2015-01-01T00:00:00Z))"
ISO = "an ISO 8601 date and time such as 2024-01-02T03:04:05.678+00:00"


@pytest.mark.parametrize(
    "symbols, words",
    [
        ("a >= 1", "a ge 1"),
        ("a<=1", "a le 1"),
        ("a > -1", "a gt -1"),
        ("a<1", "a lt 1"),
        ("a = 'x'", "a eq 'x'"),
        ("a != null", "a ne null"),
        ("a>=1 and b<2 or c=3", "a ge 1 and b lt 2 or c eq 3"),
        ("a add 1 > b mul 2", "a add 1 gt b mul 2"),
        ("a = 1 = true", "a eq 1 eq true"),  # precedence is the word's: '=' below '<'
        ("a < 1 = b > 2", "a lt 1 eq b gt 2"),
        ("not a = true", "not a eq true"),
        ("length(name)>=3", "length(name) ge 3"),
    ],
)
def test_comparison_symbols_build_the_same_tree_as_the_operator_words(symbols, words):
    assert shape(parse_filter(symbols)) == shape(parse_filter(words))


@pytest.mark.parametrize(
    "call, quoted",
    [
        ("datetimeoffset(2015-01-01T00:00:00Z)", "datetimeoffset'2015-01-01T00:00:00Z'"),
        ("datetime(2015-01-01T00:00:00.123Z)", "datetime'2015-01-01T00:00:00.123Z'"),
        ("DateTimeOffset( 2015-01-01T02:00:00+02:00 )", "datetimeoffset'2015-01-01T00:00:00Z'"),
        ("datetimeoffset (2015-01-01T00:00:00.1234567+00:00)", "datetimeoffset'2015-01-01T00:00:00.123Z'"),
    ],
)
def test_datetimeoffset_call_form_is_the_quoted_literal(call, quoted):
    assert shape(parse_filter(f"x eq {call}")) == shape(parse_filter(f"x eq {quoted}"))
    [literal, eof] = tokenize(call)
    assert literal.kind == "literal" and literal.text == call and eof.position == len(call)


def test_the_articles_filter_parses_to_the_v1_pull_condition():
    node = parse_filter(ARTICLE)
    assert shape(node) == shape(parse_filter("(__updatedAt ge datetimeoffset'2015-01-01T00:00:00.000Z')"))
    assert pull_boundary(node) == dt.datetime(2015, 1, 1, tzinfo=UTC)
    assert pull_boundary(parse_filter(f"complete = false and {ARTICLE}")) == dt.datetime(2015, 1, 1, tzinfo=UTC)


def test_the_pull_floor_is_a_delta_token_in_either_generations_shape():
    """``ge`` (v1/v2) and ``gt`` (v3): the stamp a read replica must show to answer the query."""
    t, v3 = dt.datetime(2015, 1, 1, 0, 0, 0, 123000, tzinfo=UTC), "cast(2015-01-01T00:00:00.123Z,Edm.DateTimeOffset)"
    assert pull_floor(parse_filter(ARTICLE)) == dt.datetime(2015, 1, 1, tzinfo=UTC)
    assert pull_floor(parse_filter(f"(updatedAt gt {v3})")) == t
    assert pull_floor(parse_filter(f"complete eq false and updatedAt gt {v3}")) == t
    assert pull_boundary(parse_filter(f"updatedAt gt {v3}")) is None
    for other in (f"updatedAt lt {v3}", "complete eq false", f"createdAt gt {v3}", f"updatedAt gt {v3} or complete"):
        assert pull_floor(parse_filter(other)) is None
    assert pull_floor(None) is None


def test_the_pull_boundary_is_found_through_parse_query_and_the_generations():
    fields = FieldMap.for_model(Task)
    for generation, name in (("v1", "__updatedAt"), ("v2", "updatedAt")):
        params = {"$filter": f"({name} >= datetimeoffset(2015-01-01T00:00:00Z))", "__includeDeleted": "true"}
        query = parse_query(params, fields)
        assert policy_for(generation).pull_boundary(query) == dt.datetime(2015, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, position, expected",
    [
        ("a >", 3, "a property, literal, function call or '('"),
        (">= a", 0, "a property, literal, function call or '('"),
        ("a == 1", 3, "a property, literal, function call or '('"),
        ("a <> 1", 3, "a property, literal, function call or '('"),
        ("a ! 1", 2, "a property, literal, function, operator or parenthesis"),
        ("a eq datetimeoffset(2015-13-01T00:00:00Z)", 20, ISO),
        ("a eq datetimeoffset('2015-01-01T00:00:00Z')", 20, ISO),
        ("a eq datetime(2015-01-01T00:00:00Z", 34, "')'"),
        ("a eq datetimeoffset()", 20, ISO),
    ],
)
def test_malformed_symbols_and_call_forms_are_positioned_errors(text, position, expected):
    with pytest.raises(ODataSyntaxError) as caught:
        parse_filter(text)
    assert (caught.value.position, caught.value.expected) == (position, expected)


def test_symbols_work_in_orderby_expressions():
    [term] = parse_orderby("priority > 2 desc")
    assert shape(term.expression) == "(gt priority 2)" and term.descending


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def stamped(db):
    """Three tasks at 2014, 2015 and 2016 New Year, and their ids in that order."""
    tasks = [TaskFactory(text=f"t{i}", priority=i) for i in range(3)]
    for year, task in zip((2014, 2015, 2016), tasks):
        QuerySet(Task).filter(pk=task.pk).update(updated_at=dt.datetime(year, 1, 1, tzinfo=UTC))
    return [t.id for t in tasks]


def ids(response, generation):
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["items"] if generation == "v3" else body
    return [row["id"] for row in rows]


@pytest.mark.parametrize(
    "generation, symbols, words",
    [
        ("v1", ARTICLE, "(__updatedAt ge datetimeoffset'2015-01-01T00:00:00Z')"),
        ("v2", "(updatedAt >= datetimeoffset(2015-01-01T00:00Z))", "(updatedAt ge datetimeoffset'2015-01-01T00:00Z')"),
        (
            "v2",
            "updatedAt < datetime(2016-01-01T00:00:00Z) and priority != 0",
            "updatedAt lt datetime'2016-01-01T00:00:00Z' and priority ne 0",
        ),
        ("v3", "priority > 0 and priority <= 2 and text = 't2'", "priority gt 0 and priority le 2 and text eq 't2'"),
    ],
)
def test_symbol_filters_answer_like_their_canonical_spelling_when_sent(
    request, stamped, generation, symbols, words
):
    client = request.getfixturevalue(generation)
    order = "&$orderby=" + ("__updatedAt" if generation == "v1" else "updatedAt")
    got = ids(client.get("/tables/Task?$filter=" + quote(symbols, safe="") + order), generation)
    want = ids(client.get("/tables/Task?$filter=" + quote(words, safe="") + order), generation)
    assert got == want and got


def test_the_articles_pull_pages_with_skip_from_its_boundary(v1, stamped):
    # A v1 pull's $skip is applied past the boundary stamp (query.pull.past_boundary) only when
    # the tree has the pull shape; the article's spelling must take the same path.
    url = "/tables/Task?$filter=" + quote(ARTICLE, safe="") + "&$orderby=__updatedAt&$top=1&__includeDeleted=true"
    assert ids(v1.get(url), "v1") == [stamped[1]]
    assert ids(v1.get(url + "&$skip=1"), "v1") == [stamped[2]]


def test_a_bad_symbol_is_a_positioned_400_over_http(v2, stamped):
    response = v2.get("/tables/Task?$filter=" + quote("priority => 1", safe=""))
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "invalid_query" and body["position"] == 10
