"""The HTTP transport: protocol headers, retries with backoff, and when it gives up (no server)."""

from __future__ import annotations

import httpx
import pytest

from django_offline_sync.client.errors import TransportError
from django_offline_sync.client.transport import HttpTransport, etag, version_from_response


def make(handler, **kwargs):
    sleeps: list[float] = []
    transport = HttpTransport(
        "http://server.test/", kwargs.pop("generation", "v3"), transport=httpx.MockTransport(handler),
        sleep=sleeps.append, **kwargs,
    )
    return transport, sleeps


@pytest.mark.parametrize("generation,header", [("v2", "2.0.0"), ("v3", "3.0.0")])
def test_requests_carry_the_generation_header(generation, header):
    seen = []
    transport, _ = make(lambda request: seen.append(request) or httpx.Response(200, json=[]), generation=generation)
    transport.request("GET", "/tables/Task")
    assert seen[0].headers["ZUMO-API-VERSION"] == header
    assert str(seen[0].url) == "http://server.test/tables/Task"


def test_unknown_generation_is_rejected():
    with pytest.raises(ValueError):
        HttpTransport("http://x", "v9")


def test_network_errors_and_5xx_are_retried_with_exponential_backoff():
    answers = iter([httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(502), httpx.Response(200)])

    def handler(request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    transport, sleeps = make(handler, retries=3, backoff=0.5)
    assert transport.request("GET", "/tables/Task").status_code == 200
    assert sleeps == [0.5, 1.0, 2.0]


def test_gives_up_after_the_last_retry():
    def handler(request):
        raise httpx.ReadTimeout("slow")

    transport, sleeps = make(handler, retries=2)
    with pytest.raises(TransportError, match="ReadTimeout"):
        transport.request("GET", "/tables/Task")
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 404, 409, 412])
def test_client_errors_are_returned_not_retried(status):
    calls = []
    transport, sleeps = make(lambda request: calls.append(1) or httpx.Response(status))
    assert transport.request("POST", "/tables/Task").status_code == status
    assert len(calls) == 1 and sleeps == []


def test_item_ids_are_escaped_in_paths():
    assert HttpTransport.table_path("Task", "a b#c") == "/tables/Task/a%20b%23c"


def test_etag_helpers():
    assert etag("AAAAAAAAAAE=") == '"AAAAAAAAAAE="'
    assert version_from_response(httpx.Response(200, headers={"ETag": '"AAAAAAAAAAE="'})) == "AAAAAAAAAAE="
    assert version_from_response(httpx.Response(200, headers={"ETag": 'W/"x"'})) is None
