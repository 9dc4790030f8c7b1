"""Regressions: edge cases of paging, detection, ids and v1 shapes found in protocol review."""

import pytest
from django.test import override_settings

from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def test_plain_skip_paging_of_a_ge_query_is_positional(v2):
    tasks = sorted(TaskFactory.create_batch(6), key=lambda t: (t.updated_at, t.id))
    base = "/tables/Task?$filter=updatedAt ge datetimeoffset'2000-01-01T00:00:00.000Z'&$orderby=updatedAt&$top=2"
    pages = [[r["id"] for r in v2.get(f"{base}&$skip={skip}").json()] for skip in (0, 2, 4)]
    assert pages == [[t.id for t in tasks[i : i + 2]] for i in (0, 2, 4)]


@pytest.mark.parametrize("generation", ["v2", "v3"])
def test_a_v1_name_inside_a_string_literal_is_just_text(generation, request):
    client = request.getfixturevalue(generation)
    TaskFactory(text="__deleted")
    response = client.get("/tables/Task?$filter=text eq '__deleted'")
    assert response.status_code == 200


def test_a_v1_name_inside_a_string_literal_does_not_make_a_request_v1(client):
    TaskFactory(text="__deleted")
    body = client.get("/tables/Task?$filter=text eq '__deleted'").json()
    assert "items" in body and body["items"][0]["text"] == "__deleted"


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete", "post"])
def test_an_id_no_row_can_have_is_404(v2, method):
    data = None if method == "post" else {"text": "x"}  # an undelete has no body
    response = getattr(v2, method)("/tables/Task/a%00b", data, format="json")
    assert response.status_code == 404
    assert "message" in response.json()


def test_v1_duplicate_insert_is_409_with_the_entity(v1):
    TaskFactory(id="t1", text="server")
    response = v1.post_json("/tables/Task?__systemproperties=*", {"id": "t1", "text": "client"})
    assert response.status_code == 409
    assert response.json()["text"] == "server" and "__version" in response.json()


def test_v1_select_keeps_named_and_requested_system_columns(v1):
    TaskFactory()
    assert set(v1.get("/tables/Task?$select=id,__updatedAt").json()[0]) == {"id", "__updatedAt"}
    row = v1.get("/tables/Task?$select=id,text&__systemproperties=__version").json()[0]
    assert set(row) == {"id", "text", "__version"}


def test_a_cursor_cannot_be_moved_to_another_table(v3):
    TaskFactory.create_batch(3)
    with override_settings(OFFLINE_SYNC={"V3_PAGE_SIZE": 1}):
        link = v3.get("/tables/Task?$orderby=updatedAt").json()["nextLink"]
        response = v3.get(f"/tables/Note?{link}")
    assert response.status_code == 400


def test_include_deleted_on_an_id_request_is_read_like_on_a_list(v2):
    task = TaskFactory(deleted_row=True)
    assert v2.get(f"/tables/Task/{task.id}?__includeDeleted=1").status_code == 200
    assert v2.get(f"/tables/Task/{task.id}?__includeDeleted=yes").status_code == 400
