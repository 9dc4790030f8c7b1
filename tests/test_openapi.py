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


def test_schema_generates_without_warnings_and_validates(tmp_path):
    # --fail-on-warn: drf-spectacular's warnings (operationId collisions, component name
    # clashes) fail the command; --validate checks the result against the OpenAPI 3 schema.
    from django.core.management import call_command

    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--format", "openapi-json", "--file", str(out))
    assert out.stat().st_size > 0


def test_every_operation_has_its_own_id_and_undelete_is_named_so(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values() if "operationId" in op]
    assert len(ids) == len(set(ids))
    paths = {path.rstrip("/"): item for path, item in schema["paths"].items()}
    assert paths["/tables/Task/{id}"]["post"]["operationId"] == "tables_Task_undelete"
    assert paths["/tables/Task"]["post"]["operationId"] == "tables_Task_create"
    assert not any(i.endswith("_2") for i in ids)


def test_an_explicit_operation_id_on_undelete_wins():
    # A project naming its undelete with extend_schema keeps its name.
    from django.urls import include, path
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.utils import extend_schema

    from django_offline_sync.routers import SyncRouter
    from example_project.tasks.views import TaskViewSet

    class Named(TaskViewSet):
        @extend_schema(operation_id="restoreTask")
        def undelete(self, request, pk=None, *args, **kwargs):
            return super().undelete(request, pk, *args, **kwargs)

    router = SyncRouter()
    router.register("Task", Named, basename="named")
    schema = SchemaGenerator(patterns=[path("tables/", include(router.urls))]).get_schema(request=None, public=True)
    detail = {path.rstrip("/"): item for path, item in schema["paths"].items()}["/tables/Task/{id}"]
    assert detail["post"]["operationId"] == "restoreTask"
    assert detail["get"]["operationId"].endswith("_retrieve")


def test_swagger_ui_loads_nothing_from_another_host(client):
    """/api/docs/ and its start-up script name only this site's files (drf-spectacular-sidecar)."""
    import re
    from urllib.parse import urlsplit

    from django.contrib.staticfiles import finders

    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in u for u in urls) and any("swagger-ui.css" in u for u in urls)
    script_url = next(u for u in urls if "script" in u and "swagger-ui" not in u)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    everything = html + script.content.decode()
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", everything), "an absolute URL to another host"
    for url in urls:
        assert not urlsplit(url).netloc, url
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is not among the site's static files"


def test_ids_are_declared_as_the_strings_the_wire_sends():
    # An integer key and a foreign key to one travel as strings (every client's id is a
    # string); the schema declared them integers, so generated clients failed to parse them.
    from django.contrib.auth import get_user_model
    from django.urls import include, path
    from drf_spectacular.generators import SchemaGenerator

    from django_offline_sync.routers import SyncRouter
    from django_offline_sync.serializers import Representer
    from django_offline_sync.viewsets import SyncViewSet
    from example_project.tasks.models import Inspection
    from tests.legacy.models import Asset

    class Owned(SyncViewSet):
        model = Inspection
        fields = ["site", "owner"]

    class Assets(SyncViewSet):
        model = Asset

    router = SyncRouter()
    router.register("Inspection", Owned, basename="owned")
    router.register("Asset", Assets, basename="asset")
    schema = SchemaGenerator(patterns=[path("tables/", include(router.urls))]).get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    assert components["AssetSync"]["properties"]["id"]["type"] == "string"
    assert components["InspectionSync"]["properties"]["ownerId"]["type"] == "string"

    owner = get_user_model().objects.create_user("owner")
    inspection = Inspection.objects.create(site="s", owner=owner)
    assert Representer(Inspection, ["site", "owner"]).from_instance(inspection)["ownerId"] == str(owner.pk)
    asset = Asset(id=5, name="a", version=1)  # not saved: the legacy app has no table here
    assert Representer(Asset).from_instance(asset)["id"] == "5"
