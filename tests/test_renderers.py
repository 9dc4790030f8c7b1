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


def test_integers_beyond_64_bits_fall_back_to_drf():
    assert json.loads(SyncJSONRenderer().render({"n": 2**70})) == {"n": 2**70}


def test_indentation_asked_for_is_given():
    body = SyncJSONRenderer().render({"a": 1}, "application/json; indent=4")
    assert b"\n    " in body


def test_clients_get_json_and_a_browser_gets_the_browsable_api(v2):
    TaskFactory()
    for accept in ("", "*/*", "application/json", "application/json; charset=utf-8"):
        response = v2.get("/tables/Task", HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
    html = v2.get("/tables/Task", HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
