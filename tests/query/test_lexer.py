"""Lexer: every literal form the three client generations send, with positions."""

import datetime as dt
import decimal
import uuid

import pytest

from django_offline_sync.query.errors import ODataSyntaxError
from django_offline_sync.query.lexer import tokenize

UTC = dt.UTC
INSTANT = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def literal(text):
    tokens = tokenize(text)
    assert [t.kind for t in tokens] == ["literal", "eof"], tokens
    return tokens[0].literal


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("'abc'", "string", "abc"),
        ("'it''s'", "string", "it's"),
        ("''", "string", ""),
        ("'Émile ✓'", "string", "Émile ✓"),
        ("42", "int", 42),
        ("-42", "int", -42),
        ("42L", "int", 42),
        ("42l", "int", 42),
        ("9223372036854775807", "int", 2**63 - 1),
        ("1.5", "float", 1.5),
        ("1.5f", "float", 1.5),
        ("1.5F", "float", 1.5),
        ("1.5d", "float", 1.5),
        ("2.5E0", "float", 2.5),
        ("1e3", "float", 1000.0),
        ("3f", "float", 3.0),
        ("1.5M", "decimal", decimal.Decimal("1.5")),
        ("1.5m", "decimal", decimal.Decimal("1.5")),
        ("2M", "decimal", decimal.Decimal("2")),
        ("-0.25M", "decimal", decimal.Decimal("-0.25")),
        # v1/v2 forms
        ("datetime'2024-01-02T03:04:05.678Z'", "datetime", INSTANT),
        ("datetime'2024-01-02T03:04:05Z'", "datetime", INSTANT.replace(microsecond=0)),
        ("datetimeoffset'2024-01-02T03:04:05.678Z'", "datetime", INSTANT),
        # NETCLI: .NET "o" format, 7 digits and an offset; truncated to the millisecond
        ("datetimeoffset'2024-01-02T03:04:05.6789999+00:00'", "datetime", INSTANT),
        ("datetimeoffset'2024-01-02T04:04:05.678+01:00'", "datetime", INSTANT),
        ("datetimeoffset'2024-01-01T22:04:05.678-05:00'", "datetime", INSTANT),
        ("DateTimeOffset'2024-01-02T03:04:05.678Z'", "datetime", INSTANT),
        ("datetime'2024-01-02T03:04'", "datetime", INSTANT.replace(second=0, microsecond=0)),
        ("guid'0f8fad5b-d9cb-469f-a165-70867728950e'", "guid", uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")),
        ("X'00ff'", "binary", b"\x00\xff"),
        ("x'00FF'", "binary", b"\x00\xff"),
        ("binary'AAAAAAAAJyY='", "binary", bytes.fromhex("000000000000 2726".replace(" ", ""))),
        ("time'03:04:05'", "time", dt.time(3, 4, 5)),
        # v3 bare forms (inside cast(…) or on their own)
        ("2024-01-02T03:04:05.678Z", "datetime", INSTANT),
        ("2024-01-02T03:04:05.678+00:00", "datetime", INSTANT),
        ("2024-01-02", "date", dt.date(2024, 1, 2)),
        ("03:04:05.678", "time", dt.time(3, 4, 5, 678000)),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", "guid", uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")),
        ("12345678-d9cb-469f-a165-70867728950e", "guid", uuid.UUID("12345678-d9cb-469f-a165-70867728950e")),
    ],
)
def test_literal_forms_convert_to_python_values(text, kind, value):
    token = literal(text)
    assert (token.kind, token.value) == (kind, value)


def test_tokens_carry_their_positions():
    tokens = tokenize("name eq  'x' and (count gt 1)")
    assert [(t.kind, t.position) for t in tokens] == [
        ("ident", 0), ("ident", 5), ("literal", 9), ("ident", 13), ("(", 17),
        ("ident", 18), ("ident", 24), ("literal", 27), (")", 28), ("eof", 29),
    ]


def test_v1_system_names_and_dotted_names_are_identifiers():
    assert [t.text for t in tokenize("__updatedAt Edm.DateTimeOffset")][:2] == ["__updatedAt", "Edm.DateTimeOffset"]


@pytest.mark.parametrize(
    "text, position",
    [
        ("'abc", 4),
        ("name eq 'abc", 12),
        ("a eq #", 5),
        ("a eq ;", 5),
        ("datetime'yesterday'", 9),
        ("datetime'2024-13-02T00:00:00Z'", 9),
        ("guid'xyz'", 5),
        ("X'abc'", 2),
        ("binary'***'", 7),
        ("99999999999999999999", 0),
        ("1e999", 0),
        ("1.5L", 0),
        ("a eq '\x00'", 6),
        ("a eq '\ud800'", 6),
        ("a eq 1e-999", 5),
    ],
)
def test_malformed_input_raises_positioned_errors(text, position):
    with pytest.raises(ODataSyntaxError) as info:
        tokenize(text)
    assert info.value.position == position
    assert info.value.expected


@pytest.mark.parametrize(
    "text", ["datetime'9999-12-31T23:59:59.999-14:00'", "datetimeoffset'0001-01-01T00:00:00+01:00'"]
)
def test_a_well_formed_instant_outside_the_years_1_to_9999_in_utc_is_called_out_of_range(text):
    with pytest.raises(ODataSyntaxError) as info:
        tokenize(text)
    assert "out of range" in str(info.value) and "Malformed" not in str(info.value)
    assert info.value.position == text.index("'") + 1
