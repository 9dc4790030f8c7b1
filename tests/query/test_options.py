"""parse_query and the generations' page sizes: every query option, its errors and the page-size policy."""

from urllib.parse import quote

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import QueryDict
from django.test import override_settings

from django_offline_sync.exceptions import ODataError
from django_offline_sync.generations import policy_for
from django_offline_sync.query import parse_query


def query(string, field_map):
    return parse_query(QueryDict(string), field_map)


def error(string, field_map):
    with pytest.raises(ODataError) as info:
        query(string, field_map)
    assert info.value.status_code == 400
    assert info.value.default_code == "invalid_query"
    return info.value


def test_defaults_when_no_options_are_sent(field_map):
    q = query("", field_map)
    assert (q.filter, q.order_by, q.order_terms, q.skip, q.top, q.select, q.count, q.include_deleted) == (
        None, ["id"], (), 0, None, None, False, False
    )


def test_all_options_together(field_map):
    q = query("$filter=count gt 1&$orderby=updatedAt&$skip=5&$top=7&$select=id,NAME,__updatedAt"
              "&$count=true&__includedeleted=true", field_map)
    assert q.filter is not None and q.filter_node is not None
    assert q.order_by == ["updated_at", "id"]
    assert len(q.order_terms) == 1 and q.order_terms[0].expression.name == "updatedAt"
    assert (q.skip, q.top, q.select, q.count, q.include_deleted) == (5, 7, ("id", "name", "updatedAt"), True, True)


def test_filter_errors_name_the_option_position_and_expectation(field_map):
    exc = error("$filter=count eq 'abc'", field_map)
    assert exc.as_dict() == {"option": "$filter", "position": 9, "expected": "an integer"}
    assert "$filter" in str(exc.detail) and "position 9" in str(exc.detail)
    exc = error("$filter=count eq", field_map)
    assert (exc.option, exc.position) == ("$filter", 8)
    exc = error("$filter=frobnicate(name)", field_map)
    assert (exc.option, exc.position) == ("$filter", 0)


@override_settings(OFFLINE_SYNC={"MAX_FILTER_LENGTH": 20, "MAX_FILTER_DEPTH": 3, "MAX_FILTER_NODES": 5})
def test_filter_limits_come_from_settings(field_map):
    assert error("$filter=name eq 'aaaaaaaaaaaaaaaaaaaa'", field_map).position == 20
    assert error("$filter=not not not flag", field_map).option == "$filter"
    assert error("$filter=count in (1,2,3,4,5)", field_map).option == "$filter"
    query("$filter=count in (1,2)", field_map)


def test_orderby_errors(field_map):
    exc = error("$orderby=name,nope", field_map)
    assert (exc.option, exc.position) == ("$orderby", 5)
    assert error("$orderby=name sideways", field_map).position == 5


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "1e3", "99999999999999999999"])
def test_skip_must_be_a_non_negative_integer(field_map, value):
    assert error(f"$skip={value}", field_map).option == "$skip"


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", ""])
def test_top_must_be_a_non_negative_integer(field_map, value):
    assert error(f"$top={value}", field_map).option == "$top"


@pytest.mark.parametrize("option", ["$skip", "$top"])
def test_an_integer_option_of_more_digits_than_int_reads(field_map, option):
    # Python's int() refuses more than 4300 digits (sys.get_int_max_str_digits), leading zeros
    # included: either was a 500 from one query string.
    exc = error(f"{option}={'9' * 5000}", field_map)
    assert (exc.option, exc.position) == (option, 0) and "at most" in str(exc.detail)
    name = option[1:]
    assert getattr(query(f"{option}={'0' * 5000}1", field_map), name) == 1
    assert getattr(query(quote(f"{option}= +{'0' * 4400}7 ", safe="$="), field_map), name) == 7


def test_top_is_returned_as_sent(field_map):
    assert query("$top=100000", field_map).top == 100000
    assert query("$top=0", field_map).top == 0


def test_select(field_map):
    assert query("$select=*", field_map).select is None
    assert query("$select=id,id,Name", field_map).select == ("id", "name")
    assert query("$select=__version,__deleted", field_map).select == ("version", "deleted")
    exc = error("$select=id,nope", field_map)
    assert (exc.option, exc.position) == ("$select", 3)
    assert error("$select=id,,name", field_map).position == 3


@pytest.mark.parametrize(
    "string, count",
    [
        ("$inlinecount=allpages", True),
        ("$inlinecount=AllPages", True),
        ("$inlinecount=none", False),
        ("$count=true", True),
        ("$count=True", True),
        ("$count=false", False),
        ("", False),
    ],
)
def test_count_options(field_map, string, count):
    assert query(string, field_map).count is count


def test_bad_count_values_are_rejected(field_map):
    assert error("$inlinecount=some", field_map).option == "$inlinecount"
    assert error("$count=maybe", field_map).option == "$count"


@pytest.mark.parametrize(
    "string, included",
    [
        ("__includeDeleted=true", True),
        ("__includedeleted=true", True),
        ("__INCLUDEDELETED=TRUE", True),
        ("__includeDeleted=1", True),
        ("__includeDeleted=false", False),
        ("__includeDeleted=0", False),
        ("__includeDeleted=", False),
        ("", False),
    ],
)
def test_include_deleted(field_map, string, included):
    assert query(string, field_map).include_deleted is included


def test_include_deleted_rejects_other_values_naming_the_parameter_as_sent(field_map):
    assert error("__includedeleted=yes", field_map).option == "__includedeleted"


def test_no_generation_yet_is_the_v2_policy_and_an_unknown_one_a_configuration_error():
    assert policy_for(None).name == "v2"
    with pytest.raises(ImproperlyConfigured, match="v9"):
        policy_for("v9")


@pytest.mark.parametrize(
    "generation, top, take",
    [
        ("v1", None, 50), ("v1", 10, 10), ("v1", 1000, 1000), ("v1", 0, 0),
        ("v2", None, 50), ("v2", 10, 10), ("v2", 1000, 1000),
        ("v3", None, 100), ("v3", 10, 10), ("v3", 128000, 100),
    ],
)
def test_page_size_per_generation(generation, top, take):
    assert policy_for(generation).page_size(top) == take


@pytest.mark.parametrize("generation, top", [("v1", 1001), ("v2", 1001), ("v3", 128001), ("v2", -1)])
def test_page_size_above_the_maximum_is_a_400(generation, top):
    with pytest.raises(ODataError) as info:
        policy_for(generation).page_size(top)
    assert info.value.option == "$top"


@override_settings(OFFLINE_SYNC={"PAGE_SIZE": 5, "MAX_TOP": 20, "V3_PAGE_SIZE": 7, "V3_MAX_TOP": 9})
def test_page_size_follows_settings():
    assert policy_for("v2").page_size(None) == 5
    assert policy_for("v2").page_size(20) == 20
    assert policy_for("v1").page_size(20) == 20
    assert policy_for("v3").page_size(None) == 7
    with pytest.raises(ODataError):
        policy_for("v1").page_size(21)
    with pytest.raises(ODataError):
        policy_for("v3").page_size(10)


@pytest.mark.parametrize("value", ["\x1c0", "0\x1f", "\u0663", "1\u00a0"])
def test_integer_options_with_non_ascii_spaces_or_digits_are_a_400_not_a_500(field_map, value):
    assert error(f"$skip={quote(value)}", field_map).option == "$skip"


def test_a_kept_orderby_gives_the_same_ordering_and_a_list_of_its_own(field_map):
    # The second parse serves the $orderby kept by the first; a caller's list never aliases it.
    first = parse_query(QueryDict("$orderby=updatedAt desc,id"), field_map)
    second = parse_query(QueryDict("$orderby=updatedAt desc,id"), field_map)
    assert (second.order_by, second.order_terms) == (first.order_by, first.order_terms)
    assert second.order_by is not first.order_by
    second.order_by.append("mutated")
    assert parse_query(QueryDict("$orderby=updatedAt desc,id"), field_map).order_by == first.order_by
