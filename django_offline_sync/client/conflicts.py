"""Conflict handlers: what the push does when the server answers 409 or 412.

A handler is any callable taking a ``Conflict`` (local item, server item, operation) and
returning a ``Resolution``. The three built-ins mirror the Azure clients' choices
(``docs/protocol.rst`` §9): ``client_wins``, ``server_wins`` and ``cancel``; a custom
handler returns ``Resolution.merge(item)`` with an item it built from both sides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django_offline_sync.wire import parse_timestamp

from .store import SYSTEM_FIELDS, PendingOperation

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

    @property
    def server_tombstone(self) -> bool:
        """The server keeps the item as deleted: ``client_wins`` cannot write over it (the push
        refuses), unlike an item the server no longer has, which it creates again."""
        return self.server_item is not None and bool(self.server_item.get("deleted"))

    @property
    def differing_fields(self) -> list[str]:
        """The user fields of the local item whose value the server's copy does not have, sorted.

        Whichever side changed them: the local item is the device's whole copy, so a field only
        the server changed is listed too. Server-owned fields (``version``, ``updatedAt``, …)
        are left out; empty when the server has no live copy.
        """
        if self.server_item is None or self.server_item.get("deleted"):
            return []
        server = self.server_item
        return sorted(
            key
            for key, value in self.local_item.items()
            if key != "id" and key not in SYSTEM_FIELDS and (key not in server or not same_value(value, server[key]))
        )

    def describe(self, max_fields: int = 5) -> str:
        """One line: the operation, the status and how the two copies differ.

        ``update Task/1f… conflicts with the server's copy (HTTP 412); fields that differ:
        text (local "mine", server "theirs")``.
        """
        op = self.operation
        what = f"{op.kind} {op.table}/{op.item_id}"
        if self.server_item is None:
            return f"{what}: the server no longer has this item (HTTP {self.status})"
        if self.server_tombstone:
            return f"{what}: the server deleted this item (HTTP {self.status})"
        fields = self.differing_fields
        text = f"{what} conflicts with the server's copy (HTTP {self.status})"
        if not fields:
            return text + "; no field differs, only the version"
        shown = [
            f"{key} (local {_short(self.local_item[key])}, server {_short(self.server_item.get(key))})"
            for key in fields[:max_fields]
        ]
        more = f" and {len(fields) - max_fields} more" if len(fields) > max_fields else ""
        return f"{text}; fields that differ: {', '.join(shown)}{more}"


def same_value(mine: Any, theirs: Any) -> bool:
    """Whether two field values are equal, timestamps compared as instants, not as text."""
    if mine == theirs:
        return True
    if isinstance(mine, str) and isinstance(theirs, str):
        try:
            return parse_timestamp(mine) == parse_timestamp(theirs)
        except ValueError:
            return False
    return False


def _short(value: Any, limit: int = 40) -> str:
    """A field value as JSON on one line, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Resolution:
    """A handler's decision. Build one with the class methods."""

    action: str
    item: Item | None = None

    @classmethod
    def client_wins(cls) -> Resolution:
        """Send the whole local item again, based on the server's version: every field of the
        server's copy is overwritten, those only the server changed included."""
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
    """Built-in handler: the device's whole copy overwrites the server's (``Resolution.client_wins``)."""
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
