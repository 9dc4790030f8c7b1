"""A server (or a proxy, or someone else's host) answering pages no sync server sends.

The client must stop with ``UnexpectedResponse`` (the CLI's exit 7), store nothing from the
page, and never follow a link off its own server, where it would send its sign-in headers.
Nor may its answers exhaust the device: a body too large once decompressed (a gzip bomb) is
refused in bounded memory, and one dripped in too slowly is cut off at the deadline.
"""

from __future__ import annotations

import gzip
import io
import json
import time
import tracemalloc
import zlib

import httpx
import pytest

from django_offline_sync.client import SyncClient, TransportError, UnexpectedResponse
from django_offline_sync.client.cli import EXIT_NOT_API, EXIT_OK, EXIT_UNREACHABLE, main

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


def bomb(prefix: bytes, size: int = 1 << 30):
    """A gzip body: ``prefix`` then ``size`` zero bytes (1 GiB: about 1 MB on the wire),
    compressed only as far as it is read."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    yield packer.compress(prefix)
    zeros = bytes(1 << 20)
    for _ in range(size // len(zeros)):
        if chunk := packer.compress(zeros):
            yield chunk
    yield packer.flush()


GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


def test_a_gzip_bomb_page_is_refused_in_bounded_memory_and_nothing_of_it_is_stored(tmp_path):
    """The bomb's first bytes are a row: reading the page in part would store it."""
    pages = []

    def answer(request):
        pages.append(request)
        if "page=2" not in str(request.url):
            return httpx.Response(200, json={"items": [ROW], "nextLink": "/tables/Task?page=2"})
        first_row = json.dumps({"items": [{**ROW, "id": "b1"}], "nextLink": "/tables/Task?page=3"})[:-1]
        return httpx.Response(200, headers=GZIP, content=bomb(first_row.encode() + b', "padding": "'))

    with client_for(tmp_path, answer, max_response_bytes=2 << 20, backoff=0) as client:
        tracemalloc.start()
        try:
            with pytest.raises(UnexpectedResponse, match="more than 2 MiB once decompressed"):
                client.pull("Task")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 32 << 20
        assert len(pages) == 2  # refused, not asked again
        assert client.store.get("Task", "a1") is not None  # the page before it, stored with its token
        assert client.store.get("Task", "b1") is None


def test_a_push_answered_with_a_gzip_bomb_keeps_the_operation_queued(tmp_path):
    def answer(request):
        if request.method == "GET":
            return httpx.Response(200, json={"items": []})
        acknowledged = json.dumps({**ROW, "id": "n1", "text": "the server's"})[:-1]
        return httpx.Response(201, headers=GZIP, content=bomb(acknowledged.encode() + b', "padding": "'))

    with client_for(tmp_path, answer, max_response_bytes=1 << 20) as client:
        client.table("Task").insert({"id": "n1", "text": "mine"})
        with pytest.raises(UnexpectedResponse, match="more than 1 MiB once decompressed"):
            client.push()
        assert client.store.pending_count() == 1
        assert client.store.get("Task", "n1")["text"] == "mine"


def test_a_page_in_a_coding_not_asked_for_is_refused(tmp_path):
    def answer(request):
        return httpx.Response(200, headers={"Content-Encoding": "br"}, content=iter([b"\x8b\x00\x80{}\x03"]))

    with client_for(tmp_path, answer) as client:
        with pytest.raises(UnexpectedResponse, match="Content-Encoding: br"):
            client.pull("Task")
        assert client.store.get("Task", "a1") is None


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS | 16, zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["gzip", "zlib", "raw"])
def test_a_compressed_page_is_pulled(tmp_path, wbits):
    coding = "gzip" if wbits > zlib.MAX_WBITS else "deflate"
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    page = packer.compress(json.dumps({"items": [ROW]}).encode()) + packer.flush()

    def answer(request):
        return httpx.Response(200, headers={**GZIP, "Content-Encoding": coding}, content=iter([page[:3], page[3:]]))

    with client_for(tmp_path, answer) as client:
        assert client.pull("Task").received == 1
        assert client.store.get("Task", "a1")["text"] == "x"


def test_a_page_dripped_in_ends_at_the_deadline_and_stores_nothing(tmp_path):
    calls = []

    class Drip(httpx.SyncByteStream):
        def __iter__(self):
            yield json.dumps({"items": [ROW]})[:-1].encode()
            for _ in range(10_000):
                time.sleep(0.02)
                yield b" "

    def answer(request):
        calls.append(request)
        return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=Drip())

    with client_for(tmp_path, answer, deadline=0.3, retries=1, backoff=0) as client:
        with pytest.raises(TransportError, match=r"the answer took longer than 0\.3 s"):
            client.pull("Task")
        assert len(calls) == 2
        assert client.store.get("Task", "a1") is None


# -- the same over HTTP, from the command line -----------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--no-progress", "--retries", "0", *argv], stdout=out, stderr=err)
    return code, err.getvalue()


def test_a_gzip_bomb_over_http_is_refused_naming_the_option(canned_server, tmp_path):
    canned_server.answer(200, b"".join(bomb(b'{"items": [', size=64 << 20)), "application/json",
                         Content_Encoding="gzip")
    code, err = run_cli("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "--max-response-mb", "1",
                        "pull", "Task")
    assert code == EXIT_NOT_API
    assert "answered with more than 1 MiB once decompressed" in err and "--max-response-mb" in err
    assert len(canned_server.requests) == 1


def test_a_compressed_page_over_http_is_pulled(canned_server, tmp_path):
    canned_server.answer(200, gzip.compress(json.dumps({"items": [ROW]}).encode()), "application/json",
                         Content_Encoding="gzip")
    code, err = run_cli("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "pull", "Task")
    assert code == EXIT_OK, err
    assert canned_server.headers_received[0]["Accept-Encoding"] == "gzip, deflate"


def test_a_page_dripped_over_http_ends_at_the_deadline(canned_server, tmp_path):
    canned_server.answer(200, json.dumps({"items": [ROW] * 20}), "application/json")
    canned_server.drip = 0.02  # seconds between bytes: each read is quick, the whole page takes a minute
    started = time.monotonic()
    code, err = run_cli("--url", canned_server.url, "--db", str(tmp_path / "d.db"), "--timeout", "5",
                        "--deadline", "0.5", "pull", "Task")
    assert code == EXIT_UNREACHABLE and "the answer took longer than 0.5 s" in err
    assert time.monotonic() - started < 5


class V2Rows:
    """A v2 table answering the client's pull as a server does: ``updatedAt ge`` its token,
    ordered by (updatedAt, id), with $skip and $top. ``rows`` may be changed between pulls."""

    def __init__(self, rows):
        self.rows = {row["id"]: row for row in rows}

    def __call__(self, request):
        import re

        params = request.url.params
        found = re.search(r"updatedAt ge datetimeoffset'([^']+)'", params.get("$filter", ""))
        rows = sorted(self.rows.values(), key=lambda row: (row["updatedAt"], row["id"]))
        if found:
            rows = [row for row in rows if row["updatedAt"] >= found.group(1)]
        skip, top = int(params.get("$skip", "0")), int(params.get("$top", "50"))
        return httpx.Response(200, json=rows[skip : skip + top])


def test_a_v2_row_changed_at_the_token_without_a_version_is_stored(tmp_path):
    # The rows at the stored token are read again (`ge`); one the device already holds at
    # the same version is not applied again. A server that sends no version gives no way
    # to tell a changed row from the same one: such a row is applied again, as it always was.
    stamp = "2024-01-01T00:00:00.000Z"
    server = V2Rows([{"id": "a1", "text": "before", "updatedAt": stamp, "deleted": False}])
    with client_for(tmp_path, server, generation="v2") as client:
        client.pull("Task")
        server.rows["a1"] = {**server.rows["a1"], "text": "after"}  # changed in the same millisecond
        client.pull("Task")
        assert client.store.get("Task", "a1")["text"] == "after"


def test_a_v2_row_changed_at_the_token_with_a_new_version_is_stored(tmp_path):
    stamp = "2024-01-01T00:00:00.000Z"
    rows = [{**ROW, "id": f"a{i}", "updatedAt": stamp} for i in range(3)]
    server = V2Rows(rows)
    with client_for(tmp_path, server, generation="v2", page_size=2) as client:
        first = client.pull("Task")
        assert (first.received, first.upserted) == (3, 3)
        server.rows["a1"] = {**server.rows["a1"], "text": "after", "version": "AAAAAAAAAAI="}
        server.rows["a2"] = {**server.rows["a2"], "deleted": True, "version": "AAAAAAAAAAI="}
        again = client.pull("Task")
        assert client.store.get("Task", "a1")["text"] == "after"
        assert client.store.get("Task", "a2") is None
        assert (again.received, again.upserted, again.deleted) == (2, 1, 1)


def test_a_v2_page_whose_older_stamp_is_no_date_is_not_a_crash(tmp_path):
    # Only a page's newest stamp is parsed when all are in the wire form; the rows at the
    # stored token are compared as instants, and a stamp that is no date is not at the token.
    stamp = "2024-01-01T00:00:00.000Z"
    server = V2Rows([{**ROW, "updatedAt": stamp}])
    with client_for(tmp_path, server, generation="v2") as client:
        client.pull("Task")
        server.rows["b1"] = {**ROW, "id": "b1", "updatedAt": "2024-13-01T00:00:00.000Z"}
        server.rows["c1"] = {**ROW, "id": "c1", "updatedAt": "2025-01-01T00:00:00.000Z"}
        client.pull("Task")
        assert client.store.get("Task", "c1") is not None
