"""The orjson renderer writes what DRF's JSONRenderer writes; negotiation keeps the HTML view."""

from __future__ import annotations

import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from django_offline_sync.renderers import SyncJSONRenderer
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "data",
    [
        [{"id": "a", "text": "é ✓ \u2028", "n": 2**62, "f": 1.5, "b": True, "none": None}],
        {"items": [], "count": 0, "nextLink": None},
        {"title": gettext_lazy("The item does not exist."), "status": 404},
        {"d": decimal.Decimal("1.25"), "u": uuid.UUID(int=7)},
    ],
)
def test_same_json_as_drf(data):
    ours = SyncJSONRenderer().render(data)
    theirs = JSONRenderer().render(data)
    assert json.loads(ours) == json.loads(theirs)


def test_integers_beyond_64_bits_are_written_exactly():
    body = SyncJSONRenderer().render({"n": 2**70, "m": [-(2**64)], "d": decimal.Decimal("0.10")})
    assert body == b'{"n":1180591620717411303424,"m":[-18446744073709551616],"d":0.10}'


@pytest.mark.parametrize(
    "value, text",
    [
        ("12345678901234567.123456", b"12345678901234567.123456"),  # beyond a double's 15-17 digits
        ("0.1", b"0.1"),
        ("1.2500", b"1.2500"),  # the column's scale, as the database returns it
        ("-0.0001", b"-0.0001"),
        ("1E-7", b"0.0000001"),  # never an exponent
        ("1.5E+3", b"1500"),
        ("NaN", b"null"),  # no JSON form
        ("Infinity", b"null"),
        ("-Infinity", b"null"),
    ],
)
def test_decimals_are_written_as_exact_json_numbers(value, text):
    body = SyncJSONRenderer().render({"d": decimal.Decimal(value)})
    assert body == b'{"d":' + text + b"}"
    assert json.loads(body, parse_float=decimal.Decimal)["d"] == (decimal.Decimal(value) if text != b"null" else None)


def test_indentation_asked_for_is_given_with_the_same_numbers():
    body = SyncJSONRenderer().render({"a": 1, "d": decimal.Decimal("0.30")}, "application/json; indent=4")
    assert body == b'{\n  "a": 1,\n  "d": 0.30\n}'


def test_clients_get_json_and_a_browser_gets_the_browsable_api(v2):
    TaskFactory()
    for accept in ("", "*/*", "application/json", "application/json; charset=utf-8"):
        response = v2.get("/tables/Task", HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
    html = v2.get("/tables/Task", HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
