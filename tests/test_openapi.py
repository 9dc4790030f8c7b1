"""The OpenAPI schema (drf-spectacular) describes the sync tables in wire names."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_lists_the_tables_with_odata_parameters_and_wire_names(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    paths = {path.rstrip("/"): item for path, item in schema["paths"].items()}
    assert "/tables/Task" in paths and "/tables/Task/{id}" in paths
    names = {p["name"] for p in paths["/tables/Task"]["get"]["parameters"]}
    assert {"$filter", "$orderby", "$top", "$skip", "__includeDeleted"} <= names
    note = next(v for k, v in schema["components"]["schemas"].items() if k.startswith("Note"))
    assert {"taskId", "body", "updatedAt", "version", "deleted"} <= set(note["properties"])
