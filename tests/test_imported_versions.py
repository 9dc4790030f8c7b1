"""Rows imported from another server keep the version it issued until their next write here.

The Node SQLite provider issues base64 of its counter's digits (1 byte and up), SQL Server an
8-byte ``rowversion``, Datasync repositories a 16-byte GUID (``docs/protocol.rst`` §2.2). A
device's queued write carries that version in ``If-Match`` (or, v2, in the body); it must match
the imported row, then the row takes a version of ours, and the old one is stale from then on.
"""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

from django_offline_sync.models import encode_version
from django_offline_sync.wire import IMPORTED_VERSION_MAX_LENGTH, check_imported_version
from example_project.tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

ISSUED = ["MQ==", "MTI=", "AAAAAAAAJyY=", "AAAAAAAAAAAAAAAAAAAAAA=="]


def _imported(version: str, **fields) -> Task:
    task = TaskFactory(**fields)
    # Written around the stamping update(), as the importer writes.
    QuerySet.update(Task.all_objects.filter(pk=task.pk), imported_version=version)
    return Task.all_objects.get(pk=task.pk)


def _etag(version: str) -> str:
    return f'"{version}"'


@pytest.mark.parametrize("issued", ISSUED)
def test_imported_row_shows_its_old_version_when_read_or_listed(v2, v3, issued):
    task = _imported(issued)
    assert task.etag_version == issued
    response = v2.get(f"/tables/Task/{task.id}")
    assert response.json()["version"] == issued and response["ETag"] == _etag(issued)
    assert v2.get("/tables/Task").json()[0]["version"] == issued
    assert v3.get("/tables/Task").json()["items"][0]["version"] == issued
    assert v2.get(f"/tables/Task/{task.id}", HTTP_IF_NONE_MATCH=_etag(issued)).status_code == 304


@pytest.mark.parametrize("issued", ISSUED)
def test_if_match_with_the_old_version_updates_then_the_row_takes_ours(v2, issued):
    task = _imported(issued, text="old")
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "new"}, HTTP_IF_MATCH=_etag(issued))
    assert response.status_code == 200, response.content
    task.refresh_from_db()
    assert task.imported_version is None and task.text == "new"
    assert response.json()["version"] == encode_version(task.version) == task.etag_version != issued
    # The old version is stale now, like any overwritten version.
    again = v2.patch_json(f"/tables/Task/{task.id}", {"text": "late"}, HTTP_IF_MATCH=_etag(issued))
    assert again.status_code == 412 and again.json()["text"] == "new"


def test_a_stale_old_version_conflicts_with_the_imported_row_shown(v2, v3):
    task = _imported("Mg==", text="server")
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "client"}, HTTP_IF_MATCH=_etag("MQ=="))
    assert response.status_code == 412
    assert response.json()["version"] == "Mg==" and response["ETag"] == _etag("Mg==")
    response = v3.put_json(f"/tables/Task/{task.id}", {"id": task.id, "text": "client"}, HTTP_IF_MATCH=_etag("MQ=="))
    assert response.status_code == 412 and response.json()["version"] == "Mg=="
    # Our own encoding of the row's stored number is not its version while it is imported.
    ours = _etag(encode_version(task.version))
    response = v2.patch_json(f"/tables/Task/{task.id}", {"text": "x"}, HTTP_IF_MATCH=ours)
    assert response.status_code == 412
    assert Task.all_objects.get(pk=task.pk).text == "server"


def test_v2_body_version_and_v3_replace_and_delete_honour_the_old_version(v2, v3):
    body_versioned = _imported("MQ==")
    response = v2.patch_json(f"/tables/Task/{body_versioned.id}", {"text": "b", "version": "MQ=="})
    assert response.status_code == 200
    replaced = _imported("AAAAAAAAAAAAAAAAAAAAAA==")
    response = v3.put_json(
        f"/tables/Task/{replaced.id}", {"id": replaced.id, "text": "r"}, HTTP_IF_MATCH=_etag("AAAAAAAAAAAAAAAAAAAAAA==")
    )
    assert response.status_code == 200
    deleted = _imported("AAAAAAAAJyY=")
    assert v2.delete(f"/tables/Task/{deleted.id}", HTTP_IF_MATCH=_etag("AAAAAAAAJyY=")).status_code in (200, 204)
    row = Task.all_objects.get(pk=deleted.pk)
    assert row.deleted and row.imported_version is None


def test_every_write_path_clears_the_imported_version(db):
    saved = _imported("MQ==")
    saved.text = "saved"
    saved.save(update_fields=["text"])
    bulk = _imported("MQ==")
    Task.objects.filter(pk=bulk.pk).update(text="bulk")
    soft = _imported("MQ==")
    soft.delete()
    assert list(Task.all_objects.filter(imported_version__isnull=False)) == []


def test_the_column_is_never_a_table_column(v2):
    task = _imported("MQ==")
    body = v2.get(f"/tables/Task/{task.id}").json()
    assert "importedVersion" not in body and "imported_version" not in body
    response = v2.patch_json(f"/tables/Task/{task.id}", {"importedVersion": "Mg=="})
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["", "not base64!", "A" * (IMPORTED_VERSION_MAX_LENGTH + 4), 17, None, "===="])
def test_a_version_this_server_cannot_honour_is_refused(value):
    with pytest.raises(ValueError):
        check_imported_version(value)
