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
from django.test.client import FakePayload
from django.utils import timezone
from rest_framework.authtoken.models import Token

from example_project.tasks.models import Inspection, Note, Task
from tests.conftest import ZumoClient
from tests.factories import NoteFactory, TaskFactory, UserFactory
from tests.models import Coded

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


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("old_id", [" lead", "trail ", "a\u200bb"])
def test_a_row_stored_under_an_id_the_rules_now_refuse_can_still_be_updated_with_its_id_in_the_body(
    v2, v3, method, old_id
):
    """An adopted table (or an older server) may hold ids that new ids may not take. Clients send
    the row's id back in every update's body; the row the URL names stays writable."""
    task = TaskFactory(text="old")
    Task.all_objects.filter(pk=task.pk).update(id=old_id)
    for client, text in ((v2, "by v2"), (v3, "by v3")):
        body = json.dumps({"id": old_id, "text": text})
        response = send(client, method, f"/tables/Task/{quote(old_id)}", body)
        assert response.status_code == 200, response.content
        assert Task.objects.get(pk=old_id).text == text
    # A body id that breaks the rules and names another row is still refused as before.
    response = send(v3, method, f"/tables/Task/{quote(old_id)}", json.dumps({"id": " other", "text": "x"}))
    assert response.status_code == 400 and error_of(response)[0] == "invalid_id", response.content


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


# -- strings no database can store: lone surrogates and NUL ------------------------------------


def inspector(generation="v2"):
    """A signed-in client for the per-user Inspection table (a choice column: ``condition``)."""
    client = ZumoClient(generation)
    user = UserFactory()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", **client._credentials)
    return client


def assert_column_refused(response, column, fragment):
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "invalid_item"
    assert column in response.json()["errors"], response.json()
    assert fragment in " ".join(response.json()["errors"][column])
    assert column in message


SURROGATE = r"\udc00"
NUL = r"\u0000"


@pytest.mark.parametrize("escape, fragment", [(SURROGATE, "Surrogate"), (NUL, "Null characters")])
def test_a_string_column_with_an_unstorable_character_is_400_naming_it(zumo, escape, fragment):
    response = send(zumo, "POST", "/tables/Task", f'{{"id": "t1", "text": "a{escape}b"}}')
    assert_column_refused(response, "text", fragment)
    assert Task.all_objects.count() == 0


@pytest.mark.parametrize("escape, fragment", [(SURROGATE, "Surrogate"), (NUL, "Null characters")])
def test_a_foreign_key_with_an_unstorable_character_is_400_naming_it(zumo, escape, fragment):
    TaskFactory(id="a")
    response = send(zumo, "POST", "/tables/Note", f'{{"taskId": "a{escape}", "body": "x"}}')
    assert_column_refused(response, "taskId", fragment)
    assert Note.all_objects.count() == 0


@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
@pytest.mark.parametrize("escape, fragment", [(SURROGATE, "Surrogate"), (NUL, "Null characters")])
def test_a_choice_column_with_an_unstorable_character_is_400_naming_it(generation, escape, fragment):
    # DRF's choice error echoes the value; with a lone surrogate the response could not be encoded.
    body = f'{{"site": "Mill Rd", "pipeId": "P-1", "condition": "good{escape}"}}'
    response = send(inspector(generation), "POST", "/tables/Inspection", body)
    assert_column_refused(response, "condition", fragment)
    assert Inspection.all_objects.count() == 0


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("escape, fragment", [(SURROGATE, "Surrogate"), (NUL, "Null characters")])
def test_an_update_with_an_unstorable_character_is_400_and_writes_nothing(v2, method, escape, fragment):
    task = TaskFactory(text="keep")
    response = send(v2, method, f"/tables/Task/{task.id}", f'{{"text": "x{escape}", "priority": 7}}')
    assert_column_refused(response, "text", fragment)
    version = task.version
    task.refresh_from_db()
    assert task.text == "keep" and task.version == version


@pytest.mark.urls("tests.pipeline.urls")
@pytest.mark.parametrize(
    "tags, where",
    [
        (f'["ok", "x{SURROGATE}"]', "tags[1]"),
        (f'[{{"k": "{NUL}"}}]', "tags[0].k"),
        (f'{{"a{NUL}": 1}}', "tags.a\\u0000"),
        (f'{{"a{SURROGATE}": 1}}', "tags.a\\udc00"),
    ],
)
def test_a_json_column_holding_an_unstorable_string_is_400_naming_where(v3, tags, where):
    response = send(v3, "POST", "/tables/Coded", f'{{"id": "c1", "tags": {tags}}}')
    assert_column_refused(response, "tags", f"(at {where})")
    assert Coded.all_objects.count() == 0


@pytest.mark.parametrize("escape", [SURROGATE, NUL])
def test_an_unknown_field_named_with_an_unstorable_character_is_400_and_echoed_escaped(zumo, escape):
    response = send(zumo, "POST", "/tables/Task", f'{{"text": "x", "co{escape}lour": 1}}')
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "unknown_field"
    assert f"co{escape}lour" in message  # the escape as text, e.g. co\udc00lour
    assert Task.all_objects.count() == 0


def test_escaped_surrogate_pairs_and_other_text_are_stored_as_sent(zumo):
    body = r'{"id": "t1", "text": "smile \ud83d\ude00, caf\u00e9, tab\t, \u2028 and \\u0000 as text"}'
    response = send(zumo, "POST", "/tables/Task", body)
    assert response.status_code == 201, response.content
    expected = "smile \U0001f600, café, tab\t, \u2028 and \\u0000 as text"
    assert Task.objects.get().text == expected
    assert response.json()["text"] == expected


# -- nesting depth -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
def test_a_body_of_100000_nested_arrays_is_400_malformed_body(zumo, method):
    task = TaskFactory(text="keep")
    path = "/tables/Task" if method == "POST" else f"/tables/Task/{task.id}"
    response = send(zumo, method, path, "[" * 100_000)
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "malformed_body"
    assert "32 levels" in message
    task.refresh_from_db()
    assert Task.all_objects.count() == 1 and task.text == "keep"


def test_a_balanced_but_too_deep_body_is_400_malformed_body(v2):
    # Balanced and otherwise valid JSON, just too deep: still refused, nothing written.
    body = '{"text": "x", "extra": ' + "[" * 40 + "]" * 40 + "}"
    response = send(v2, "POST", "/tables/Task", body)
    assert response.status_code == 400 and error_of(response)[0] == "malformed_body"
    assert Task.all_objects.count() == 0


def test_an_undelete_with_a_deeply_nested_body_is_400_not_500(v2):
    task = TaskFactory(deleted_row=True)
    response = send(v2, "POST", f"/tables/Task/{task.id}", "{" * 50_000)
    assert response.status_code == 400, response.content
    assert Task.all_objects.get(pk=task.id).deleted


@pytest.mark.urls("tests.pipeline.urls")
def test_a_json_column_nested_up_to_the_limit_is_stored_and_returned(v3):
    # 31 levels in the column (MariaDB's limit for a JSON value), 32 with the row object.
    tags = '{"a":' * 16 + "[" * 15 + "1" + "]" * 15 + "}" * 16
    response = send(v3, "POST", "/tables/Coded", f'{{"id": "c1", "tags": {tags}}}')
    assert response.status_code == 201, response.content
    assert json.dumps(response.json()["tags"], separators=(",", ":")) == tags
    response = send(v3, "POST", "/tables/Coded", f'{{"id": "c2", "tags": [{tags}]}}')  # 33
    assert response.status_code == 400 and error_of(response)[0] == "malformed_body"
    assert list(Coded.all_objects.values_list("id", flat=True)) == ["c1"]


def test_brackets_inside_strings_do_not_count_as_nesting(zumo):
    text = '[{"\\"[' * 40
    response = send(zumo, "POST", "/tables/Task", json.dumps({"id": "t1", "text": text}))
    assert response.status_code == 201, response.content
    assert Task.objects.get().text == text


# -- content types -----------------------------------------------------------------------------


def send_without_content_type(client, method, path, raw):
    """A request with no ``Content-Type`` header at all (the TypeScript client's writes)."""
    data = raw.encode()
    return client.request(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        CONTENT_LENGTH=str(len(data)),
        **{"wsgi.input": FakePayload(data)},
    )


def test_a_write_without_content_type_is_read_as_json(zumo):
    response = send_without_content_type(zumo, "POST", "/tables/Task", '{"id": "t1", "text": "new"}')
    assert response.status_code == 201, response.content
    response = send_without_content_type(zumo, "PATCH", "/tables/Task/t1", '{"text": "patched"}')
    assert response.status_code == 200, response.content
    response = send_without_content_type(zumo, "PUT", "/tables/Task/t1", '{"text": "replaced", "priority": 3}')
    assert response.status_code == 200, response.content
    task = Task.objects.get()
    assert (task.text, task.priority) == ("replaced", 3)


def test_a_write_without_content_type_still_gets_the_json_errors(v2):
    response = send_without_content_type(v2, "POST", "/tables/Task", "{not json")
    assert response.status_code == 400 and error_of(response)[0] == "malformed_body"
    response = send_without_content_type(v2, "POST", "/tables/Task", "")
    assert response.status_code == 400 and error_of(response)[0] == "empty_body"
    assert Task.all_objects.count() == 0


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "text/plain;charset=UTF-8", "application/octet-stream"]
)
def test_a_bodyless_undelete_is_accepted_whatever_its_content_type(zumo, content_type):
    task = TaskFactory(deleted_row=True)
    path = f"/tables/Task/{task.id}"
    if content_type is None:
        response = send_without_content_type(zumo, "POST", path, "")
    else:
        response = send(zumo, "POST", path, "", content_type=content_type)
    assert response.status_code == 200, response.content
    assert response.json()["id"] == task.id
    assert not Task.all_objects.get(pk=task.id).deleted


@pytest.mark.parametrize(
    "body, content_type, status, code",
    [
        ("hello", "text/plain", 415, "unsupported_media_type"),
        ("{}", "text/plain", 415, "unsupported_media_type"),
        ("{}", "application/json", 400, "body_not_allowed"),
        ('{"deleted": false}', None, 400, "body_not_allowed"),
        ("{oops", "application/json", 400, "malformed_body"),
    ],
)
def test_an_undelete_with_a_body_is_still_refused(zumo, body, content_type, status, code):
    task = TaskFactory(deleted_row=True)
    path = f"/tables/Task/{task.id}"
    if content_type is None:
        response = send_without_content_type(zumo, "POST", path, body)
    else:
        response = send(zumo, "POST", path, body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["errorCode"] == code
    assert Task.all_objects.get(pk=task.id).deleted


def test_an_insert_labelled_text_plain_is_still_415(v2):
    response = send(v2, "POST", "/tables/Task", '{"text": "x"}', content_type="text/plain")
    assert response.status_code == 415
    assert Task.all_objects.count() == 0


# -- versions this server never issued -----------------------------------------------------------

FOREIGN_VERSIONS = [
    pytest.param("AAAA", id="3-bytes"),
    pytest.param("AAAAAAAAAAAAAAAAAAAAAA==", id="16-bytes-ctk"),
    pytest.param("AAAAAAAAAAAAAA==", id="10-bytes"),
]


def assert_conflict_with_row(response, status, task):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["id"] == task.id
    assert response["ETag"] == f'"{task.etag_version}"'


@pytest.mark.parametrize("version", FOREIGN_VERSIONS)
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_an_if_match_of_another_backend_is_a_412_with_the_row_not_a_400(zumo, method, version):
    task = TaskFactory(text="server")
    before = task.version
    response = send(zumo, method, f"/tables/Task/{task.id}", '{"text": "client"}', HTTP_IF_MATCH=f'"{version}"')
    assert_conflict_with_row(response, 412, task)
    task.refresh_from_db()
    assert task.text == "server" and task.version == before


@pytest.mark.parametrize("version", FOREIGN_VERSIONS)
def test_a_delete_or_undelete_with_a_foreign_if_match_is_a_412(zumo, version):
    task = TaskFactory()
    assert_conflict_with_row(zumo.delete(f"/tables/Task/{task.id}", HTTP_IF_MATCH=f'"{version}"'), 412, task)
    assert not Task.all_objects.get(pk=task.id).deleted
    task.delete()
    response = send(zumo, "POST", f"/tables/Task/{task.id}", "", HTTP_IF_MATCH=f'"{version}"')
    assert response.status_code == 412, response.content
    assert Task.all_objects.get(pk=task.id).deleted


@pytest.mark.parametrize("version", FOREIGN_VERSIONS)
def test_a_v2_body_version_of_another_backend_is_a_409_with_the_row(v2, version):
    task = TaskFactory(text="server")
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "client", "version": version})
    assert_conflict_with_row(response, 409, task)
    task.refresh_from_db()
    assert task.text == "server"


def test_v1_and_v3_still_ignore_a_body_version(v1, v3):
    task = TaskFactory(text="server")
    assert v1.patch_json(f"/tables/Task/{task.id}", {"text": "v1", "__version": "AAAA"}).status_code == 200
    assert v3.put_json(f"/tables/Task/{task.id}", {"text": "v3", "version": "AAAA"}).status_code == 200
    task.refresh_from_db()
    assert task.text == "v3"


@pytest.mark.parametrize(
    "header, fragment",
    [
        ("AAAAAAAAAAE=", "quoted"),
        ('W/"AAAAAAAAAAE="', "weak"),
        ('"AAAAAAAAAAE=", "AAAAAAAAAAI="', "exactly one"),
        ('"%%%"', "base64"),
        ('"not base64!"', "base64"),
        ('"AAAAAAAAAAE"', "base64"),  # padding missing: not base64
        ('""', "empty"),
    ],
)
def test_a_malformed_if_match_is_still_400_and_writes_nothing(zumo, header, fragment):
    task = TaskFactory(text="keep")
    response = send(zumo, "PATCH", f"/tables/Task/{task.id}", '{"text": "x"}', HTTP_IF_MATCH=header)
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "invalid_precondition" and fragment in message
    response = zumo.delete(f"/tables/Task/{task.id}", HTTP_IF_MATCH=header)
    assert response.status_code == 400
    task.refresh_from_db()
    assert task.text == "keep" and not task.deleted


@pytest.mark.parametrize("version", ["not base64!", "%%%", "AAAAAAAAAAE"])
def test_a_v2_body_version_that_is_not_base64_is_still_400(v2, version):
    task = TaskFactory(text="keep")
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "x", "version": version})
    assert response.status_code == 400, response.content
    assert error_of(response)[0] == "invalid_precondition"
    task.refresh_from_db()
    assert task.text == "keep"


def test_if_match_star_still_matches_any_existing_row(zumo):
    task = TaskFactory(text="server")
    response = send(zumo, "PATCH", f"/tables/Task/{task.id}", '{"text": "client"}', HTTP_IF_MATCH="*")
    assert response.status_code == 200, response.content
    assert Task.objects.get().text == "client"
    assert send(zumo, "PATCH", "/tables/Task/missing", '{"text": "x"}', HTTP_IF_MATCH="*").status_code == 404


# -- null for a NOT NULL column ------------------------------------------------------------------


def test_an_insert_with_nulls_for_columns_with_defaults_takes_the_defaults(zumo):
    # What the JavaScript client's offline push sends for a row whose columns it never set.
    body = {"id": "t1", "text": None, "complete": None, "priority": None, "dueDate": None}
    response = zumo.post_json("/tables/Task", body)
    assert response.status_code == 201, response.content
    assert {k: response.json()[k] for k in ("text", "complete", "priority", "dueDate")} == {
        "text": "",
        "complete": False,
        "priority": 0,
        "dueDate": None,
    }
    task = Task.objects.get()
    assert (task.text, task.complete, task.priority, task.due_date) == ("", False, 0, None)


def test_a_v3_insert_with_null_system_and_user_columns_is_accepted(v3):
    body = {"id": "t1", "text": "x", "complete": None, "version": None, "updatedAt": None, "deleted": None}
    response = v3.post_json("/tables/Task", body)
    assert response.status_code == 201, response.content
    assert Task.objects.get().complete is False


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_null_for_a_not_null_column_without_default_is_400_naming_it(v2, method):
    TaskFactory(id="a")
    if method == "PUT":
        NoteFactory(id="n1", task_id="a", body="keep")
    path = "/tables/Note" if method == "POST" else "/tables/Note/n1"
    response = v2.generic(
        method, path, json.dumps({"id": "n1", "taskId": None, "body": None}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "invalid_item"
    assert list(response.json()["errors"]) == ["taskId"]  # body (default "") took its default
    assert "taskId" in message and "null" in message
    assert Note.all_objects.filter(body="keep").count() == (1 if method == "PUT" else 0)


def test_every_null_column_without_a_default_is_named(zumo):
    client = inspector(zumo.generation)
    response = client.post_json("/tables/Inspection", {"site": None, "pipeId": None, "condition": None})
    assert response.status_code == 400, response.content
    assert sorted(response.json()["errors"]) == ["pipeId", "site"]
    response = client.post_json("/tables/Inspection", {"site": "Mill Rd", "pipeId": "P-1", "condition": None})
    assert response.status_code == 201, response.content
    assert response.json()["condition"] == "good"


def test_a_replace_with_nulls_takes_the_defaults(v3):
    task = TaskFactory(text="old", complete=True, priority=5)
    body = {"id": task.id, "text": None, "complete": None, "priority": None}
    response = v3.put_json(f"/tables/Task/{task.id}", body)
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert (task.text, task.complete, task.priority) == ("", False, 0)


def test_a_merge_with_null_takes_the_default_and_leaves_other_columns(zumo):
    task = TaskFactory(text="old", complete=True, priority=5, due_date=timezone.now())
    response = zumo.patch_json(f"/tables/Task/{task.id}", {"priority": None, "dueDate": None})
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert (task.text, task.complete, task.priority, task.due_date) == ("old", True, 0, None)


@pytest.mark.urls("tests.pipeline.urls")
def test_null_for_a_callable_default_calls_it_per_row(v2):
    first = v2.post_json("/tables/Coded", {"id": "c1", "code": None, "tags": None, "slug": None})
    second = v2.post_json("/tables/Coded", {"id": "c2", "code": None, "tags": None})
    assert first.status_code == second.status_code == 201, (first.content, second.content)
    assert first.json()["tags"] == [] and first.json()["slug"] is None
    assert first.json()["code"].startswith("code-") and first.json()["code"] != second.json()["code"]


# -- JSON that Python's parser accepts but JSON does not have ------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('{"text": NaN}', "NaN"),
        ('{"text": "x", "priority": Infinity}', "Infinity"),
        ('{"text": -Infinity}', "-Infinity"),
        ('{"priority": ' + "1" * 5000 + "}", "too many digits"),
        ('{"text": "x", "extra": -' + "9" * 5000 + "}", "too many digits"),
    ],
)
def test_nan_infinity_and_overlong_numbers_are_400_malformed_body(zumo, body, fragment):
    response = send(zumo, "POST", "/tables/Task", body)
    assert response.status_code == 400, response.content
    code, message = error_of(response)
    assert code == "malformed_body" and fragment in message
    assert Task.all_objects.count() == 0
