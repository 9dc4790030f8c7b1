"""Watch tables: pull each one when the server says it changed (``GET /tables/$events``).

The server's change events (``docs/events.rst``, a protocol extension) carry no rows, only
``{"table", "updatedAt"}``; the watcher answers each with an incremental pull of that table,
so every row still comes through the data view and the delta token. It pulls every watched
table once the subscription is open (at start and after every reconnect, so nothing that
changed while it was away is missed), resumes with ``Last-Event-ID``, and reconnects with
exponential backoff and jitter when the stream drops.

Server-sent events are parsed by httpx-sse.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from httpx_sse import EventSource

from .errors import AuthenticationRequired, PushIncomplete, ServerError, SyncClientError, TransportError, UnknownTable
from .store import check_name
from .sync import PullResult, authentication_required
from .transport import error_text

if TYPE_CHECKING:
    from .tables import SyncClient

__all__ = ["EVENTS_PATH", "WatchStopped", "Watcher"]

#: The server's change-event stream.
EVENTS_PATH = "/tables/$events"


class WatchStopped(Exception):
    """Raised by an ``on_pull`` callback (or ``Watcher.stop``) to end ``Watcher.run``."""


@dataclass
class Watcher:
    """Keep ``tables`` of ``client``'s store up to date as the server announces changes.

    ``on_pull(result)`` is called after each pull, ``on_error(text)`` for a failure that does
    not end the watch (a pull stopped by a conflict, a dropped stream). ``backoff`` is the
    first wait before reconnecting, doubled up to ``max_backoff``; ``idle_timeout`` the
    seconds without a byte (the server sends a keep-alive every 15 s) after which the stream
    counts as dead.
    """

    client: SyncClient
    tables: Sequence[str]
    on_pull: Callable[[PullResult], None] | None = None
    on_error: Callable[[str], None] | None = None
    backoff: float = 1.0
    max_backoff: float = 60.0
    idle_timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.tables = [check_name(table) for table in self.tables]
        self._stopped = False
        self.last_event_id: str | None = None
        self.events = 0

    def stop(self) -> None:
        """End ``run`` after the current step."""
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def run(self, max_events: int | None = None) -> None:
        """Watch until ``stop()``, a ``WatchStopped``, ``max_events`` change events, or a
        failure no reconnect can mend (an unknown table, a refused subscription)."""
        delay = self.backoff
        while not self._stopped:
            try:
                if self._subscribe(max_events):
                    return
                delay = self.backoff  # the stream was up: start the backoff afresh
            except (httpx.TransportError, TransportError, _Retry) as exc:
                self._error(f"change events: {exc}; reconnecting in {delay:.1f}s")
            if self.stopped:
                return
            self.sleep(delay * random.uniform(0.5, 1.0))  # jitter: devices do not reconnect in step
            delay = min(delay * 2, self.max_backoff)

    def _subscribe(self, max_events: int | None) -> bool:
        """One connection; True when the watch is over, False when the stream ended."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(self.client.http.timeout, read=self.idle_timeout)
        with self.client.http.stream(
            "GET", EVENTS_PATH, params={"tables": ",".join(self.tables)}, headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                response.read()
                if response.status_code == 401:  # not signed in, or the token expired: no retry helps
                    raise authentication_required(response)
                if response.status_code in (429,) or response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code}: {error_text(response)}")
                if response.status_code == 404 and len(self.tables) == 1 and "table" in error_text(response):
                    raise UnknownTable(self.tables[0], response.content)
                raise ServerError(response.status_code, error_text(response), response.content)
            content_type = response.headers.get("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise ServerError(response.status_code, f"not an event stream ({content_type})", b"")
            for event in EventSource(response).iter_sse():
                if event.id:
                    self.last_event_id = event.id
                if event.event == "ready":
                    for table in self.tables:  # (re)connected: catch up on what we missed
                        self._pull(table)
                elif event.event == "message":
                    changed = _table_of(event.data)
                    match = next((t for t in self.tables if changed is not None and t.lower() == changed.lower()), None)
                    if match is not None:
                        self._pull(match)
                        self.events += 1
                        if max_events is not None and self.events >= max_events:
                            return True
                if self._stopped:
                    return True
        return False

    def _pull(self, table: str) -> None:
        try:
            result = self.client.pull(table)
        except PushIncomplete as exc:
            self._error(f"pull of {table} waits: {exc}")
            return
        except (UnknownTable, AuthenticationRequired):
            raise
        except (ServerError, SyncClientError) as exc:
            if isinstance(exc, TransportError):
                raise
            self._error(f"pull of {table} failed: {exc}")
            return
        if self.on_pull is not None:
            self.on_pull(result)

    def _error(self, text: str) -> None:
        if self.on_error is not None:
            self.on_error(text)


class _Retry(Exception):
    """A failure worth reconnecting for (5xx, 429)."""


def _table_of(data: str) -> str | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    table = body.get("table") if isinstance(body, dict) else None
    return table if isinstance(table, str) else None
