"""HTTP for the client: one httpx.Client with the protocol headers, timeouts and retries.

``HttpTransport`` speaks to ``{base_url}/tables/{Table}``. Network errors and 5xx answers are
retried with exponential backoff; any httpx transport can be plugged in, so tests pass
``httpx.WSGITransport(app=...)`` to drive a Django app in-process.

Answers that cannot come from the sync API are refused rather than misread: a redirect is
never followed (a captive portal or a login page sends one, and following it to another site
would hand it our requests), and a success answered with an HTML page, or with anything that
is not JSON where JSON is expected, raises ``UnexpectedResponse``.
"""

from __future__ import annotations

import re
import time
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


class HttpTransport:
    """Sends table requests and retries the ones that failed for reasons worth retrying.

    ``retries`` is the number of extra attempts after the first; the wait before attempt
    ``n`` is ``backoff * 2 ** (n - 1)`` seconds. Only network errors and 5xx are retried;
    4xx answers (conflicts included) are returned to the caller at once.
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
    ) -> None:
        if generation not in API_VERSIONS:
            raise ValueError(f"generation must be one of {sorted(API_VERSIONS)}, not {generation!r}")
        check_url(base_url)
        self.generation = generation
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
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

        Raises ``TransportError`` when the server stays unreachable, ``ServerFailure`` when it
        keeps answering 5xx, and ``UnexpectedResponse`` at once for a redirect, a captive
        portal's 511, or a 2xx answered with an HTML page. Other answers (4xx included) are
        returned to the caller.
        """
        attempt = 0
        while True:
            try:
                response = self._client.request(method, url, params=params, json=json, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise TransportError(
                        f"{method} {self.url_for(url)}: {exc.__class__.__name__}: {exc}"
                    ) from exc
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
            attempt += 1
            self._sleep(self.backoff * 2 ** (attempt - 1))

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
