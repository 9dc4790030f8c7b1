"""A server (or a proxy, or someone else's host) answering pages no sync server sends.

The client must stop with ``UnexpectedResponse`` (the CLI's exit 7), store nothing from the
page, and never follow a link off its own server, where it would send its sign-in headers.
"""

from __future__ import annotations

import json

import httpx
import pytest

from django_offline_sync.client import SyncClient, UnexpectedResponse

ROW = {"id": "a1", "text": "x", "updatedAt": "2024-01-01T00:00:00.000Z", "version": "AAAAAAAAAAE=", "deleted": False}


def client_for(tmp_path, answer, generation="v3", **kwargs):
    return SyncClient(
        "http://sync.test", tmp_path / "d.db", generation=generation, transport=httpx.MockTransport(answer), **kwargs
    )


def test_a_next_link_to_another_host_is_refused_and_gets_no_credentials(tmp_path):
    asked: list[httpx.Request] = []

    def answer(request):
        asked.append(request)
        if request.url.host != "sync.test":
            return httpx.Response(200, json={"items": [{**ROW, "id": "evil"}]})
        return httpx.Response(200, json={"items": [ROW], "nextLink": "http://localhost:8000/tables/Task?x=1"})

    with client_for(tmp_path, answer, headers={"Authorization": "Token secret"}) as client:
        with pytest.raises(UnexpectedResponse, match="nextLink to another server"):
            client.pull("Task")
        assert client.store.get("Task", "evil") is None
    assert all(request.url.host == "sync.test" for request in asked)


@pytest.mark.parametrize("kind", ["same link", "new link, same rows"])
def test_a_v3_pull_that_would_never_end_stops(tmp_path, kind):
    calls = []

    def answer(request):
        calls.append(request)
        link = "/tables/Task?page=1" if kind == "same link" else f"/tables/Task?page={len(calls)}"
        return httpx.Response(200, json={"items": [ROW], "nextLink": link})

    with client_for(tmp_path, answer) as client, pytest.raises(UnexpectedResponse, match="never end"):
        client.pull("Task")
    assert len(calls) <= 3


def test_a_v2_server_that_ignores_skip_stops(tmp_path):
    calls = []

    def answer(request):
        calls.append(request)
        return httpx.Response(200, json=[ROW, {**ROW, "id": "a2"}])

    with client_for(tmp_path, answer, generation="v2") as client, pytest.raises(UnexpectedResponse, match="same page"):
        client.pull("Task")
    assert len(calls) <= 4


@pytest.mark.parametrize(
    "change",
    [
        {"id": None},
        {"id": 5},
        {"id": ["a"]},
        {"id": ""},
        {"deleted": "false"},
        {"version": {"x": 1}},
        {"updatedAt": 1700000000},
        {"updatedAt": "yesterday"},
        {"updatedAt": "0001-01-01T00:00:00+01:00"},
    ],
    ids=json.dumps,
)
def test_a_page_with_an_item_no_sync_server_sends_is_refused_and_nothing_is_stored(tmp_path, change):
    def answer(request):
        return httpx.Response(200, json={"items": [ROW, {**ROW, "id": "b1", **change}]})

    with client_for(tmp_path, answer) as client:
        with pytest.raises(UnexpectedResponse):
            client.pull("Task")
        assert client.store.get("Task", "a1") is None  # the page is refused whole


def test_a_throttled_push_says_to_push_again_later_and_keeps_the_queue(tmp_path):
    def answer(request):
        if request.method == "GET":
            return httpx.Response(200, json={"items": []})
        return httpx.Response(429, headers={"Retry-After": "30"}, json={"title": "Request was throttled."})

    with client_for(tmp_path, answer) as client:
        client.table("Task").insert({"id": "n1", "text": "mine"})
        result = client.push()
        assert not result.ok and client.store.pending_count() == 1
        assert "HTTP 429" in result.error and "push again later" in result.error and "30 s" in result.error
        assert "discard" not in result.error


@pytest.mark.parametrize("body", [{**ROW, "id": "OTHER"}, {**ROW, "id": "n1", "deleted": "no"}, {**ROW, "id": 7}])
def test_a_push_acknowledged_with_another_item_stores_nothing_and_keeps_the_queue(tmp_path, body):
    def answer(request):
        if request.method == "GET":
            return httpx.Response(200, json={"items": []})
        return httpx.Response(201, json=body)

    with client_for(tmp_path, answer) as client:
        client.table("Task").insert({"id": "n1", "text": "mine"})
        with pytest.raises(UnexpectedResponse, match="with another item"):
            client.push()
        assert client.store.pending_count() == 1
        assert client.store.get("Task", "OTHER") is None and client.store.get("Task", "n1")["text"] == "mine"
