"""The v1 (Azure Mobile Services) protocol, replayed request by request (docs/protocol.rst §2.4, §3-§8)."""

import pytest

from example_project.tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

SYSPROPS = "__systemproperties=__createdAt,__updatedAt,__version,__deleted"


def test_v1_gets_no_system_columns_unless_asked(v1):
    TaskFactory()
    row = v1.get("/tables/Task").json()[0]
    assert set(row) == {"id", "text", "complete", "priority", "dueDate"}


def test_v1_system_properties_are_prefixed(v1):
    TaskFactory()
    row = v1.get(f"/tables/Task?{SYSPROPS}").json()[0]
    assert {"__createdAt", "__updatedAt", "__version", "__deleted"} <= set(row)
    assert "updatedAt" not in row


def test_v1_star_and_unprefixed_names(v1):
    TaskFactory()
    assert "__version" in v1.get("/tables/Task?__systemproperties=*").json()[0]
    row = v1.get("/tables/Task?__systemproperties=updatedAt").json()[0]
    assert "__updatedAt" in row and "__version" not in row


def test_v1_unknown_system_property_is_400(v1):
    response = v1.get("/tables/Task?__systemproperties=__colour")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["error"].startswith("Error: ") and "__colour" in body["error"]


def test_v1_is_detected_from_prefixed_names_alone(client):
    TaskFactory()
    response = client.get("/tables/Task?$filter=__updatedAt ge datetime'1970-01-01T00:00:00.000Z'&__systemproperties=*")
    assert response.status_code == 200 and "__updatedAt" in response.json()[0]


def test_v1_incremental_pull(v1):
    tasks = TaskFactory.create_batch(3)
    url = (
        "/tables/Task?$filter=(__updatedAt ge datetimeoffset'1970-01-01T00:00:00.0000000%2B00:00')"
        f"&$orderby=__updatedAt&$skip=0&$top=50&__includeDeleted=true&{SYSPROPS}"
    )
    rows = v1.get(url).json()
    assert {r["id"] for r in rows} == {t.id for t in tasks}
    assert all("__deleted" in r for r in rows)


def test_v1_conflict_is_always_412_with_the_item(v1):
    task = TaskFactory()
    response = v1.patch_json(f"/tables/Task/{task.id}?{SYSPROPS}", {"text": "x"}, HTTP_IF_MATCH='"AAAAAAAAAAE="')
    assert response.status_code == 412
    assert response.json()["__version"] == task.etag_version


def test_v1_insert_and_update_with_system_properties(v1):
    response = v1.post_json(f"/tables/Task?{SYSPROPS}", {"id": "v1-a", "text": "x"})
    assert response.status_code == 201
    version = response.json()["__version"]
    assert response["ETag"] == f'"{version}"'
    updated = v1.patch_json(f"/tables/Task/v1-a?{SYSPROPS}", {"text": "y"}, HTTP_IF_MATCH=f'"{version}"')
    assert updated.status_code == 200 and updated.json()["text"] == "y"


def test_v1_delete_and_undelete(v1):
    task = TaskFactory()
    assert v1.delete(f"/tables/Task/{task.id}").status_code == 204
    assert v1.delete(f"/tables/Task/{task.id}").status_code == 404
    assert v1.post(f"/tables/Task/{task.id}").status_code == 200
    assert Task.objects.filter(pk=task.id).exists()


def test_v1_error_shape_for_bad_filter(v1):
    body = v1.get("/tables/Task?$filter=text eq").json()
    assert body["code"] == 400 and body["error"].startswith("Error: ")


@pytest.mark.parametrize("param", ["$expand=x", "__custom=1"])
def test_v1_reserved_prefixes_for_custom_parameters_are_400(v1, param):
    response = v1.get(f"/tables/Task?{param}")
    assert response.status_code == 400 and "must not start with" in response.json()["error"]


def test_v1_plain_custom_parameters_pass(v1):
    assert v1.get("/tables/Task?region=north").status_code == 200
