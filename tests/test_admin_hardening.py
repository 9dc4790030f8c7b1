"""The package's ModelAdmins against hostile query strings and object ids.

PostgreSQL text cannot hold NUL, and both backends refuse to encode a lone surrogate: such a
value in a lookup, a search or an object id is refused with a 400 before any query runs.
``__regex``/``__iregex`` lookups from the query string are refused unless the ModelAdmin opts
in, and the changelist runs under ``QUERY_TIMEOUT_MS``.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import SuspiciousOperation
from django.test import RequestFactory
from django.urls import reverse

from django_offline_sync.admin import SyncModelAdmin
from django_offline_sync.models import SyncActivity, SyncClock, SyncHorizon, SyncImport, SyncRejection
from example_project.tasks.models import Inspection, Note, Task
from tests.factories import NoteFactory, TaskFactory

pytestmark = pytest.mark.django_db

NOTES = reverse("admin:tasks_note_changelist")
INSPECTIONS = reverse("admin:tasks_inspection_changelist")
TASKS = reverse("admin:tasks_task_changelist")
LEDGER = reverse("admin:offline_sync_syncrejection_changelist")
CLOCKS = reverse("admin:offline_sync_syncclock_changelist")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (NOTES, {"task__id__exact": "\x00"}),
        (NOTES, {"body": "a\x00b"}),
        (NOTES, {"body__in": "x,\x00"}),
        (INSPECTIONS, {"condition__exact": "\x00"}),
        (TASKS, {"deleted": "\x00"}),
        (LEDGER, {"row_id": "\x00"}),
        (LEDGER, {"client_item__te\x00xt": "1"}),
        (CLOCKS, {"table": "\x00"}),
    ],
)
def test_changelist_refuses_a_nul_in_a_lookup(admin_client, url, params):
    assert admin_client.get(url, params).status_code == 400


@pytest.mark.parametrize("url", [NOTES, TASKS, LEDGER, CLOCKS])
def test_changelist_drops_a_nul_search_term_with_django_s_message(admin_client, url):
    # Django's own search form refuses it (ProhibitNullCharactersValidator) and searches nothing.
    response = admin_client.get(url, {"q": "a\x00"})
    assert response.status_code == 200
    assert response.context["cl"].query == ""
    assert "Null characters are not allowed." in [str(m) for m in response.context["messages"]]


def test_autocomplete_refuses_a_nul_in_the_term(admin_client):
    params = {"term": "\x00", "app_label": "tasks", "model_name": "note", "field_name": "task"}
    assert admin_client.get(reverse("admin:autocomplete"), params).status_code == 400


@pytest.mark.parametrize("view", ["change", "delete", "history"])
@pytest.mark.parametrize("object_id", ["%00", "a%00b"])
def test_object_views_refuse_a_nul_in_the_id(admin_client, view, object_id):
    url = reverse(f"admin:tasks_note_{view}", args=["PLACEHOLDER"]).replace("PLACEHOLDER", object_id)
    assert admin_client.get(url).status_code == 400


@pytest.mark.parametrize("model", [Note, SyncRejection, SyncClock, SyncImport, SyncHorizon, SyncActivity])
def test_get_object_refuses_a_lone_surrogate(admin_user, model):
    request = RequestFactory().get("/")
    request.user = admin_user
    with pytest.raises(SuspiciousOperation):
        admin.site._registry[model].get_object(request, "a\udc80")


@pytest.mark.parametrize("model", [Task, Note, Inspection, SyncRejection, SyncClock, SyncImport, SyncHorizon])
def test_lookup_allowed_refuses_nul_surrogates_and_regex(admin_user, model):
    request = RequestFactory().get("/")
    request.user = admin_user
    model_admin = admin.site._registry[model]
    assert model_admin.lookup_allowed("id", "x", request)
    assert not model_admin.lookup_allowed("id", "\x00", request)
    assert not model_admin.lookup_allowed("id", "a\udc80", request)
    assert not model_admin.lookup_allowed("id__regex", "x", request)
    assert not model_admin.lookup_allowed("id__iregex", "x", request)
    assert not model_admin.lookup_allowed("id__lower__regex", "x", request)


def test_changelist_refuses_regex_lookups(admin_client):
    NoteFactory(body="a" * 30)
    assert admin_client.get(NOTES, {"body__regex": "(a*)*b"}).status_code == 400
    assert admin_client.get(NOTES, {"body__iregex": "x"}).status_code == 400


def test_regex_lookups_are_allowed_when_the_model_admin_opts_in(admin_user, monkeypatch):
    request = RequestFactory().get("/")
    request.user = admin_user
    model_admin = admin.site._registry[Note]
    monkeypatch.setattr(model_admin, "allow_regex_lookups", True)
    assert model_admin.lookup_allowed("body__regex", "^a", request)
    assert not model_admin.lookup_allowed("body__regex", "\x00", request)


def test_regex_opt_in_is_a_class_attribute():
    assert SyncModelAdmin.allow_regex_lookups is False


def test_action_refuses_a_nul_in_the_selected_ids(admin_client):
    task = TaskFactory()
    data = {"action": "restore_selected", helpers.ACTION_CHECKBOX_NAME: [task.pk, "\x00"]}
    assert admin_client.post(TASKS, data).status_code == 400


def test_ordinary_lookups_and_ids_still_work(admin_client):
    note = NoteFactory(body="hello")
    assert admin_client.get(NOTES, {"task__id__exact": note.task_id}).status_code == 200
    assert admin_client.get(NOTES, {"q": "hell"}).status_code == 200
    assert admin_client.get(reverse("admin:tasks_note_change", args=[note.pk])).status_code == 200
    assert admin_client.get(reverse("admin:tasks_note_history", args=[note.pk])).status_code == 200


# -- QUERY_TIMEOUT_MS over the changelist ------------------------------------------------------

SLOW_WHERE = {
    "postgresql": "(SELECT 1 FROM pg_sleep(5)) = 1",
    "sqlite": "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2e9) "
    "SELECT max(x) FROM c) > 0",
}


@pytest.fixture
def slow_notes(monkeypatch):
    from django.db import connection

    if connection.vendor not in SLOW_WHERE:  # pragma: no cover - MySQL/MariaDB
        pytest.skip("no slow statement written for this backend")
    NoteFactory()
    model_admin = admin.site._registry[Note]
    plain = type(model_admin).get_queryset
    where = [SLOW_WHERE[connection.vendor]]
    monkeypatch.setattr(model_admin, "get_queryset", lambda request: plain(model_admin, request).extra(where=where))
    return model_admin


def test_a_slow_changelist_is_stopped_and_answered_503(admin_client, slow_notes, monkeypatch):
    import time

    monkeypatch.setattr(slow_notes, "query_timeout_ms", 200)
    started = time.monotonic()
    response = admin_client.get(NOTES)
    assert response.status_code == 503
    assert time.monotonic() - started < 3
    assert "200 ms" in response.content.decode()
    # The connection (and the test's transaction) is still usable.
    assert admin_client.get(TASKS).status_code == 200


def test_the_changelist_limit_defaults_to_query_timeout_ms(admin_client, slow_notes, settings):
    settings.OFFLINE_SYNC = {**getattr(settings, "OFFLINE_SYNC", {}), "QUERY_TIMEOUT_MS": 200}
    assert admin_client.get(NOTES).status_code == 503
