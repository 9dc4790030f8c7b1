"""HTTP for the client: one httpx.Client with the protocol headers, timeouts and retries.

``HttpTransport`` speaks to ``{base_url}/tables/{Table}``. Network errors and 5xx answers are
retried with exponential backoff; any httpx transport can be plugged in, so tests pass
``httpx.WSGITransport(app=...)`` to drive a Django app in-process.

Answers that cannot come from the sync API are refused rather than misread: a redirect is
never followed (a captive portal or a login page sends one, and following it to another site
would hand it our requests), and a success answered with an HTML page, or with anything that
is not JSON where JSON is expected, raises ``UnexpectedResponse``.

A hostile or broken server cannot exhaust the device either: a body is read as it arrives
and decoded here, never to more than ``max_response_bytes`` (a gzip bomb is refused after
that many bytes, not expanded into memory), and a body dripped in slowly is cut off at
``deadline`` seconds from the request, however short each read.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import re
import time
import zlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from .errors import InvalidURL, ServerFailure, TransportError, UnexpectedResponse

#: The ``ZUMO-API-VERSION`` header value of each supported generation
#: (``docs/protocol.rst`` §1.2).
API_VERSIONS: dict[str, str] = {"v2": "2.0.0", "v3": "3.0.0"}

USER_AGENT = "django-offline-sync-client"

#: The codings asked for, and the only ones read (``_BodyReader``): any other is refused.
ACCEPT_ENCODING = "gzip, deflate"

#: The largest answer read, decoded (128 MiB): a page of items is a small fraction of it.
DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024

#: Seconds an attempt may take from sending the request to the end of the answer's body,
#: checked as the body arrives.
DEFAULT_DEADLINE = 300.0

#: The longest wait a server's ``Retry-After`` obtains between two attempts, in seconds.
MAX_RETRY_AFTER = 60.0

MiB = 1024 * 1024


class DeadlineExceeded(httpx.TimeoutException):
    """An answer still arriving after the transport's ``deadline``: a timeout like a read's,
    so it is retried as a network error is."""


class HttpTransport:
    """Sends table requests and retries the ones that failed for reasons worth retrying.

    ``retries`` is the number of extra attempts after the first; the wait before attempt
    ``n`` is ``backoff * 2 ** (n - 1)`` seconds, or longer when a 5xx answer carries
    ``Retry-After`` (at most ``MAX_RETRY_AFTER``). Only network errors and 5xx are retried;
    4xx answers (conflicts included) are returned to the caller at once.

    ``timeout`` bounds each network operation (connecting, each read); ``deadline`` bounds
    a whole attempt, checked as the body arrives, so an attempt lasts at most ``deadline``
    plus one read's ``timeout`` once the body has begun. Before it the status line and
    headers are bounded only by ``timeout`` per read and by their size (httpcore reads at
    most 100 KiB of them). ``max_response_bytes`` bounds an answer's body once
    decoded; a larger one raises ``UnexpectedResponse`` and is not retried.
    """

    def __init__(
        self,
        base_url: str,
        generation: str = "v3",
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        if generation not in API_VERSIONS:
            raise ValueError(f"generation must be one of {sorted(API_VERSIONS)}, not {generation!r}")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be at least 1, not {max_response_bytes!r}")
        if not deadline > 0:
            raise ValueError(f"deadline must be a positive number of seconds, not {deadline!r}")
        check_url(base_url)
        self.generation = generation
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_response_bytes = max_response_bytes
        self.deadline = deadline
        self._sleep = sleep
        base_headers = {
            "ZUMO-API-VERSION": API_VERSIONS[generation],
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        base_headers.update(headers or {})
        # follow_redirects=False is httpx's default; spelled out because it is a safety rule here.
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers=base_headers,
            follow_redirects=False,
        )

    def set_token(self, token: str | None) -> None:
        """Send the sign-in token with every request, as the generation's clients do
        (``X-ZUMO-AUTH`` for v2, ``Authorization: Bearer`` for v3); ``None`` stops sending it."""
        self._client.headers.pop("X-ZUMO-AUTH", None)
        if self._client.headers.get("Authorization", "").lower().startswith("bearer "):
            self._client.headers.pop("Authorization")
        if token is None:
            return
        if self.generation == "v2":
            self._client.headers["X-ZUMO-AUTH"] = token
        else:
            self._client.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> httpx.URL:
        """The server's address, as given (links to another scheme, host or port are not followed)."""
        return self._client.base_url

    @staticmethod
    def table_path(table: str, item_id: str | None = None) -> str:
        path = f"/tables/{table}"
        if item_id is not None:
            path += "/" + quote(item_id, safe="")
        return path

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying network errors and 5xx.

        Raises ``TransportError`` when the server stays unreachable (or its answers keep
        outlasting ``deadline``), ``ServerFailure`` when it keeps answering 5xx, and
        ``UnexpectedResponse`` at once for a redirect, a captive portal's 511, a 2xx answered
        with an HTML page, or a body larger than ``max_response_bytes`` or in a coding the
        client does not read. Other answers (4xx included) are returned to the caller, their
        body read and decoded.
        """
        attempt = 0
        while True:
            asked: float | None = None
            try:
                response = self._send(method, url, params=params, json=json, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    why = str(exc) if isinstance(exc, DeadlineExceeded) else f"{exc.__class__.__name__}: {exc}"
                    raise TransportError(f"{method} {self.url_for(url)}: {why}") from exc
            else:
                status = response.status_code
                if status == 511:
                    raise unexpected(response, "asks to log in to the network first (HTTP 511: a captive portal)")
                if status < 500:
                    check_answer(response)
                    return response
                if attempt >= self.retries:
                    detail = error_text(response) if not looks_like_html(response) else None
                    where = f"{method} {address(response)}"
                    raise ServerFailure(status, response.reason_phrase, where, attempt + 1, detail)
                asked = retry_after(response)
            attempt += 1
            wait = self.backoff * 2 ** (attempt - 1)
            if asked is not None:
                # The server knows when it will be back (a deploy, a database failover):
                # retrying sooner only fails again. Capped, so a server cannot park the
                # client for hours; never shorter than the backoff, which it cannot cancel.
                wait = max(wait, min(asked, MAX_RETRY_AFTER))
            self._sleep(wait)

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        """One attempt: the answer with its body read within the limits, and decoded."""
        request = self._client.build_request(method, url, params=params, json=json, headers=headers)
        # Only what _BodyReader decodes, whatever httpx would offer (br, zstd when installed)
        # or a caller's headers say: a server then has no reason to send another coding.
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        started = time.monotonic()
        response = self._client.send(request, stream=True)
        try:
            if response.is_stream_consumed:
                # Made in-process with its body already read and decoded (an
                # httpx.MockTransport answering bytes): there is nothing left to bound.
                body = response.content
                if len(body) > self.max_response_bytes:
                    raise too_large(response, self.max_response_bytes, decoded=False)
                return response
            reader = _BodyReader(response, self.max_response_bytes)
            for chunk in response.iter_raw():
                reader.feed(chunk)
                if time.monotonic() - started > self.deadline:
                    raise DeadlineExceeded(
                        f"the answer took longer than {self.deadline:g} s (the deadline of one request; "
                        "raise it with deadline=…, or offline-sync --deadline)",
                        request=request,
                    )
            body = reader.finish()
        finally:
            response.close()
        # The headers that described the body on the wire describe it no more; httpx sets the
        # Content-Length of the decoded body.
        kept = [
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=body, request=request, extensions=response.extensions
        )

    def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> AbstractContextManager[httpx.Response]:
        """A response whose body is read as it arrives (the change events); not retried here:
        a stream's reader reconnects itself (``watch.Watcher``)."""
        return self._client.stream(
            method, url, params=params, headers=headers, timeout=timeout or httpx.USE_CLIENT_DEFAULT
        )

    def url_for(self, url: str) -> str:
        """The absolute address of ``url`` (a path under the base URL, or absolute), without its query."""
        try:
            full = self._client.build_request("GET", url).url
        except (httpx.InvalidURL, ValueError):
            return url
        return str(full.copy_with(query=None, fragment=None))


class _BodyReader:
    """An answer's body, decoded as its chunks arrive and never past ``limit`` bytes.

    Hand-written because httpx offers no bound on decompression: its decoders call zlib
    without ``max_length``, so a few MB of gzip (a "gzip bomb") expand to GBs in memory
    before anything can look at the size. Here each zlib call yields at most ``_STEP``
    bytes and no more than one byte past what the limit leaves, so the decoded bytes held
    never exceed ``limit`` + 1, plus one raw chunk as the network delivered it.
    Identity, gzip (``x-gzip``) and deflate (zlib-wrapped, or raw as some servers send it,
    both read as httpx reads them) are the codings read, the ones ``ACCEPT_ENCODING`` asks
    for; a body in any other is refused, naming its coding.
    """

    _STEP = 64 * 1024

    def __init__(self, response: httpx.Response, limit: int) -> None:
        self.response = response
        self.limit = limit
        self._body = io.BytesIO()
        self._size = 0
        self._probe = b""  # a deflate body's first bytes, until they tell zlib from raw deflate
        self._inflater: zlib._Decompress | None = None
        codings = [
            value for value in response.headers.get_list("Content-Encoding", split_commas=True)
            if value.lower() not in ("", "identity")
        ]
        self.coding = codings[0].lower() if len(codings) == 1 else None
        if codings and self.coding not in ("gzip", "x-gzip", "deflate"):
            raise unexpected(
                response,
                f"answered in a coding the client does not read (Content-Encoding: "
                f"{response.headers.get('Content-Encoding')}); it asks for {ACCEPT_ENCODING} only",
            )
        if self.coding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self.coding is None:
            declared = response.headers.get("Content-Length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > limit:
                raise too_large(response, limit, decoded=False)  # refused before a byte is read

    def feed(self, chunk: bytes) -> None:
        if self.coding is None:
            self._keep(chunk)
        elif self.coding == "deflate" and self._inflater is None:
            self._probe += chunk
            if len(self._probe) >= 2:
                wbits = zlib.MAX_WBITS if _zlib_header(self._probe) else -zlib.MAX_WBITS
                self._inflater = zlib.decompressobj(wbits)
                probe, self._probe = self._probe, b""
                self._inflate(probe)
        else:
            self._inflate(chunk)

    def finish(self) -> bytes:
        if self.coding == "deflate" and self._inflater is None:
            self._inflater = zlib.decompressobj()  # under two bytes: no body, or a broken one
            self._inflate(self._probe)
        if self._inflater is not None:
            try:
                # Nothing is left unconsumed (_inflate drains it): only what zlib holds back.
                self._keep(self._inflater.flush())
            except zlib.error as exc:
                raise self._undecodable(exc) from None
        return self._body.getvalue()

    def _inflate(self, data: bytes) -> None:
        assert self._inflater is not None
        try:
            # Bytes after the end of the compressed stream are dropped, as httpx drops them
            # (zlib would gather them in unused_data, without bound).
            while data and not self._inflater.eof:
                room = self.limit - self._size + 1  # one byte past the limit shows it is passed
                self._keep(self._inflater.decompress(data, min(room, self._STEP)))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise self._undecodable(exc) from None

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            raise too_large(self.response, self.limit, decoded=self.coding is not None)
        self._body.write(data)

    def _undecodable(self, exc: zlib.error) -> UnexpectedResponse:
        return unexpected(self.response, f"answered with a body that is not valid {self.coding} ({exc})")


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib header (RFC 1950: deflate, a window of at most
    32 KiB, a check of 31), as a ``Content-Encoding: deflate`` body should; others send
    raw deflate."""
    return data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and (data[0] << 8 | data[1]) % 31 == 0


def too_large(response: httpx.Response, limit: int, *, decoded: bool) -> UnexpectedResponse:
    """``UnexpectedResponse`` for an answer larger than ``limit`` bytes, saying how to raise it."""
    size = f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit} bytes"
    once = " once decompressed" if decoded else ""
    return unexpected(
        response,
        f"answered with more than {size}{once}, the largest answer the client reads; if the server's "
        "answers are really that large, raise the limit (max_response_bytes=…, or offline-sync "
        "--max-response-mb)",
    )


def retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP-date, RFC 9110
    §10.2.3; a date in the past is 0), or None when there is none that can be read."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as every HTTP-date is
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now())


def check_url(url: str) -> str:
    """Return ``url`` if it can be a server base URL (http or https, with a host), else raise ``InvalidURL``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidURL(
            f"the server URL needs http:// or https:// and a host, e.g. http://127.0.0.1:8000 (got {url!r})"
        )
    return url


def address(response: httpx.Response) -> str:
    """Where ``response`` came from: its request's URL without the query string."""
    return str(response.request.url.copy_with(query=None, fragment=None))


def unexpected(response: httpx.Response, what: str) -> UnexpectedResponse:
    """``UnexpectedResponse`` for ``response``, worded as "the server at URL <what>"."""
    return UnexpectedResponse(
        f"the server at {address(response)} {what}",
        url=address(response),
        status=response.status_code,
        content_type=response.headers.get("Content-Type"),
        location=response.headers.get("Location"),
    )


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def looks_like_html(response: httpx.Response) -> bool:
    """Whether the body is an HTML page (by its Content-Type, or by how it starts)."""
    content_type = response.headers.get("Content-Type", "").lower()
    if "html" in content_type:
        return True
    head = response.content[:256].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _html_title(response: httpx.Response) -> str | None:
    match = _TITLE.search(response.content[:4096])
    if not match:
        return None
    title = " ".join(match.group(1).decode(response.encoding or "utf-8", "replace").split())
    return title[:80] or None


def html_answer(response: httpx.Response) -> UnexpectedResponse:
    title = _html_title(response)
    page = f"an HTML page ({title!r})" if title else "an HTML page"
    return unexpected(response, f"answered with {page}, not the sync API (a captive portal or a wrong URL?)")


def check_answer(response: httpx.Response) -> None:
    """Refuse a redirect, and a success answered with an HTML page: neither is the sync API."""
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("Location")
        if not location:
            raise unexpected(response, f"answered with a redirect (HTTP {status}) without a target")
        target = response.request.url.join(location)
        here = response.request.url
        if (target.scheme, target.host, target.port) == (here.scheme, here.host, here.port):
            raise unexpected(
                response,
                f"redirected to {target.copy_with(query=None)} (HTTP {status}); redirects are not followed, "
                "so give the address of the sync API itself as the server URL",
            )
        raise unexpected(
            response,
            f"redirected to another site, {target.copy_with(query=None)} (HTTP {status}), not the sync API "
            "(a captive portal or a login page?); redirects to another site are not followed",
        )
    if 200 <= status < 300 and response.content and looks_like_html(response):
        raise html_answer(response)


def decode_json(response: httpx.Response) -> Any:
    """The JSON body of ``response``; ``UnexpectedResponse`` if it is not JSON."""
    try:
        return response.json()
    except RecursionError:
        # Arrays or objects nested deeper than Python's decoder recurses: no API answers so.
        raise unexpected(response, "answered with JSON nested too deeply to read") from None
    except ValueError:
        if looks_like_html(response):
            raise html_answer(response) from None
        content_type = response.headers.get("Content-Type") or "no Content-Type"
        raise unexpected(
            response, f"answered with content that is not JSON ({content_type}), not the sync API (a wrong URL?)"
        ) from None


def error_text(response: httpx.Response) -> str:
    """A one-line account of an error answer: the API's error message, or what the body is."""
    if looks_like_html(response):
        title = _html_title(response)
        return f"an HTML page ({title!r})" if title else "an HTML page"
    try:
        body: Any = response.json()
    except (ValueError, RecursionError):
        return " ".join(response.text[:200].split()) or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "title"):
            if body.get(key):
                return " ".join(str(body[key]).split())[:200]
    return " ".join(str(body).split())[:200]


def etag(version: str) -> str:
    """The If-Match value for a version: the version in double quotes (``docs/protocol.rst`` §6.2)."""
    return f'"{version}"'


def version_from_response(response: httpx.Response) -> str | None:
    """The version in a response's ETag header, unquoted (weak tags are not versions)."""
    value: str | None = response.headers.get("ETag")
    if not value or value.startswith("W/"):
        return None
    return value.strip('"')
