"""Preconditions (If-Match parsing) and real races against a live server on PostgreSQL."""

import threading

import httpx
import pytest

from django_offline_sync.concurrency import Precondition, etag_for, if_none_match_hits, parse_if_match
from django_offline_sync.exceptions import BadRequest
from django_offline_sync.models import encode_version
from example_project.tasks.models import Task
from tests.factories import TaskFactory

V2 = {"ZUMO-API-VERSION": "2.0.0"}


def test_etag_is_the_quoted_base64_version():
    assert etag_for(1) == '"AAAAAAAAAAE="'


def test_if_match_star_matches_anything():
    assert parse_if_match("*") == Precondition(any=True)
    assert parse_if_match("*").matches(12345)


def test_if_match_absent_is_no_precondition():
    assert parse_if_match(None) is None


def test_if_match_quoted_version_is_decoded():
    assert parse_if_match(f'"{encode_version(77)}"').version == 77


@pytest.mark.parametrize("header", ["", "abc", 'W/"AAAAAAAAAAE="', '"AAAAAAAAAAE=", "AAAAAAAAAAI="', '"%%%"', '""'])
def test_if_match_that_is_not_one_strong_base64_etag_is_rejected(header):
    with pytest.raises(BadRequest):
        parse_if_match(header)


@pytest.mark.parametrize("header", ['"AAAA"', '"AAAAAAAAAAAAAAAAAAAAAA=="'])
def test_if_match_with_base64_of_another_length_matches_no_row(header):
    # Another backend's version (CTK issues 16 bytes): stale, not malformed; a conflict.
    precondition = parse_if_match(header)
    assert precondition.version is None and not precondition.any
    assert not precondition.matches(0) and not precondition.matches(12345)


@pytest.mark.parametrize("issued", ["MQ==", "MTI=", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAJyY="])
def test_if_match_matches_an_imported_version_when_the_bytes_are_equal(issued):
    # The Node SQLite provider issues base64 of its counter's digits ("1" -> "MQ=="), SQL
    # Server 8 bytes, Datasync 16: an imported row keeps matching the one its server issued.
    precondition = parse_if_match(f'"{issued}"')
    assert precondition.matches(0, issued)
    assert not precondition.matches(0, "Mg==")
    assert not parse_if_match('"Mg=="').matches(0, issued)
    assert parse_if_match("*").matches(0, issued)


def test_if_match_with_our_version_never_matches_an_imported_row():
    # Until its next write here, an imported row's version is the imported one only.
    assert not parse_if_match(f'"{encode_version(5)}"').matches(5, "MQ==")


def test_etag_and_if_none_match_take_a_wire_version_text():
    assert etag_for("MQ==") == '"MQ=="'
    assert if_none_match_hits('"MQ=="', "MQ==") and not if_none_match_hits('"Mg=="', "MQ==")


def test_if_none_match_hits_current_version_only():
    assert if_none_match_hits(f'"{encode_version(5)}"', 5)
    assert not if_none_match_hits(f'"{encode_version(5)}"', 6)
    assert if_none_match_hits("*", 6)
    assert not if_none_match_hits(None, 6)


def _race(url: str, requests: list[dict]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(i: int, spec: dict) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            results[i] = client.request(spec["method"], url, json=spec.get("json"), headers={**V2, **spec["headers"]})

    threads = [threading.Thread(target=run, args=(i, spec)) for i, spec in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_conditional_patches_with_one_version_exactly_one_wins(live_server):
    task = TaskFactory(text="start")
    tag = etag_for(task.version)
    requests = [
        {"method": "PATCH", "json": {"text": f"writer {i}"}, "headers": {"If-Match": tag}} for i in range(16)
    ]
    results = _race(f"{live_server.url}/tables/Task/{task.id}", requests)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * 15
    winner = next(r for r in results if r.status_code == 200).json()
    row = Task.all_objects.get(pk=task.id)
    assert row.text == winner["text"] and encode_version(row.version) == winner["version"]
    for loser in (r for r in results if r.status_code == 412):
        assert loser.json()["id"] == task.id  # every 412 carries the server entity


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_delete_racing_patches_with_one_version_exactly_one_wins(live_server):
    task = TaskFactory(text="start")
    tag = etag_for(task.version)
    requests = [{"method": "DELETE", "headers": {"If-Match": tag}}] + [
        {"method": "PATCH", "json": {"text": f"writer {i}"}, "headers": {"If-Match": tag}} for i in range(15)
    ]
    results = _race(f"{live_server.url}/tables/Task/{task.id}", requests)
    winners = [r for r in results if r.status_code in (200, 204)]
    assert len(winners) == 1
    assert all(r.status_code in (404, 412) for r in results if r not in winners)
    row = Task.all_objects.get(pk=task.id)
    if winners[0].status_code == 204:
        assert row.deleted and row.text == "start"
    else:
        assert not row.deleted and row.text == winners[0].json()["text"]


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_inserts_of_one_id_give_one_201_and_409s_with_the_entity(live_server):
    requests = [{"method": "POST", "json": {"id": "same", "text": f"device {i}"}, "headers": {}} for i in range(8)]
    results = _race(f"{live_server.url}/tables/Task", requests)
    assert sorted(r.status_code for r in results) == [201] + [409] * 7
    stored = Task.objects.get(pk="same").text
    assert all(r.json()["text"] == stored for r in results)


@pytest.mark.django_db
def test_a_conditional_update_moves_the_table_clock_exactly_once(v2, monkeypatch):
    from django_offline_sync import stamping
    from django_offline_sync.models import SyncClock

    task = TaskFactory()
    monkeypatch.setattr(stamping, "now_ms", lambda: 0)  # the clock then advances by 1 a stamp
    before = SyncClock.objects.get(table=Task._meta.db_table).last_ms
    response = v2.patch(f"/tables/Task/{task.id}", {"text": "x"}, format="json", HTTP_IF_MATCH=etag_for(task.version))
    assert response.status_code == 200
    after = SyncClock.objects.get(table=Task._meta.db_table).last_ms
    assert after == before + 1
    row = Task.objects.get(pk=task.id)
    assert row.version == after  # the stamp reserved with the lock is the one written
    assert response.renderer_context is None  # the view/response cycle is broken once sent
