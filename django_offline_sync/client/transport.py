"""HTTP for the client: one httpx.Client with the protocol headers, timeouts and retries.

``HttpTransport`` speaks to ``{base_url}/tables/{Table}``. Network errors and 5xx answers are
retried with exponential backoff; any httpx transport can be plugged in, so tests pass
``httpx.WSGITransport(app=...)`` to drive a Django app in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import quote

import httpx

from .errors import TransportError

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
        self.generation = generation
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        base_headers = {
            "ZUMO-API-VERSION": API_VERSIONS[generation],
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        base_headers.update(headers or {})
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), transport=transport, timeout=timeout, headers=base_headers
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        """Send one request, retrying network errors and 5xx; raise ``TransportError`` at the end."""
        attempt = 0
        while True:
            try:
                response = self._client.request(method, url, params=params, json=json, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise TransportError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
            else:
                if response.status_code < 500:
                    return response
                if attempt >= self.retries:
                    raise TransportError(f"{method} {url}: HTTP {response.status_code} after {attempt + 1} attempts")
            attempt += 1
            self._sleep(self.backoff * 2 ** (attempt - 1))


def etag(version: str) -> str:
    """The If-Match value for a version: the version in double quotes (``docs/protocol.rst`` §6.2)."""
    return f'"{version}"'


def version_from_response(response: httpx.Response) -> str | None:
    """The version in a response's ETag header, unquoted (weak tags are not versions)."""
    value: str | None = response.headers.get("ETag")
    if not value or value.startswith("W/"):
        return None
    return value.strip('"')
