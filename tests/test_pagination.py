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


def pull_page_counted(client, token: str, skip: int):
    """A pull page as the .NET client asks for it, with the count (v1: ``__updatedAt``)."""
    stamp = "__updatedAt" if client.generation == "v1" else "updatedAt"
    query = (
        f"$filter=({stamp} ge datetimeoffset'{quote(token)}')&$orderby={stamp}"
        f"&$skip={skip}&$top=2&__includeDeleted=true&$inlinecount=allpages"
    )
    if client.generation == "v1":
        query += "&__systemproperties=*"
    return client.get(f"/tables/Task?{query}").json()


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_a_pull_count_leaves_out_the_boundary_row_the_client_holds(request, generation):
    client = request.getfixturevalue(generation)
    stamp = "__updatedAt" if generation == "v1" else "updatedAt"
    rows = TaskFactory.create_batch(5)
    # The first pull (the epoch token): every row is new.
    first = pull_page_counted(client, "1970-01-01T00:00:00.000Z", 0)
    assert first["count"] == 5
    token = first["results"][-1][stamp]
    # The next request starts at the last row's stamp: `ge` sends that row again, but the
    # count is what the pull has still to bring (the three rows after it).
    again = pull_page_counted(client, token, 0)
    assert again["results"][0]["id"] == first["results"][-1]["id"]  # the repeat, as the clients expect
    assert again["count"] == 3
    # With $skip=1 (the token did not advance) the held row is skipped and not counted.
    skipped = pull_page_counted(client, token, 1)
    assert skipped["count"] == 3
    assert [r["id"] for r in skipped["results"]] == [r.id for r in rows[2:4]]
    # A boundary row that moved since is not at the token any more: nothing to leave out.
    rows[1].text = "moved"
    rows[1].save()
    assert pull_page_counted(client, token, 0)["count"] == 4


def test_a_count_outside_a_pull_counts_every_matching_row(v2):
    TaskFactory.create_batch(3)
    token = v2.get("/tables/Task?$orderby=updatedAt").json()[0]["updatedAt"]
    # Not a pull page (no __includeDeleted): OData's count of the filter's rows.
    body = v2.get(
        f"/tables/Task?$filter=(updatedAt ge datetimeoffset'{quote(token)}')&$orderby=updatedAt&$inlinecount=allpages"
    ).json()
    assert body["count"] == 3
