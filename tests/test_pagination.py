"""Paging rules: keyset order detection and the v1/v2 boundary ``$skip``."""

from urllib.parse import quote

import pytest
from django.db.models import F

from django_offline_sync.query.pull import KEYSET_ID, KEYSET_UPDATED, keyset_of
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def test_keyset_orders_are_recognised():
    assert keyset_of(["updated_at", "id"]) == KEYSET_UPDATED
    assert keyset_of(["id"]) == KEYSET_ID
    assert keyset_of(["-updated_at", "id"]) is None
    assert keyset_of(["text", "id"]) is None
    assert keyset_of([F("updated_at").asc(), "id"]) == KEYSET_UPDATED


def pull_page(client, token: str, skip: int):
    query = (
        f"$filter=(updatedAt ge datetimeoffset'{quote(token)}')&$orderby=updatedAt"
        f"&$skip={skip}&$top=50&__includeDeleted=true"
    )
    return client.get(f"/tables/Task?{query}").json()


def test_v2_skip_past_a_boundary_row_that_moved_does_not_jump_over_a_new_row(v2):
    boundary = TaskFactory(text="B")
    first = pull_page(v2, v2.get(f"/tables/Task/{boundary.id}").json()["updatedAt"], 0)
    assert [r["id"] for r in first] == [boundary.id]
    token = first[0]["updatedAt"]
    # The max did not advance, so the .NET/JS client asks again with $skip=1. Meanwhile a new
    # row commits and then the boundary row is edited (it moves behind the new row).
    new = TaskFactory(text="N")
    boundary.text = "B edited"
    boundary.save()
    second = pull_page(v2, token, 1)
    assert [r["id"] for r in second] == [new.id, boundary.id]


def test_v2_skip_within_a_tie_is_unchanged_when_nothing_moved(v2, settings):
    settings.OFFLINE_SYNC = {"STAMPING": "now"}
    from example_project.tasks.models import Task

    Task.objects.bulk_create([Task(text=str(i)) for i in range(5)])  # one stamp for all: a tie
    token = pull_page(v2, "1970-01-01T00:00:00.000Z", 0)[0]["updatedAt"]
    rows = [r["id"] for r in pull_page(v2, token, 0)]
    assert len(rows) == 5
    assert [r["id"] for r in pull_page(v2, token, 2)] == rows[2:]
    assert pull_page(v2, token, 5) == []
