"""Every exception the offline client raises.

They all derive from ``SyncClientError`` so a device app can catch one class; the CLI maps
each to an exit code (see ``cli.py``).
"""

from __future__ import annotations

from typing import Any


class SyncClientError(Exception):
    """Base class of the client's exceptions."""


class InvalidTableName(SyncClientError, ValueError):
    """A table name that cannot be a local SQLite table (letters, digits and ``_`` only)."""


class OperationRefused(SyncClientError):
    """A local write the queue cannot accept, e.g. an update of an item with a pending delete."""


class ItemNotFound(SyncClientError, KeyError):
    """The item is not in the local store (or not on the server, for an online table)."""


class StoreError(SyncClientError):
    """The local store file cannot be used: it is not a client store (another application's
    SQLite database), it is corrupted or not a database at all, or it cannot be opened.
    A file refused this way is left as it was. ``path`` is the file.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class PendingOperationsError(SyncClientError):
    """Purge refused: the table has queued local changes that would be lost (use ``force``)."""

    def __init__(self, table: str, count: int) -> None:
        super().__init__(
            f"table {table!r} has {count} pending operation(s); push first, or purge with force=True "
            "to discard them"
        )
        self.table = table
        self.count = count


class InvalidURL(SyncClientError, ValueError):
    """A server URL the client cannot use: it needs ``http://`` or ``https://`` and a host."""


class TransportError(SyncClientError):
    """No usable answer after all retries: the server could not be reached (network errors,
    timeouts), or, for the subclass ``ServerFailure``, it kept answering with 5xx.
    """


class ServerFailure(TransportError):
    """The server was reached but kept failing (HTTP 5xx) after all retries.

    A subclass of ``TransportError`` so that code catching that still catches it; the CLI
    reports it apart from an unreachable server.
    """

    def __init__(self, status: int, reason: str, where: str, attempts: int, detail: str | None = None) -> None:
        text = f"the server failed: {status} {reason} on {where} after {attempts} attempt(s)"
        if detail:
            text += f": {detail}"
        super().__init__(text)
        self.status = status
        self.attempts = attempts


class UnexpectedResponse(SyncClientError):
    """An answer that is not the sync API's: an HTML page, a redirect, or other content that is
    not the JSON expected (a captive portal, a login page or a wrong URL, most often).

    ``url`` is the address asked, ``status`` the HTTP status, ``content_type`` the answer's
    Content-Type and ``location`` a redirect's target (None if not a redirect).
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int,
        content_type: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.content_type = content_type
        self.location = location


class ServerError(SyncClientError):
    """The server answered with an error status that is not a conflict."""

    def __init__(self, status: int, message: str, body: Any = None, *, text: str | None = None) -> None:
        """``message`` is the server's reason, shown as ``HTTP status: message``; a subclass
        whose message already says what happened passes it as ``text``, shown as it is."""
        super().__init__(f"HTTP {status}: {message}" if text is None else text)
        self.status = status
        self.body = body


class AuthenticationRequired(ServerError):
    """The server answered 401: not signed in, or the sign-in token expired or was revoked.

    ``code`` is the server's ``errorCode`` (``token_expired``, ``invalid_token``,
    ``token_revoked``, ``invalid_credentials``, ``not_authenticated``…) when it sent one. A push
    stopped by it leaves every queued operation in the queue.
    """

    def __init__(self, message: str, body: Any = None, code: str | None = None) -> None:
        SyncClientError.__init__(self, message)
        self.status = 401
        self.body = body
        self.code = code


class UnknownTable(ServerError):
    """The server has no such table: its URL answered 404 with a page, not the API's own 404."""

    def __init__(self, table: str, body: Any = None) -> None:
        SyncClientError.__init__(self, f"the server has no table {table!r} (404)")
        self.status = 404
        self.body = body
        self.table = table


class UnaddressableItem(ServerError):
    """The server serves the table, but the URL of one of its items answered the URL router's
    404 page, not the API's own 404: the server cannot route that id, so the item cannot be
    read, changed or deleted one at a time. An id holding ``/`` (which an adopted table's
    existing rows may have; new ids never do) is the usual cause. Pulls still deliver the item.
    """

    def __init__(self, table: str, item_id: str, body: Any = None) -> None:
        why = ": an id containing '/' cannot be part of a URL" if "/" in item_id else ""
        message = f"the server serves table {table!r} but has no URL for its item {item_id!r} (404){why}"
        super().__init__(404, message, body, text=message)
        self.table = table
        self.item_id = item_id


class PushIncomplete(SyncClientError):
    """A pull needed the queue pushed first, and the push stopped (conflict cancelled or error).

    ``result`` is the ``PushResult``; ``result.blocking_conflict`` is the conflict left to the
    user, if that is what stopped it. ``table`` is the table that was to be pulled.
    """

    def __init__(self, result: Any, table: str | None = None) -> None:
        what = f"pull of {table!r}" if table else "pull"
        conflict = result.blocking_conflict
        if conflict is not None:
            if conflict.server_tombstone:
                how = "settle it with server_wins (the item is deleted on the server) or discard the operation"
            else:
                how = "settle it with a conflict handler (client_wins, server_wins or a merge)"
            text = f"{what} blocked by a conflict: {conflict.describe()}; {how}, then pull again"
        elif result.error:
            text = f"{what} needs the pending changes pushed first, and the push stopped: {result.error}"
        else:
            text = f"push before pull did not finish: {result.summary()}"
        super().__init__(text)
        self.result = result
        self.table = table


class ConflictError(ServerError):
    """An online-table write the server refused with 409/412; ``server_item`` is its current copy."""

    def __init__(self, status: int, server_item: Any) -> None:
        super().__init__(status, "conflict: the server's copy changed", server_item)
        self.server_item = server_item
