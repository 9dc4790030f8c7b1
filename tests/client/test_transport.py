"""The HTTP transport: protocol headers, retries with backoff, when it gives up (no server), and
the limits a hostile or broken server's answer meets (size once decoded, time, Retry-After)."""

from __future__ import annotations

import email.utils
import json
import time
import tracemalloc
import zlib

import httpx
import pytest

from django_offline_sync.client.errors import TransportError, UnexpectedResponse
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


# -- what a hostile or broken server's body cannot do ------------------------------------------


def zeros_compressed(size: int, wbits: int = zlib.MAX_WBITS | 16, prefix: bytes = b"", step: int = 1 << 20):
    """``prefix`` then ``size`` zero bytes, compressed as the body is read: the test never holds them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    yield packer.compress(prefix)
    zeros = bytes(step)
    for _ in range(size // step):
        if chunk := packer.compress(zeros):
            yield chunk
    yield packer.flush()


def compressed(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


def test_a_gzip_bomb_is_refused_in_bounded_memory_and_not_retried():
    calls = []

    def handler(request):
        calls.append(request)
        # 1 GiB of zeros, about 1 MB on the wire; a body is a stream, so nothing is read in advance.
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=zeros_compressed(1 << 30))

    transport, sleeps = make(handler, max_response_bytes=4 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(UnexpectedResponse, match="more than 4 MiB once decompressed") as caught:
            transport.request("GET", "/tables/Task")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    assert "max_response_bytes" in str(caught.value) and "--max-response-mb" in str(caught.value)
    assert len(calls) == 1 and sleeps == []


def test_an_identity_body_over_the_limit_is_refused():
    transport, sleeps = make(lambda request: httpx.Response(200, content=iter([b"x" * 1000] * 10)),
                             max_response_bytes=5000)
    with pytest.raises(UnexpectedResponse, match="more than 5000 bytes, the largest") as caught:
        transport.request("GET", "/tables/Task")
    assert "decompressed" not in str(caught.value) and sleeps == []


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read():
    def body():
        raise AssertionError("the body was read")
        yield b""

    transport, _ = make(lambda request: httpx.Response(200, headers={"Content-Length": "10000"}, content=body()),
                        max_response_bytes=5000)
    with pytest.raises(UnexpectedResponse, match="more than 5000 bytes"):
        transport.request("GET", "/tables/Task")


def test_a_body_read_in_advance_is_held_to_the_limit_too():
    transport, _ = make(lambda request: httpx.Response(200, json={"items": ["x" * 6000]}), max_response_bytes=5000)
    with pytest.raises(UnexpectedResponse, match="more than 5000 bytes"):
        transport.request("GET", "/tables/Task")


def test_a_body_of_exactly_the_limit_is_read():
    transport, _ = make(
        lambda request: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=zeros_compressed(1 << 20)),
        max_response_bytes=1 << 20,
    )
    assert transport.request("GET", "/tables/Task").content == bytes(1 << 20)


@pytest.mark.parametrize(
    "coding,wbits",
    [("gzip", zlib.MAX_WBITS | 16), ("x-gzip", zlib.MAX_WBITS | 16), ("deflate", zlib.MAX_WBITS),
     ("deflate", -zlib.MAX_WBITS), ("identity", None), ("GZip, identity", zlib.MAX_WBITS | 16)],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "identity", "gzip-identity"],
)
def test_the_codings_asked_for_are_decoded_whatever_the_chunks(coding, wbits):
    page = json.dumps({"items": [{"id": str(n), "text": "é" * n} for n in range(60)]}).encode()
    wire = page if wbits is None else compressed(page, wbits)
    seen = []

    def handler(request):
        seen.append(request)
        one_byte_at_a_time = (wire[i:i + 1] for i in range(len(wire)))
        headers = {"Content-Encoding": coding, "Content-Type": "application/json", "Content-Length": str(len(wire))}
        return httpx.Response(200, headers=headers, content=one_byte_at_a_time)

    transport, _ = make(handler, headers={"Accept-Encoding": "br"})
    response = transport.request("GET", "/tables/Task")
    assert seen[0].headers["Accept-Encoding"] == "gzip, deflate"
    assert response.content == page and response.json() == json.loads(page)
    assert "Content-Encoding" not in response.headers
    assert response.headers["Content-Length"] == str(len(page))
    assert response.headers["Content-Type"] == "application/json"
    assert response.reason_phrase == "OK" and response.request.url.path == "/tables/Task"


def test_bytes_after_the_end_of_the_gzip_stream_are_dropped():
    page = b'{"items": []}'
    wire = iter([compressed(page, zlib.MAX_WBITS | 16), b"trailing garbage" * 1000])
    transport, _ = make(lambda request: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=wire),
                        max_response_bytes=100)
    assert transport.request("GET", "/tables/Task").content == page


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "gzip, br"])
def test_a_body_in_another_coding_is_refused_naming_it(coding):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, headers={"Content-Encoding": coding}, content=iter([b"\x1b\x00\x00"]))

    transport, sleeps = make(handler)
    with pytest.raises(UnexpectedResponse, match=f"Content-Encoding: {coding}"):
        transport.request("GET", "/tables/Task")
    assert len(calls) == 1 and sleeps == []


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_body_that_does_not_decode_is_refused(coding):
    transport, _ = make(lambda request: httpx.Response(
        200, headers={"Content-Encoding": coding}, content=iter([b"\x1f\x8b\x08\x00not compressed at all"])
    ))
    with pytest.raises(UnexpectedResponse, match=f"not valid {coding}"):
        transport.request("GET", "/tables/Task")


class Drip(httpx.SyncByteStream):
    """A body sent one byte at a time, each well within the read timeout, and never ending soon."""

    def __iter__(self):
        for _ in range(10_000):
            time.sleep(0.02)
            yield b" "


def test_a_body_dripped_in_is_cut_off_at_the_deadline_and_retried_as_a_network_error():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, stream=Drip())

    transport, sleeps = make(handler, retries=2, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"GET http://server.test/tables/Task: the answer took longer than 0.3 s"):
        transport.request("GET", "/tables/Task")
    assert len(calls) == 3 and len(sleeps) == 2
    assert time.monotonic() - started < 3


def test_a_body_dripped_in_once_then_sent_whole_is_read():
    answers = iter([httpx.Response(200, stream=Drip()), httpx.Response(200, json={"items": []})])
    transport, sleeps = make(lambda request: next(answers), retries=1, backoff=0.5, deadline=0.2)
    assert transport.request("GET", "/tables/Task").json() == {"items": []}
    assert sleeps == [0.5]


@pytest.mark.parametrize("kwargs", [{"max_response_bytes": 0}, {"deadline": 0}, {"deadline": float("nan")}])
def test_limits_must_be_positive(kwargs):
    with pytest.raises(ValueError):
        HttpTransport("http://x", **kwargs)


# -- Retry-After ---------------------------------------------------------------------------------


def answers_then_ok(*first: httpx.Response):
    answers = iter([*first, httpx.Response(200, json=[])])
    return lambda request: next(answers)


@pytest.mark.parametrize(
    "value,expected",
    [("7", [7.0]), ("3600", [60.0]), ("0", [0.5]), ("soon", [0.5]), ("-5", [0.5]), ("9" * 400, [60.0]),
     ("Wed, 21 Oct 2015 07:28:00 GMT", [0.5])],
    ids=["seconds", "capped", "never-below-backoff", "unreadable", "negative", "huge", "past-date"],
)
def test_retry_after_on_a_503_sets_the_wait(value, expected):
    transport, sleeps = make(answers_then_ok(httpx.Response(503, headers={"Retry-After": value})), backoff=0.5)
    assert transport.request("GET", "/tables/Task").status_code == 200
    assert sleeps == expected


def test_retry_after_as_an_http_date():
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    far = email.utils.formatdate(time.time() + 86400, usegmt=True)
    transport, sleeps = make(answers_then_ok(
        httpx.Response(503, headers={"Retry-After": later}), httpx.Response(503, headers={"Retry-After": far})
    ), backoff=0.5)
    assert transport.request("GET", "/tables/Task").status_code == 200
    assert 18 <= sleeps[0] <= 20 and sleeps[1] == 60.0


def test_retry_after_only_lengthens_the_backoff_of_its_own_attempt():
    transport, sleeps = make(answers_then_ok(
        httpx.Response(503, headers={"Retry-After": "5"}), httpx.Response(502), httpx.Response(503)
    ), retries=3, backoff=0.5)
    assert transport.request("GET", "/tables/Task").status_code == 200
    assert sleeps == [5.0, 1.0, 2.0]


def test_a_429_is_still_returned_at_once_for_the_caller_to_report():
    calls = []
    transport, sleeps = make(lambda request: calls.append(1) or httpx.Response(429, headers={"Retry-After": "30"}))
    assert transport.request("POST", "/tables/Task").status_code == 429
    assert len(calls) == 1 and sleeps == []
