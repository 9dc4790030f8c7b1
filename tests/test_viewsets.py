"""The v2 (ZUMO-API-VERSION 2.0.0) table protocol, replayed request by request (docs/protocol.rst §3-§8)."""

import base64
import re

import pytest

from example_project.tasks.models import Note, Task
from tests.conftest import TIMESTAMP
from tests.factories import NoteFactory, TaskFactory

pytestmark = pytest.mark.django_db

TASK_KEYS = {"id", "text", "complete", "priority", "dueDate", "createdAt", "updatedAt", "version", "deleted"}


def etag(version: str) -> str:
    return f'"{version}"'


# -- insert ------------------------------------------------------------------------------


def test_insert_returns_201_with_entity_etag_and_location(v2):
    response = v2.post_json("/tables/Task", {"id": "t-1", "text": "Inspect culvert", "priority": 2})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == TASK_KEYS
    assert body["id"] == "t-1" and body["text"] == "Inspect culvert" and body["dueDate"] is None
    assert TIMESTAMP.match(body["createdAt"]) and TIMESTAMP.match(body["updatedAt"])
    assert body["deleted"] is False
    assert len(base64.b64decode(body["version"])) == 8
    assert response["ETag"] == etag(body["version"])
    assert response["Location"] == "http://testserver/tables/Task/t-1"
    assert "ETag" in response["Access-Control-Expose-Headers"]


def test_insert_without_id_generates_a_32_hex_id(v2):
    body = v2.post_json("/tables/Task", {"text": "x"}).json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])


def test_insert_ignores_server_owned_fields_in_the_body(v2):
    response = v2.post_json(
        "/tables/Task",
        {"id": "t-2", "text": "x", "createdAt": "2001-01-01T00:00:00.000Z", "updatedAt": None,
         "version": "AAAAAAAAAAE=", "deleted": True},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["deleted"] is False and not body["createdAt"].startswith("2001")


def test_insert_duplicate_id_returns_409_with_the_server_entity(v2):
    existing = TaskFactory(id="dup", text="server copy")
    response = v2.post_json("/tables/Task", {"id": "dup", "text": "client copy"})
    assert response.status_code == 409
    assert response.json()["text"] == "server copy"
    assert response["ETag"] == etag(existing.etag_version)
    assert Task.objects.get(pk="dup").text == "server copy"


@pytest.mark.parametrize("bad_id", ["..", ".", "a/b", 'a"b', "a+b", "a?b", "a\\b", "a`b", "tab\there", "x" * 256, ""])
def test_insert_invalid_client_id_returns_400_and_writes_nothing(v2, bad_id):
    response = v2.post_json("/tables/Task", {"id": bad_id, "text": "x"})
    assert response.status_code == 400
    assert "id" in response.json()["message"].lower()
    assert Task.all_objects.count() == 0


def test_insert_note_with_unknown_task_returns_400(v2):
    response = v2.post_json("/tables/Note", {"id": "n1", "taskId": "missing", "body": "x"})
    assert response.status_code == 400
    assert "taskId" in response.json()["errors"]
    assert Note.all_objects.count() == 0


# -- read ---------------------------------------------------------------------------------


def test_get_by_id_returns_entity_and_etag(v2):
    task = TaskFactory()
    response = v2.get(f"/tables/Task/{task.id}")
    assert response.status_code == 200
    assert response.json()["id"] == task.id
    assert response["ETag"] == etag(task.etag_version)
    assert response["Cache-Control"] == "no-cache"


def test_get_by_id_with_matching_if_none_match_returns_304(v2):
    task = TaskFactory()
    response = v2.get(f"/tables/Task/{task.id}", HTTP_IF_NONE_MATCH=etag(task.etag_version))
    assert response.status_code == 304


def test_get_missing_or_deleted_returns_404_for_v2(v2):
    task = TaskFactory(deleted_row=True)
    assert v2.get("/tables/Task/nope").status_code == 404
    assert v2.get(f"/tables/Task/{task.id}").status_code == 404
    assert v2.get(f"/tables/Task/{task.id}?__includeDeleted=true").status_code == 200


def test_ids_with_dots_and_colons_are_routable(v2):
    v2.post_json("/tables/Task", {"id": "site.12:pipe-3", "text": "x"})
    assert v2.get("/tables/Task/site.12:pipe-3").status_code == 200


# -- query ----------------------------------------------------------------------------------


def test_query_returns_a_bare_array_of_full_rows(v2):
    TaskFactory.create_batch(3)
    response = v2.get("/tables/Task")
    assert response.status_code == 200
    rows = response.json()
    assert isinstance(rows, list) and len(rows) == 3
    assert all(set(r) == TASK_KEYS for r in rows)


def test_query_with_inlinecount_returns_results_and_count(v2):
    TaskFactory.create_batch(5)
    body = v2.get("/tables/Task?$top=2&$inlinecount=allpages").json()
    assert body["count"] == 5 and len(body["results"]) == 2


def test_query_hides_deleted_rows_unless_asked(v2):
    TaskFactory.create_batch(2)
    TaskFactory(deleted_row=True)
    assert len(v2.get("/tables/Task").json()) == 2
    rows = v2.get("/tables/Task?__includeDeleted=true").json()
    assert len(rows) == 3 and sum(r["deleted"] for r in rows) == 1


def test_query_incremental_pull_of_the_dotnet_client(v2):
    tasks = TaskFactory.create_batch(4)
    token = "1970-01-01T00:00:00.0000000%2B00:00"
    url = (f"/tables/Task?$filter=(updatedAt%20ge%20datetimeoffset'{token}')"
           "&$orderby=updatedAt&$skip=0&$top=3&__includeDeleted=true")
    page = v2.get(url).json()
    assert [r["id"] for r in page] == [t.id for t in sorted(tasks, key=lambda t: (t.updated_at, t.id))][:3]
    last = page[-1]["updatedAt"]
    rest = v2.get(
        f"/tables/Task?$filter=(updatedAt%20ge%20datetimeoffset'{last}')&$orderby=updatedAt&$skip=0&$top=3&__includeDeleted=true"
    ).json()
    assert rest[0]["id"] == page[-1]["id"]  # `ge` re-reads the boundary row
    assert {r["id"] for r in page + rest} == {t.id for t in tasks}


def test_query_without_top_is_paged_with_a_link_header_the_dotnet_client_parses(v2, settings):
    settings.OFFLINE_SYNC = {"PAGE_SIZE": 2}
    TaskFactory.create_batch(5)
    response = v2.get("/tables/Task?$orderby=updatedAt")
    assert len(response.json()) == 2
    link = response["Link"]
    match = re.match(r"^(?P<uri>.*?);\s*rel\s*=\s*(?P<rel>\w+)\s*$", link)
    assert match and match["rel"] == "next" and not match["uri"].startswith("<")
    seen = [r["id"] for r in response.json()]
    next_url = match["uri"].replace("http://testserver", "")
    while next_url:
        response = v2.get(next_url)
        seen += [r["id"] for r in response.json()]
        next_url = response.get("Link", "").split(";")[0].replace("http://testserver", "") or None
    assert len(seen) == len(set(seen)) == 5


def test_query_top_above_the_maximum_returns_400(v2):
    response = v2.get("/tables/Task?$top=1001")
    assert response.status_code == 400
    assert "$top" in response.json()["message"]


def test_query_malformed_filter_returns_400_naming_option_and_position(v2):
    response = v2.get("/tables/Task?$filter=text eq 'x' and")
    assert response.status_code == 400
    body = response.json()
    assert body["option"] == "$filter" and isinstance(body["position"], int)


# -- update ---------------------------------------------------------------------------------


def test_patch_with_matching_if_match_updates_and_bumps_version(v2):
    task = TaskFactory(text="old")
    response = v2.patch_json(
        f"/tables/Task/{task.id}", {"id": task.id, "text": "new"}, HTTP_IF_MATCH=etag(task.etag_version)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "new" and body["version"] != task.etag_version
    assert response["ETag"] == etag(body["version"])
    assert body["priority"] == task.priority  # merge: untouched columns stay


def test_patch_with_stale_if_match_returns_412_with_the_server_entity(v2):
    task = TaskFactory(text="server")
    stale = task.etag_version
    task.text = "changed on server"
    task.save()
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "client"}, HTTP_IF_MATCH=etag(stale))
    assert response.status_code == 412
    assert response.json()["text"] == "changed on server"
    assert response["ETag"] == etag(task.etag_version)
    task.refresh_from_db()
    assert task.text == "changed on server"


def test_patch_with_stale_version_in_body_and_no_if_match_returns_409(v2):
    task = TaskFactory()
    stale = task.etag_version
    task.save()
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "client", "version": stale})
    assert response.status_code == 409
    assert response.json()["version"] == task.etag_version


def test_patch_without_precondition_overwrites(v2):
    task = TaskFactory()
    task.save()
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "client wins"})
    assert response.status_code == 200 and response.json()["text"] == "client wins"


def test_patch_with_star_if_match_updates(v2):
    task = TaskFactory()
    assert v2.patch_json(f"/tables/Task/{task.id}", {"text": "x"}, HTTP_IF_MATCH="*").status_code == 200


def test_put_replaces_the_whole_row(v2):
    task = TaskFactory(text="a", priority=4, complete=True)
    response = v2.put_json(f"/tables/Task/{task.id}", {"text": "b"})
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "b" and body["priority"] == 0 and body["complete"] is False


def test_update_of_a_soft_deleted_row_returns_404_for_v2(v2):
    task = TaskFactory(deleted_row=True)
    assert v2.patch_json(f"/tables/Task/{task.id}", {"text": "x"}).status_code == 404


@pytest.mark.parametrize(
    "body, if_match, fragment",
    [
        ("{not json", None, "malformed json"),
        ('{"text": "x", "colour": "red"}', None, "colour"),
        ('{"id": "other", "text": "x"}', None, "does not match"),
        ('{"priority": "abc"}', None, "priority"),
        ('["a list"]', None, "json object"),
        ('{"text": "x"}', 'W/"AAAAAAAAAAE="', "weak"),
        ('{"text": "x"}', '"AAAAAAAAAAE=", "AAAAAAAAAAI="', "exactly one"),
        ('{"text": "x"}', '"not base64!"', "base64"),
        ('{"text": "x"}', "unquoted", "quoted"),
    ],
)
def test_bad_update_returns_400_and_changes_nothing(v2, body, if_match, fragment):
    task = TaskFactory(text="keep")
    extra = {"HTTP_IF_MATCH": if_match} if if_match else {}
    response = v2.generic("PATCH", f"/tables/Task/{task.id}", body, content_type="application/json", **extra)
    assert response.status_code == 400, response.content
    assert fragment in response.json()["message"].lower()
    version = task.version
    task.refresh_from_db()
    assert task.text == "keep" and task.version == version


def test_oversized_body_returns_413_and_writes_nothing(v2, settings):
    settings.OFFLINE_SYNC = {"MAX_BODY_BYTES": 100}
    response = v2.post_json("/tables/Task", {"text": "x" * 200})
    assert response.status_code == 413
    assert "limit" in response.json()["message"]
    assert Task.all_objects.count() == 0


def test_non_json_content_type_returns_415(v2):
    response = v2.generic("POST", "/tables/Task", "text=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# -- delete and undelete --------------------------------------------------------------------


def test_delete_soft_deletes_returns_204_and_bumps_version(v2):
    task = TaskFactory()
    response = v2.delete(f"/tables/Task/{task.id}", HTTP_IF_MATCH=etag(task.etag_version))
    assert response.status_code == 204
    row = Task.all_objects.get(pk=task.id)
    assert row.deleted and row.version != task.version and row.updated_at > task.updated_at
    assert v2.delete(f"/tables/Task/{task.id}").status_code == 404


def test_delete_with_stale_if_match_returns_412_with_entity(v2):
    task = TaskFactory()
    stale = task.etag_version
    task.save()
    response = v2.delete(f"/tables/Task/{task.id}", HTTP_IF_MATCH=etag(stale))
    assert response.status_code == 412
    assert response.json()["id"] == task.id
    assert not Task.all_objects.get(pk=task.id).deleted


def test_hard_delete_when_the_table_has_soft_delete_off(v2, settings):
    settings.OFFLINE_SYNC = {"SOFT_DELETE": False}
    task = TaskFactory()
    assert v2.delete(f"/tables/Task/{task.id}").status_code == 204
    assert not Task.all_objects.filter(pk=task.id).exists()


def test_undelete_restores_and_bumps_version(v2):
    task = TaskFactory(deleted_row=True)
    deleted_version = Task.all_objects.get(pk=task.id).version
    response = v2.post(f"/tables/Task/{task.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["deleted"] is False
    assert Task.objects.filter(pk=task.id).exists()
    assert Task.objects.get(pk=task.id).version != deleted_version


def test_undelete_with_a_body_returns_400(v2):
    task = TaskFactory(deleted_row=True)
    assert v2.post_json(f"/tables/Task/{task.id}", {"text": "x"}).status_code == 400


# -- version negotiation ----------------------------------------------------------------------


def test_invalid_api_version_returns_400_with_the_clients_message(client):
    response = client.get("/tables/Task", HTTP_ZUMO_API_VERSION="1.5.0")
    assert response.status_code == 400
    body = response.json()
    assert "An invalid API version was specified" in body["title" if "title" in body else "message"]


def test_query_parameter_version_wins_over_header(client):
    response = client.get("/tables/Task?ZUMO-API-VERSION=2.0.0", HTTP_ZUMO_API_VERSION="9.9.9")
    assert response.status_code == 200 and isinstance(response.json(), list)


def test_missing_version_with_no_default_returns_400(client, settings):
    settings.OFFLINE_SYNC = {"DEFAULT_GENERATION": None}
    response = client.get("/tables/Task")
    assert response.status_code == 400
    assert "No API version was specified" in str(response.json())


def test_note_wire_name_for_foreign_key(v2):
    note = NoteFactory()
    body = v2.get(f"/tables/Note/{note.id}").json()
    assert body["taskId"] == note.task_id and "task" not in body
