"""``parse_filter_reusing``: a text of a known shape gets exactly the tree ``parse_filter`` builds,
and every text it cannot rebuild goes the ordinary way with the ordinary error."""

from __future__ import annotations

import pytest

from django_offline_sync.query.errors import ODataSyntaxError
from django_offline_sync.query.parser import parse_filter
from django_offline_sync.query.reparse import filter_tree_cache, parse_filter_reusing

LIMITS = {"max_length": 4096, "max_depth": 32, "max_nodes": 512}


def reusing(text: str, **limits: int) -> object:
    return parse_filter_reusing(text, **{**LIMITS, **limits}, size=64)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    filter_tree_cache.clear()


@pytest.mark.parametrize(
    ("first", "others"),
    [
        ("(updatedAt ge datetimeoffset'2024-01-01T00:00:00.000Z')",
         ["(updatedAt ge datetimeoffset'2024-06-30T23:59:59.999Z')",
          "(updatedAt ge datetimeoffset'2024-06-30T23:59:59.9999999+02:00')",
          "(updatedAt ge datetimeoffset'2024-06-30T23:59Z')"]),
        ("text eq 'a' and (priority gt 2 or text ne 'b''c')",
         ["text eq '' and (priority gt 2 or text ne 'longer text here')",
          "text eq 'x''y''z' and (priority gt 2 or text ne 'q')"]),
        ("id in ('a', 'b') and not (text eq 'x')",
         ["id in ('aaaa', '') and not (text eq 'yyyyyy')"]),
        ("startswith(text, 'ab') and updatedAt lt datetime'2020-01-01T00:00:00Z'",
         ["startswith(text, 'abcdef') and updatedAt lt datetime'2021-12-31T10:00:00Z'"]),
        ("id eq guid'0f8fad5b-d9cb-469f-a165-70867728950e' or text eq 'z'",
         ["id eq guid'{0F8FAD5B-D9CB-469F-A165-70867728950E}' or text eq 'zz'"]),
        ("priority eq 5", ["priority eq 5"]),
    ],
)
def test_same_tree_as_parse_filter(first: str, others: list[str]) -> None:
    assert reusing(first) == parse_filter(first)
    for text in others:
        assert reusing(text) == parse_filter(text)
        assert reusing(text) == parse_filter(text)  # kept and served again
    assert len(filter_tree_cache) == 1


@pytest.mark.parametrize(
    "bad",
    [
        "(updatedAt ge datetimeoffset'2024-13-01T00:00:00.000Z')",  # a body the lexer refuses
        "(updatedAt ge datetimeoffset'2024-01-01T00:00:00\x00Z')",  # a forbidden character
        "(updatedAt ge datetimeoffset'" + "9" * 5000 + "')",  # over MAX_FILTER_LENGTH
    ],
)
def test_refused_bodies_raise_the_ordinary_error(bad: str) -> None:
    reusing("(updatedAt ge datetimeoffset'2024-01-01T00:00:00.000Z')")
    assert len(filter_tree_cache) == 1
    with pytest.raises(ODataSyntaxError) as ordinary:
        parse_filter(bad)
    with pytest.raises(ODataSyntaxError) as served:
        reusing(bad)
    assert (type(served.value), served.value.message, served.value.position, served.value.expected) == (
        type(ordinary.value), ordinary.value.message, ordinary.value.position, ordinary.value.expected)


def test_nothing_kept_for_a_text_that_does_not_parse() -> None:
    with pytest.raises(ODataSyntaxError):
        reusing("text eq 'a' and")
    assert len(filter_tree_cache) == 0


def test_cast_literals_are_never_rebuilt() -> None:
    # cast() makes a new literal from the quoted one, and may refuse its value.
    text = "id eq cast('0f8fad5b-d9cb-469f-a165-70867728950e', Edm.Guid)"
    assert reusing(text) == parse_filter(text)
    assert len(filter_tree_cache) == 0
    with pytest.raises(ODataSyntaxError):
        reusing("id eq cast('not a guid', Edm.Guid)")


def test_no_cache_when_size_is_zero() -> None:
    text = "text eq 'a'"
    assert parse_filter_reusing(text, **LIMITS, size=0) == parse_filter(text)
    assert len(filter_tree_cache) == 0
