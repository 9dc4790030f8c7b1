"""The table pipeline's contracts: columns from one rule, explicit stamps, errors and handlers."""

from __future__ import annotations

import ast
import pathlib

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.pagination import LimitOffsetPagination

import django_offline_sync
from django_offline_sync.filters import ODataFilterBackend
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Note, Task
from tests.factories import TaskFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.pipeline.urls")]


# -- one rule decides a table's columns ---------------------------------------------------------


def test_fields_naming_a_foreign_key_by_attname_inserts_returns_and_filters_it(v2):
    task = TaskFactory()
    response = v2.post_json("/tables/NarrowNote", {"id": "n1", "taskId": task.id, "body": "hello"})
    assert response.status_code == 201, response.json()
    assert response.json()["taskId"] == task.id
    assert Note.all_objects.get(pk="n1").task_id == task.id
    listed = v2.get(f"/tables/NarrowNote?$filter=taskId eq '{task.id}'").json()
    assert [row["id"] for row in listed] == ["n1"]
    assert set(listed[0]) == {"id", "taskId", "body", "createdAt", "updatedAt", "version", "deleted"}


def test_fields_whitelist_rejects_a_column_it_does_not_expose(v2):
    task = TaskFactory()
    response = v2.post_json("/tables/NarrowNote", {"taskId": task.id, "body": "x", "priority": 1})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "unknown_field"


def test_fields_naming_no_column_is_a_configuration_error_not_a_hidden_column():
    class Typo(SyncViewSet):
        model = Task
        fields = ("text", "compelte")

    with pytest.raises(ImproperlyConfigured, match="compelte"):
        Typo._table()


# -- the list pipeline's steps cannot be dropped silently ------------------------------------


def test_a_view_without_the_odata_filter_backend_is_refused_at_class_creation():
    with pytest.raises(ImproperlyConfigured, match="ODataFilterBackend"):

        class NoOData(SyncViewSet):
            model = Task
            filter_backends = []


def test_a_view_with_another_paginator_is_refused_at_class_creation():
    with pytest.raises(ImproperlyConfigured, match="SyncPagination"):

        class OtherPaging(SyncViewSet):
            model = Task
            pagination_class = LimitOffsetPagination


def test_the_filter_backend_only_filters(rf):
    live, gone = TaskFactory(), TaskFactory()
    gone.delete()

    class View:
        odata_query = type("Q", (), {"filter": None})()

    queryset = Task.all_objects.order_by("-id")
    result = ODataFilterBackend().filter_queryset(rf.get("/"), queryset, View())
    assert set(result) == {live, gone}  # tombstones are the pipeline's business, not the backend's
    assert result.query.order_by == queryset.query.order_by


# -- the write stamp is explicit ----------------------------------------------------------------


def test_perform_update_that_saves_twice_answers_the_final_row_and_version(v2):
    task = TaskFactory(priority=1)
    response = v2.patch_json(f"/tables/SaveTwice/{task.id}", {"priority": 2}, HTTP_IF_MATCH=f'"{task.etag_version}"')
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.priority == 102
    assert response.json()["priority"] == 102
    assert response.json()["version"] == task.etag_version
    assert response["ETag"] == f'"{task.etag_version}"'


def test_perform_update_that_does_not_save_leaves_row_and_version_unchanged(v2):
    task = TaskFactory(text="before")
    response = v2.patch_json(f"/tables/NoSave/{task.id}", {"text": "after"})
    assert response.status_code == 200
    fresh = Task.objects.get(pk=task.pk)
    assert fresh.text == "before" and fresh.version == task.version
    assert response["ETag"] == f'"{fresh.etag_version}"'


def test_save_with_an_explicit_stamp_uses_it():
    from django.db import transaction

    from django_offline_sync import stamping

    task = TaskFactory()
    with transaction.atomic():
        (stamp,) = stamping.reserve(Task, 1, "default")
        task.text = "stamped"
        task.save(stamp=stamp)
    task.refresh_from_db()
    assert task.version == stamp.version
    assert stamping.datetime_to_ms(task.updated_at) == stamp.ms


# -- errors: stable codes, and the project's own handler --------------------------------------


@pytest.mark.parametrize(
    "send, code",
    [
        (lambda c, t: c.post("/tables/SaveTwice", "{", content_type="application/json"), "malformed_body"),
        (lambda c, t: c.post("/tables/SaveTwice", "", content_type="application/json"), "empty_body"),
        (lambda c, t: c.post("/tables/SaveTwice", "[1]", content_type="application/json"), "body_not_object"),
        (lambda c, t: c.post_json("/tables/SaveTwice", {"nope": 1}), "unknown_field"),
        (lambda c, t: c.post_json("/tables/SaveTwice", {"id": "a/b"}), "invalid_id"),
        (lambda c, t: c.patch_json(f"/tables/SaveTwice/{t.id}", {"id": "other"}), "id_mismatch"),
        (lambda c, t: c.patch_json(f"/tables/SaveTwice/{t.id}", {}, HTTP_IF_MATCH='"x"'), "invalid_precondition"),
        (lambda c, t: c.get("/tables/SaveTwice?$filter=nope eq 1"), "invalid_query"),
        (lambda c, t: c.get("/tables/SaveTwice?__cursor=forged"), "invalid_cursor"),
        (lambda c, t: c.post(f"/tables/SaveTwice/{t.id}", "{}", content_type="application/json"), "body_not_allowed"),
        (lambda c, t: c.get("/tables/SaveTwice/missing"), "not_found"),
        (lambda c, t: c.post_json("/tables/SaveTwice", {"priority": "high"}), "invalid_item"),
    ],
)
def test_each_failure_has_its_own_stable_error_code(v2, send, code):
    task = TaskFactory()
    response = send(v2, task)
    assert 400 <= response.status_code < 500
    body = response.json()
    assert body["errorCode"] == code, body
    assert body["message"]  # the v2 shape: {message, error, ...}


def test_generation_shapes_carry_the_code(v1, v3):
    assert v3.get("/tables/SaveTwice/missing").json() == {
        "title": "The item does not exist.",
        "status": 404,
        "errorCode": "not_found",
    }
    body = v1.get("/tables/SaveTwice/missing").json()
    assert body["code"] == 404 and body["errorCode"] == "not_found"


def test_unsupported_version_has_its_code(client):
    response = client.get("/tables/SaveTwice", HTTP_ZUMO_API_VERSION="9.0.0")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "unsupported_version"


@override_settings(REST_FRAMEWORK={"EXCEPTION_HANDLER": "tests.pipeline.handlers.tagged_handler"})
def test_a_project_exception_handler_is_honoured(v3):
    response = v3.get("/tables/SaveTwice/missing")
    assert response.status_code == 404
    assert response.json() == {"project": "handled", "kind": "ItemNotFound"}
    bad = v3.get("/tables/SaveTwice?$top=-1")
    assert bad.status_code == 400 and bad.json() == {"project": "handled", "kind": "ODataError"}


@override_settings(REST_FRAMEWORK={"EXCEPTION_HANDLER": "tests.pipeline.handlers.tagged_handler"})
def test_conflicts_keep_the_entity_body_whatever_the_handler(v3):
    task = TaskFactory()
    response = v3.patch_json(f"/tables/SaveTwice/{task.id}", {"text": "x"}, HTTP_IF_MATCH='"AAAAAAAAAAE="')
    assert response.status_code == 412
    assert response.json()["id"] == task.id and response.json()["version"] == task.etag_version


def test_v1_conflict_body_has_every_system_property_even_unasked(v1):
    task = TaskFactory()
    response = v1.patch_json(f"/tables/SaveTwice/{task.id}", {"text": "x"}, HTTP_IF_MATCH='"AAAAAAAAAAE="')
    assert response.status_code == 412
    body = response.json()
    assert body["__version"] == task.etag_version
    assert {"__createdAt", "__updatedAt", "__deleted"} <= set(body)
    assert "version" not in body


def test_v1_duplicate_insert_is_409_with_the_whole_row(v1):
    task = TaskFactory()
    response = v1.post_json("/tables/SaveTwice", {"id": task.id, "text": "again"})
    assert response.status_code == 409
    assert response.json()["__version"] == task.etag_version


# -- generation logic stays in its module -------------------------------------------------------


def test_no_module_but_the_generation_policies_compares_generation_names():
    """A comparison with "v1"/"v2"/"v3" outside generations.py (and the settings that list them)."""
    root = pathlib.Path(django_offline_sync.__file__).parent
    allowed = {root / "generations.py", root / "settings.py"}
    offenders = []
    for path in root.rglob("*.py"):
        if path in allowed or "client" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for part in [node.left, *node.comparators]:
                    if isinstance(part, ast.Constant) and part.value in ("v1", "v2", "v3"):
                        offenders.append(f"{path.name}:{node.lineno}")
                    if isinstance(part, ast.Attribute) and part.attr in ("name", "version") and any(
                        isinstance(c, ast.Constant) and c.value in ("v1", "v2", "v3") for c in node.comparators
                    ):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# -- review regressions: behaviour kept from 0.1 ---------------------------------------------


def test_put_fills_a_callable_default_anew_on_every_request(v3):
    from tests.models import Coded

    first = Coded.objects.create(name="a")
    second = Coded.objects.create(name="b")
    for row in (first, second):
        response = v3.put_json(f"/tables/Coded/{row.id}", {"id": row.id, "name": row.name + "!"})
        assert response.status_code == 200, response.json()
    codes = [Coded.objects.get(pk=r.pk).code for r in (first, second)]
    assert codes[0] != codes[1]
    tags = [Coded.objects.get(pk=r.pk).tags for r in (first, second)]
    assert tags == [[], []]


def test_a_unique_constraint_on_update_is_a_400_not_a_500(v3):
    from tests.models import Coded

    Coded.objects.create(name="a", slug="taken")
    other = Coded.objects.create(name="b")
    response = v3.patch_json(f"/tables/Coded/{other.id}", {"slug": "taken"})
    assert response.status_code == 400
    assert response.json()["errorCode"] in ("constraint_violation", "invalid_item")
    assert Coded.objects.get(pk=other.pk).slug is None


def test_hooks_with_drf_signatures_still_delete_and_undelete(v2):
    task = TaskFactory()
    assert v2.delete(f"/tables/DrfHooks/{task.id}").status_code == 204
    assert Task.all_objects.get(pk=task.pk).deleted
    response = v2.post(f"/tables/DrfHooks/{task.id}")
    assert response.status_code == 200
    assert not Task.all_objects.get(pk=task.pk).deleted
    assert response.json()["version"] == Task.objects.get(pk=task.pk).etag_version


def test_a_mixed_dialect_is_refused_before_authentication(v3):
    response = v3.get("/tables/Inspection?$filter=__updatedAt gt datetimeoffset'2024-01-01T00:00:00Z'")
    assert response.status_code == 400
    assert response.json()["errorCode"] == "mixed_generation"


def test_patch_over_a_tombstone_is_404_whatever_include_deleted_says(v2, v3):
    task = TaskFactory()
    task.delete()
    assert v2.patch_json(f"/tables/SaveTwice/{task.id}?__includedeleted=maybe", {"text": "x"}).status_code == 404
    assert v3.patch_json(f"/tables/SaveTwice/{task.id}?__includedeleted=maybe", {"text": "x"}).status_code == 410


def test_undelete_by_replace_that_the_hook_does_not_save_leaves_the_tombstone(v3):
    task = TaskFactory()
    task.delete()
    response = v3.put_json(f"/tables/NoSave/{task.id}", {"id": task.id, "text": "back"})
    assert response.status_code == 200
    assert Task.all_objects.get(pk=task.pk).deleted is True
    assert response.json()["deleted"] is True


def test_the_handler_leaves_a_project_view_alone(client):
    response = client.get("/plain/")
    assert response.status_code == 404
    assert response.json() == {"detail": "nothing here"}


def test_the_schema_generator_does_not_warn_about_the_versioning():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator(urlconf="example_project.urls").get_schema(request=None, public=True)
    assert not [w for w in GENERATOR_STATS._warn_cache if "versioning" in w]


@pytest.mark.parametrize("legacy_id", ["ends in a space ", "zero\u200bwidth", "   "])
def test_rows_stored_under_ids_older_releases_accepted_stay_addressable(v3, legacy_id):
    Task.all_objects.bulk_create([Task(id=legacy_id, text="old")])
    from urllib.parse import quote

    path = f"/tables/SaveTwice/{quote(legacy_id)}"
    assert v3.get(path).json()["id"] == legacy_id
    assert v3.patch_json(path, {"text": "new"}).status_code == 200
    assert Task.objects.get(pk=legacy_id).text == "new"


def test_ids_no_row_can_hold_are_404_before_the_database_sees_them(v3):
    assert v3.get("/tables/SaveTwice/a%00b").status_code == 404
    assert v3.get("/tables/SaveTwice/" + "x" * 256).status_code == 404
