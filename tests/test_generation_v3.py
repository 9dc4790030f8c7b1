"""The v3 (Datasync, ZUMO-API-VERSION 3.0.0) protocol, replayed request by request (docs/protocol.rst §3-§9)."""

from urllib.parse import parse_qsl

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_offline_sync import cursor as cursors
from django_offline_sync.models import SyncClock
from django_offline_sync.settings import get_settings
from django_offline_sync.stamping import CLOCK_TABLE
from example_project.tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def etag(version: str) -> str:
    return f'"{version}"'


def follow(client, path, first_query, headers=None):
    """Pull as the CTK client does: follow nextLink (a query string) until it is null."""
    headers = headers or {}
    pages = []
    response = client.get(f"{path}?{first_query}", **headers)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        if not body["nextLink"]:
            return pages
        response = client.get(f"{path}?{body['nextLink']}", **headers)


def test_query_returns_items_count_and_next_link(v3):
    TaskFactory.create_batch(3)
    body = v3.get("/tables/Task").json()
    assert set(body) == {"items", "count", "nextLink"}
    assert len(body["items"]) == 3 and body["count"] is None and body["nextLink"] is None


def test_count_true_counts_all_matching_rows(v3):
    TaskFactory.create_batch(3)
    assert v3.get("/tables/Task?$count=true&$top=1").json()["count"] == 3


def test_ctk_incremental_pull_follows_keyset_next_links(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 4}
    tasks = TaskFactory.create_batch(10)
    pages = follow(v3, "/tables/Task", "$orderby=updatedAt&$count=true&__includedeleted=true")
    ids = [item["id"] for page in pages for item in page["items"]]
    assert ids == [t.id for t in sorted(tasks, key=lambda t: (t.updated_at, t.id))]
    assert len(pages) == 3  # 4 + 4 + 2, and no empty trailing page
    assert all(page["count"] == 10 for page in pages)
    assert "__cursor=" in pages[0]["nextLink"] and "$skip" not in pages[0]["nextLink"]
    assert not pages[0]["nextLink"].startswith(("?", "/", "http"))


def test_ctk_pull_with_gt_token(v3):
    tasks = sorted(TaskFactory.create_batch(5), key=lambda t: (t.updated_at, t.id))
    token = v3.get(f"/tables/Task/{tasks[1].id}").json()["updatedAt"]
    query = (
        f"$filter=(updatedAt gt cast({token},Edm.DateTimeOffset))&$orderby=updatedAt&$count=true&__includedeleted=true"
    )
    ids = [i["id"] for p in follow(v3, "/tables/Task", query) for i in p["items"]]
    assert ids == [t.id for t in tasks[2:]]


def test_rows_updated_during_a_paged_pull_are_neither_skipped_nor_cycled(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 3}
    tasks = TaskFactory.create_batch(12)
    seen: list[str] = []
    response = v3.get("/tables/Task?$orderby=updatedAt&__includedeleted=true")
    round_ = 0
    while True:
        body = response.json()
        seen += [i["id"] for i in body["items"]]
        # Between pages, another device edits rows already pulled and rows not yet pulled.
        for task in (tasks[round_], tasks[-1 - round_]):
            task.refresh_from_db()
            task.text = f"edit {round_}"
            task.save()
        round_ += 1
        assert round_ < 50, "the pull cycles"
        if not body["nextLink"]:
            break
        response = v3.get(f"/tables/Task?{body['nextLink']}")
    assert set(seen) == {t.id for t in tasks}  # none skipped


def test_next_link_with_zumo_options_is_path_and_query(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    TaskFactory.create_batch(2)
    link = v3.get("/tables/Task?$orderby=updatedAt", HTTP_X_ZUMO_OPTIONS="nextLink=path").json()["nextLink"]
    assert link.startswith("/tables/Task?")


def test_next_link_absolute_when_configured(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1, "NEXT_LINK_FORMAT": "absolute"}
    TaskFactory.create_batch(2)
    assert v3.get("/tables/Task").json()["nextLink"].startswith("http://testserver/tables/Task?")


def test_next_link_for_ctk_user_agent_is_a_bare_query_string(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}  # NEXT_LINK_FORMAT "auto": chosen per client family
    TaskFactory.create_batch(2)
    link = v3.get("/tables/Task", HTTP_USER_AGENT="Datasync/9.0.0 (lang=dotnet)").json()["nextLink"]
    assert not link.startswith(("http", "/", "?"))


def test_other_orderings_page_with_skip(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2}
    TaskFactory.create_batch(5)
    pages = follow(v3, "/tables/Task", "$orderby=text desc")
    assert "$skip=2" in pages[0]["nextLink"]
    assert sum(len(p["items"]) for p in pages) == 5


def test_top_is_honoured_across_pages(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2}
    TaskFactory.create_batch(9)
    pages = follow(v3, "/tables/Task", "$orderby=updatedAt&$top=5")
    assert [len(p["items"]) for p in pages] == [2, 2, 1]


def test_tampered_cursor_returns_400(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    TaskFactory.create_batch(3)
    link = v3.get("/tables/Task?$orderby=updatedAt").json()["nextLink"]
    params = dict(parse_qsl(link))
    token = params["__cursor"]
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    response = v3.get("/tables/Task", {**params, "__cursor": forged})
    assert response.status_code == 400
    assert "cursor" in response.json()["title"].lower()


def test_cursor_cannot_be_moved_to_another_query(v3, settings):
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 1}
    TaskFactory.create_batch(3)
    link = v3.get("/tables/Task?$orderby=updatedAt&$filter=priority ge 0").json()["nextLink"]
    token = dict(parse_qsl(link))["__cursor"]
    response = v3.get("/tables/Task", {"$orderby": "updatedAt", "__cursor": token})
    assert response.status_code == 400


def test_cursor_payload_is_opaque_and_signed(v3):
    token = cursors.dump(cursors.Cursor(1, "a"), "digest")
    assert cursors.load(token, "digest").last_id == "a"


def test_cursor_carries_the_clock_of_the_database_that_read_the_page(v3, settings):
    """The next page must not be read from a database behind this one (``replicas.at_watermark``)."""
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2}
    TaskFactory.create_batch(5)
    link = v3.get("/tables/Task?$orderby=updatedAt").json()["nextLink"]
    token = dict(parse_qsl(link))["__cursor"]
    digest = signing.loads(token, salt=get_settings().CURSOR_SALT)["q"]  # signed, not encrypted
    assert cursors.load(token, digest).watermark == SyncClock.objects.get(table=Task._meta.db_table).last_ms
    assert cursors.load(cursors.dump(cursors.Cursor(1, "a", watermark=7), "d"), "d").watermark == 7


@pytest.mark.parametrize("cached", [True, False], ids=["shape-cached", "uncached"])
def test_the_watermark_is_read_in_the_page_statement(v3, settings, cached):
    """No statement of its own: the clock comes with the page's rows, as the page's snapshot saw it."""
    settings.OFFLINE_SYNC = {"V3_PAGE_SIZE": 2, "QUERY_CACHE_SIZE": 256 if cached else 0}
    TaskFactory.create_batch(5)
    url = "/tables/Task?$orderby=updatedAt&__includedeleted=true"
    v3.get(url)  # warm the shape cache
    with CaptureQueriesContext(connection) as queries:
        link = v3.get(url).json()["nextLink"]
    clock_reads = [q["sql"] for q in queries if CLOCK_TABLE in q["sql"]]
    assert len(clock_reads) == 1 and "ORDER BY" in clock_reads[0], [q["sql"] for q in queries]  # the page
    token = dict(parse_qsl(link))["__cursor"]
    digest = signing.loads(token, salt=get_settings().CURSOR_SALT)["q"]
    assert cursors.load(token, digest).watermark == SyncClock.objects.get(table=Task._meta.db_table).last_ms


def test_insert_returns_201_with_etag_and_location(v3):
    response = v3.post_json(
        "/tables/Task", {"id": "x1", "text": "t", "version": None, "updatedAt": None, "deleted": False}
    )
    assert response.status_code == 201
    assert response["Location"].endswith("/tables/Task/x1")
    assert response["ETag"] == etag(response.json()["version"])


def test_replace_with_if_match_and_stale_412(v3):
    task = TaskFactory()
    entity = v3.get(f"/tables/Task/{task.id}").json()
    ok = v3.put_json(f"/tables/Task/{task.id}", {**entity, "text": "new"}, HTTP_IF_MATCH=etag(entity["version"]))
    assert ok.status_code == 200 and ok.json()["text"] == "new"
    stale = v3.put_json(f"/tables/Task/{task.id}", {**entity, "text": "late"}, HTTP_IF_MATCH=etag(entity["version"]))
    assert stale.status_code == 412 and stale.json()["text"] == "new"
    assert stale["ETag"] == etag(ok.json()["version"])


def test_body_version_is_ignored_by_v3(v3):
    task = TaskFactory()
    entity = v3.get(f"/tables/Task/{task.id}").json()
    task.save()
    response = v3.put_json(f"/tables/Task/{task.id}", {**entity, "text": "client wins"})
    assert response.status_code == 200


def test_deleted_rows_are_gone_for_v3(v3):
    task = TaskFactory(deleted_row=True)
    assert v3.get(f"/tables/Task/{task.id}").status_code == 410
    assert v3.delete(f"/tables/Task/{task.id}").status_code == 410
    assert v3.put_json(f"/tables/Task/{task.id}", {"text": "x"}, HTTP_IF_MATCH='"AAAAAAAAAAE="').status_code == 410


def test_replace_with_includedeleted_undeletes(v3):
    task = TaskFactory(deleted_row=True)
    response = v3.put_json(
        f"/tables/Task/{task.id}?__includedeleted=true", {"id": task.id, "text": "back", "deleted": False}
    )
    assert response.status_code == 200
    assert response.json()["deleted"] is False and Task.objects.filter(pk=task.id).exists()


def test_unconditional_replace_over_a_tombstone_is_an_undelete(v3):
    # The CTK client-wins path turns a conflicting insert into this PUT (docs/protocol.rst §9(c)).
    task = TaskFactory(deleted_row=True)
    response = v3.put_json(f"/tables/Task/{task.id}", {"id": task.id, "text": "client wins"})
    assert response.status_code == 200 and response.json()["deleted"] is False


def test_delete_returns_204_and_stale_delete_412(v3):
    task = TaskFactory()
    stale = etag(task.etag_version)
    task.save()
    assert v3.delete(f"/tables/Task/{task.id}", HTTP_IF_MATCH=stale).status_code == 412
    assert v3.delete(f"/tables/Task/{task.id}").status_code == 204


def test_error_bodies_are_problem_like(v3):
    body = v3.get("/tables/Task?$filter=nope eq 1").json()
    assert body["status"] == 400 and "nope" in body["title"]


def test_v1_names_with_v3_version_are_rejected(v3):
    response = v3.get("/tables/Task?$filter=__updatedAt gt cast(2024-01-01T00:00:00.000Z,Edm.DateTimeOffset)")
    assert response.status_code == 400
    assert "__updatedAt" in response.json()["title"]


def test_ctk_client_without_version_header_is_v3_by_default(client):
    TaskFactory()
    body = client.get("/tables/Task", HTTP_USER_AGENT="Datasync/9.0.0").json()
    assert "items" in body


def test_disabled_generation_is_refused(v3, settings):
    settings.OFFLINE_SYNC = {"ENABLED_GENERATIONS": ["v2"], "DEFAULT_GENERATION": "v2"}
    response = v3.get("/tables/Task")
    assert response.status_code == 400 and "v3" in str(response.json())


@pytest.mark.parametrize("accept", ["application/xml", "text/csv"])
def test_an_unacceptable_media_type_is_answered_in_the_v3_shape(v3, v2, accept):
    """DRF negotiates the media type before it knows the generation; the 406 still comes in
    the caller's generation's body shape (``{title, status}`` in v3, ``{error}`` in v2)."""
    response = v3.get("/tables/Task", HTTP_ACCEPT=accept)
    assert response.status_code == 406
    body = response.json()
    assert body["status"] == 406 and "Accept" in body["title"], body
    response = v2.get("/tables/Task", HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert "Accept" in response.json()["error"], response.json()
