"""django-filter next to OData: plain query parameters narrow what a device syncs."""

import pytest

from tests.factories import NoteFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tasks():
    a, b = TaskFactory(), TaskFactory()
    notes_a = NoteFactory.create_batch(3, task=a)
    NoteFactory.create_batch(2, task=b)
    return a, notes_a


def test_plain_parameter_narrows_the_query(v2, two_tasks):
    task, notes = two_tasks
    rows = v2.get(f"/tables/Note?task={task.id}").json()
    assert {r["id"] for r in rows} == {n.id for n in notes}


def test_plain_parameter_combines_with_filter_and_count(v2, two_tasks):
    task, notes = two_tasks
    target = notes[0]
    body = v2.get(f"/tables/Note?task={task.id}&$filter=id eq '{target.id}'&$inlinecount=allpages").json()
    assert body["count"] == 1 and body["results"][0]["id"] == target.id


def test_partial_incremental_pull_per_query(v3, two_tasks, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2}
    task, notes = two_tasks
    query = f"task={task.id}&$orderby=updatedAt&$count=true&__includedeleted=true"
    response = v3.get(f"/tables/Note?{query}")
    seen = []
    while True:
        body = response.json()
        assert body["count"] == 3
        seen += [i["id"] for i in body["items"]]
        if not body["nextLink"]:
            break
        assert f"task={task.id}" in body["nextLink"]
        response = v3.get(f"/tables/Note?{body['nextLink']}")
    assert sorted(seen) == sorted(n.id for n in notes)
    # Later: only what changed in this task's notes comes back.
    notes[1].body = "edited"
    notes[1].save()
    NoteFactory(body="other task's note")
    token = max(v3.get(f"/tables/Note/{n.id}").json()["updatedAt"] for n in notes if n.id != notes[1].id)
    later = v3.get(
        f"/tables/Note?task={task.id}&$filter=(updatedAt gt cast({token},Edm.DateTimeOffset))&$orderby=updatedAt"
    ).json()
    assert [i["id"] for i in later["items"]] == [notes[1].id]


def test_invalid_plain_parameter_is_400(v2, two_tasks):
    response = v2.get("/tables/Note?task=does-not-exist")
    assert response.status_code == 400
    assert "task" in str(response.json())
