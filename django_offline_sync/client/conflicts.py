"""Conflict handlers: what the push does when the server answers 409 or 412.

A handler is any callable taking a ``Conflict`` (local item, server item, operation) and
returning a ``Resolution``. The three built-ins mirror the Azure clients' choices
(``docs/protocol.rst`` §9): ``client_wins``, ``server_wins`` and ``cancel``; a custom
handler returns ``Resolution.merge(item)`` with an item it built from both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import PendingOperation

Item = dict[str, Any]

CLIENT_WINS = "client_wins"
SERVER_WINS = "server_wins"
CANCEL = "cancel"
MERGE = "merge"


@dataclass(frozen=True)
class Conflict:
    """A queued operation the server refused because its copy changed since ours was based on it.

    ``local_item`` is the item as the device has it (for a delete, as it was when deleted);
    ``server_item`` is the server's current copy, or None when the server sent none and it
    could not be fetched. ``status`` is the HTTP status (409 or 412, or 404/410 when an
    update met a row deleted on the server).
    """

    operation: PendingOperation
    local_item: Item
    server_item: Item | None
    status: int

    @property
    def table(self) -> str:
        return self.operation.table

    @property
    def server_deleted(self) -> bool:
        return self.server_item is None or bool(self.server_item.get("deleted"))


@dataclass(frozen=True)
class Resolution:
    """A handler's decision. Build one with the class methods."""

    action: str
    item: Item | None = None

    @classmethod
    def client_wins(cls) -> Resolution:
        """Send the local item again, based on the server's version (it overwrites the server's)."""
        return cls(CLIENT_WINS)

    @classmethod
    def server_wins(cls) -> Resolution:
        """Take the server's item locally and drop the operation."""
        return cls(SERVER_WINS)

    @classmethod
    def cancel(cls) -> Resolution:
        """Keep the operation queued and stop this push; the conflict comes back next time."""
        return cls(CANCEL)

    @classmethod
    def merge(cls, item: Item) -> Resolution:
        """Store ``item`` locally and send it, based on the server's version."""
        return cls(MERGE, dict(item))


ConflictHandler = Callable[[Conflict], Resolution]


def client_wins(conflict: Conflict) -> Resolution:
    """Built-in handler: the device's change overwrites the server's."""
    return Resolution.client_wins()


def server_wins(conflict: Conflict) -> Resolution:
    """Built-in handler: the server's copy replaces the device's change."""
    return Resolution.server_wins()


def cancel(conflict: Conflict) -> Resolution:
    """Built-in handler (the default): stop and leave the decision to the user."""
    return Resolution.cancel()


#: The built-in handlers by name, as the CLI's ``--conflict`` option spells them.
HANDLERS: dict[str, ConflictHandler] = {
    "client-wins": client_wins,
    "server-wins": server_wins,
    "cancel": cancel,
}
