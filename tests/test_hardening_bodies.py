"""Hardening of request bodies and writes: bad input is a 4xx that says what was wrong.

Every case goes through the HTTP endpoints and must hold on SQLite, PostgreSQL and MariaDB:
never a 500 (the test client re-raises one), never a partial write, and a stable
``errorCode`` (``docs/api.rst``).
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest

from example_project.tasks.models import Task
from tests.conftest import ZumoClient
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["v1", "v2", "v3"])
def zumo(request):
    """A client of each generation in turn (the test runs once per generation)."""
    return ZumoClient(request.param)


def send(client, method, path, raw, content_type="application/json", **extra):
    """``raw`` as the request body, byte for byte (JSON escapes such as ``\\udc00`` stay escapes)."""
    return client.generic(method, path, raw, content_type=content_type, **extra)


def error_of(response) -> tuple[str, str]:
    """``(errorCode, message)`` from any generation's error body."""
    body = response.json()
    message = body.get("message") or body.get("title") or body.get("error")
    return body["errorCode"], message


# -- ids (§2.2) ------------------------------------------------------------------------------

BAD_IDS = [
    pytest.param(r"   ", "only whitespace", id="spaces"),
    pytest.param(r" a", "whitespace", id="leading-space"),
    pytest.param(r"a ", "whitespace", id="trailing-space"),
    pytest.param(r"a\u00a0", "whitespace", id="trailing-nbsp"),
    pytest.param(r"\u3000a", "whitespace", id="leading-ideographic-space"),
    pytest.param(r"a\u200bb", "U+200B", id="zero-width-space"),
    pytest.param(r"a\u200fb", "U+200F", id="rtl-mark"),
    pytest.param(r"a\u202eb", "U+202E", id="rtl-override"),
    pytest.param(r"a\u2066b", "U+2066", id="ltr-isolate"),
    pytest.param(r"\ufeffa", "U+FEFF", id="bom"),
    pytest.param(r"a\u2028b", "U+2028", id="line-separator"),
    pytest.param(r"\udc00x", "surrogate", id="lone-surrogate"),
]


@pytest.mark.parametrize("json_id, fragment", BAD_IDS)
def test_an_insert_with_an_id_breaking_the_id_rule_is_400_invalid_id(zumo, json_id, fragment):
    response = send(zumo, "POST", "/tables/Task", f'{{"id": "{json_id}", "text": "x"}}')
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "invalid_id"
    assert fragment in message
    assert Task.all_objects.count() == 0


@pytest.mark.parametrize("json_id, fragment", BAD_IDS)
def test_a_replace_whose_body_id_breaks_the_id_rule_is_400_and_writes_nothing(v3, json_id, fragment):
    task = TaskFactory(text="keep")
    response = send(v3, "PUT", f"/tables/Task/{task.id}", f'{{"id": "{json_id}", "text": "x"}}')
    assert response.status_code == 400, response.content
    assert error_of(response)[0] == "invalid_id"
    task.refresh_from_db()
    assert task.text == "keep"


PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"+?\\/`')
GOOD_IDS = [
    uuid.uuid4().hex,  # Guid.ToString("N"), what the server generates
    str(uuid.uuid4()),  # Guid.ToString() ("D"), the .NET and JS clients' default
    str(uuid.uuid4()).upper(),
    "{" + str(uuid.uuid4()) + "}",  # "B"
    "(" + str(uuid.uuid4()) + ")",  # "P"
    "a" + PRINTABLE_ASCII + "z",  # any printable ASCII but " + ? \ / ` (a space inside is fine)
    "café-1",
    "日本語",
    "emoji-\U0001f600",
]


@pytest.mark.parametrize("good_id", GOOD_IDS)
def test_ids_clients_generate_are_accepted_and_addressable(zumo, good_id):
    response = send(zumo, "POST", "/tables/Task", json.dumps({"id": good_id, "text": "x"}))
    assert response.status_code == 201, response.content
    assert Task.objects.get().pk == good_id
    response = zumo.get(f"/tables/Task/{quote(good_id, safe='')}")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == good_id


@pytest.mark.parametrize("path_id", ["%20%20", "a%20", "a%E2%80%AEb", "%EF%BB%BFa"])
def test_a_url_id_breaking_the_id_rule_is_404(v2, path_id):
    assert v2.get(f"/tables/Task/{path_id}").status_code == 404
    assert send(v2, "PATCH", f"/tables/Task/{path_id}", '{"text": "x"}').status_code == 404
    assert Task.all_objects.count() == 0
