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


class PendingOperationsError(SyncClientError):
    """Purge refused: the table has queued local changes that would be lost (use ``force``)."""

    def __init__(self, table: str, count: int) -> None:
        super().__init__(
            f"table {table!r} has {count} pending operation(s); push first, or purge with force=True "
            "to discard them"
        )
        self.table = table
        self.count = count


class TransportError(SyncClientError):
    """The server could not be reached, or kept failing with 5xx, after all retries."""


class ServerError(SyncClientError):
    """The server answered with an error status that is not a conflict."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


class PushIncomplete(SyncClientError):
    """A pull needed the queue pushed first, and the push stopped (conflict cancelled or error)."""

    def __init__(self, result: Any) -> None:
        super().__init__(f"push before pull did not finish: {result.summary()}")
        self.result = result


class ConflictError(ServerError):
    """An online-table write the server refused with 409/412; ``server_item`` is its current copy."""

    def __init__(self, status: int, server_item: Any) -> None:
        super().__init__(status, "conflict: the server's copy changed", server_item)
        self.server_item = server_item
