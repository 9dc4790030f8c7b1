"""The device's local store: synced rows, the operation queue and the delta tokens, in SQLite.

One SQLite table per synced table (``rows_<Table>``) holds each item as the server last sent it,
with local changes applied on top. ``sync_operations`` is the queue of changes not yet pushed,
collapsed per item the way the Azure clients do it; ``sync_cursors`` holds one delta token per
(table, query id). Every local write commits together with its queue entry, and every pulled
page together with its delta token, so a process killed at any point leaves the store whole.

A store is marked as one on creation (``PRAGMA application_id`` = ``APPLICATION_ID``,
``PRAGMA user_version`` = ``STORE_FORMAT``). Opening checks the mark before writing anything:
another application's database, a corrupted file or a file that is not SQLite at all raises
``StoreError`` and is left as it was. A store written before the mark existed (only the
client's own tables) is recognised and marked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

# The wire rules come from ``wire`` (Django-free, shared with the server); the ones the client
# has always offered are re-exported here (see ``__all__``). Imported absolutely so that this
# module also loads outside its package (``bench/client_store.py`` loads it on its own).
from django_offline_sync import wire
from django_offline_sync.wire import format_timestamp, generate_id, parse_timestamp

from .errors import InvalidTableName, ItemNotFound, OperationRefused, PendingOperationsError, StoreError

__all__ = [
    "APPLICATION_ID",
    "DELETE",
    "INSERT",
    "STORE_FORMAT",
    "SYSTEM_FIELDS",
    "UPDATE",
    "Credentials",
    "Cursor",
    "Item",
    "LocalStore",
    "PageOutcome",
    "PendingOperation",
    "check_name",
    "format_timestamp",
    "generate_id",
    "newest_timestamp",
    "parse_timestamp",
]

Item = dict[str, Any]

INSERT = "insert"
UPDATE = "update"
DELETE = "delete"

#: Wire names of the fields the server owns (``docs/protocol.rst`` §2.3); they are never part
#: of a change we send. ``id`` is not one of them: the client sends (and may choose) it.
SYSTEM_FIELDS: frozenset[str] = frozenset(
    wire.SYSTEM_WIRE_NAMES[name] for name in wire.SYSTEM_FIELDS if name != "id"
)

#: ``PRAGMA application_id`` of a client store: "OSYN" in ASCII, as ``file(1)`` shows it.
APPLICATION_ID = 0x4F53594E

#: ``PRAGMA user_version`` of a client store: the layout of its tables. A store of a later
#: format (written by a newer client) is refused rather than misread; an earlier one is
#: upgraded on open. 2: ``sync_operations.error`` (operations set aside) and ``sync_tables``.
STORE_FORMAT = 2

#: The client's own tables besides ``rows_<Table>`` (``sqlite_*`` ones are SQLite's).
_CLIENT_TABLES = frozenset({"sync_operations", "sync_cursors", "sync_tables", "sync_credentials"})

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ITEM_JSON = json.JSONEncoder(sort_keys=True).encode  # json.dumps(sort_keys=True) without a new encoder per call
_ROW_PREFIX = "rows_"


def check_name(name: str) -> str:
    """Return ``name`` if it is safe as a table or field name here, else raise ``InvalidTableName``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidTableName(f"{name!r} is not a valid name (letters, digits and _ only)")
    return name


def _is_wire_form(value: str) -> bool:
    # "YYYY-MM-DDTHH:MM:SS.mmmZ": fixed width, UTC, so the text orders as the instant does.
    return len(value) == 24 and value[-1] == "Z" and value[10] == "T" and value[19] == "."


def newest_timestamp(items: Sequence[Item]) -> dt.datetime | None:
    """The largest ``updatedAt`` of ``items`` (None if none has one).

    Stamps in the wire form compare as text, so only the largest is parsed; any other form
    makes every stamp parsed.
    """
    stamps = [stamp for item in items if (stamp := item.get("updatedAt"))]
    if not stamps:
        return None
    if all(len(stamp) == 24 for stamp in stamps) and all(map(_is_wire_form, stamps)):
        return parse_timestamp(max(stamps))
    return max(parse_timestamp(stamp) for stamp in stamps)


@dataclass(frozen=True)
class PendingOperation:
    """One queued change: what to send, for which item, and the version it was based on.

    ``revision`` grows each time a later local write collapses into this entry, so the push
    can tell whether the entry changed while its request was in flight.
    """

    sequence: int
    kind: str
    table: str
    item_id: str
    item: Item
    base_version: str | None
    revision: int
    #: Why the server refused it for good, when it did: the entry is then *set aside*, no
    #: longer pushed and no longer blocking the table's pulls, until it is discarded.
    error: str | None = None

    @property
    def set_aside(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Cursor:
    """The stored position of an incremental pull: the largest ``updatedAt`` applied so far."""

    table: str
    query_id: str
    token: str | None


@dataclass(frozen=True)
class PageOutcome:
    """What applying one pulled page did to the local store."""

    upserted: int
    deleted: int
    skipped: int
    token: str | None


@dataclass(frozen=True)
class Credentials:
    """The sign-in kept in the store: the server's token for one user, and where it came from."""

    server: str
    token: str = field(repr=False)
    user_id: str
    provider: str


class LocalStore:
    """A SQLite file (or ``":memory:"``) holding the synced tables of one device.

    Use one store per thread; the transport and sync code never share it across threads.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = os.fspath(path)
        self._depth = 0
        self._known_tables: set[str] = set()  # row tables created and committed (never dropped)
        # Autocommit mode: we issue BEGIN IMMEDIATE ourselves so a transaction holds the write
        # lock from its first statement and cannot fail halfway with "database is locked".
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"{self.path} cannot be opened as the local store: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._open()
        except sqlite3.OperationalError as exc:  # locked, read-only, I/O error: the file may be fine
            self._conn.close()
            raise StoreError(self.path, f"{self.path} cannot be used as the local store: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
            self._conn.close()
            raise StoreError(
                self.path,
                f"{self.path} is not a usable client store: {exc} (a corrupted file, or not a SQLite "
                "database); it was left as it was",
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        """Check the file is a client store (or empty) before writing to it, then set it up."""
        if not self._is_client_store():
            with self.transaction():
                if not self._is_client_store():  # again under the write lock: a racing opener may have made it
                    self._create()
        if self._conn.execute("PRAGMA user_version").fetchone()[0] < STORE_FORMAT:
            with self.transaction():
                self._upgrade()
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")

    def _is_client_store(self) -> bool:
        """True for a marked store; False for an empty database or an unmarked (older) client
        store, both of which ``_create`` makes a marked store; ``StoreError`` for anything else.
        """
        application_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if application_id == APPLICATION_ID:
            if version > STORE_FORMAT:
                raise StoreError(
                    self.path,
                    f"{self.path} was written by a newer offline-sync client (store format {version}; this "
                    f"client reads format {STORE_FORMAT} and older): upgrade the client",
                )
            return True
        names = [
            row[0]
            for row in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            )
        ]
        if application_id != 0:
            reason = f"it is another application's SQLite database (application_id {application_id:#x})"
        elif not names and version == 0:
            return False  # empty: a new store
        elif (
            version == 0
            and "sync_operations" in names
            and all(name in _CLIENT_TABLES or name.startswith(_ROW_PREFIX) for name in names)
        ):
            return False  # a store from before the mark: only our tables
        else:
            shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            reason = f"it is a SQLite database with other contents ({shown or f'user_version {version}'})"
        raise StoreError(
            self.path,
            f"{self.path} is not an offline-sync client store: {reason}; it was left as it was "
            "(use a new file for the local store)",
        )

    def _create(self) -> None:
        """Create the client's tables (if missing) and mark the database as a client store."""
        self._conn.execute(
            """CREATE TABLE IF NOT EXISTS sync_operations (
                sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL CHECK (kind IN ('insert', 'update', 'delete')),
                table_name TEXT NOT NULL,
                item_id TEXT NOT NULL,
                item TEXT NOT NULL,
                base_version TEXT,
                revision INTEGER NOT NULL DEFAULT 1,
                UNIQUE (table_name, item_id)
            )"""
        )
        self._conn.execute(
            """CREATE TABLE IF NOT EXISTS sync_cursors (
                table_name TEXT NOT NULL,
                query_id TEXT NOT NULL,
                token TEXT,
                PRIMARY KEY (table_name, query_id)
            )"""
        )
        self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        self._upgrade()

    def _upgrade(self) -> None:
        """Bring a store of an earlier format (or one just created at format 1) to ``STORE_FORMAT``."""
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= STORE_FORMAT:
            return
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(sync_operations)")}
        if "error" not in columns:
            self._conn.execute("ALTER TABLE sync_operations ADD COLUMN error TEXT")
        # What the client learned about each table: whether the server assigns its ids.
        self._conn.execute(
            """CREATE TABLE IF NOT EXISTS sync_tables (
                table_name TEXT PRIMARY KEY,
                server_assigns_ids INTEGER NOT NULL DEFAULT 0
            )"""
        )
        self._conn.execute(f"PRAGMA user_version = {STORE_FORMAT}")

    # -- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, flush: bool = True) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction; nested calls join the outer one.

        ``flush=False`` (pulled pages only) commits without waiting for the disk: in WAL mode
        with ``synchronous=NORMAL`` the commit is atomic and survives a crash of the process,
        and a power loss can only roll back the newest such commits, each whole (a page with
        its delta token), which the next pull fetches again. Any later flushed commit (every
        local write) syncs the log up to itself, so it never outlives an earlier page.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
            return
        relaxed = not flush and self.path != ":memory:"
        if relaxed:
            self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")
        finally:
            if relaxed:
                self._conn.execute("PRAGMA synchronous=FULL")

    @staticmethod
    def _rows_table(table: str) -> str:
        return f'"{_ROW_PREFIX}{check_name(table)}"'

    def ensure_table(self, table: str) -> None:
        """Create the local table for ``table`` if it does not exist yet."""
        rows_table = self._rows_table(table)
        if table in self._known_tables:
            return
        outermost = not self._depth
        with self.transaction() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {rows_table} (id TEXT PRIMARY KEY, item TEXT NOT NULL, updated_at TEXT)"
            )
        if outermost:  # committed: no later rollback can undo it
            self._known_tables.add(table)

    def tables(self) -> list[str]:
        """The names of the synced tables this store knows."""
        rows = self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rows\\_%' ESCAPE '\\' ORDER BY name"
        ).fetchall()
        return [row["name"][len(_ROW_PREFIX):] for row in rows]

    # -- rows ------------------------------------------------------------------------------

    def get(self, table: str, item_id: str) -> Item | None:
        """The local copy of one item, or None."""
        self.ensure_table(table)
        row = self._conn.execute(f"SELECT item FROM {self._rows_table(table)} WHERE id = ?", (item_id,)).fetchone()
        return json.loads(row["item"]) if row else None

    def _put(self, table: str, item: Item) -> None:
        self._conn.execute(
            f"INSERT INTO {self._rows_table(table)} (id, item, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET item = excluded.item, updated_at = excluded.updated_at",
            (item["id"], json.dumps(item, sort_keys=True), item.get("updatedAt")),
        )

    def _remove(self, table: str, item_id: str) -> int:
        return self._conn.execute(f"DELETE FROM {self._rows_table(table)} WHERE id = ?", (item_id,)).rowcount

    def count(self, table: str) -> int:
        self.ensure_table(table)
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {self._rows_table(table)}").fetchone()[0])

    def query(
        self,
        table: str,
        where: Mapping[str, Any] | Callable[[Item], bool] | None = None,
        order_by: str | Sequence[str] | None = None,
        skip: int = 0,
        top: int | None = None,
    ) -> list[Item]:
        """Local rows of ``table``.

        ``where`` is either a mapping of field → value (equality, ``None`` matches null or
        missing) or a predicate on the item. ``order_by`` takes ``"field"``, ``"field desc"``
        or a list of them; ``id`` is always the last sort key, so paging is stable.
        """
        self.ensure_table(table)
        clauses: list[str] = []
        params: list[Any] = []
        if isinstance(where, Mapping):
            for field, value in where.items():
                path = f"json_extract(item, '$.{check_name(field)}')"
                if value is None:
                    clauses.append(f"{path} IS NULL")
                else:
                    clauses.append(f"{path} = ?")
                    params.append(json.dumps(value) if isinstance(value, (dict, list)) else value)
        orders: list[str] = []
        terms = [order_by] if isinstance(order_by, str) else list(order_by or [])
        for term in terms:
            field, _, direction = term.strip().partition(" ")
            check_name(field)
            direction = direction.strip().lower() or "asc"
            if direction not in ("asc", "desc"):
                raise ValueError(f"bad order direction in {term!r}")
            orders.append(f"json_extract(item, '$.{check_name(field)}') {direction.upper()}")
        orders.append("id ASC")
        sql = f"SELECT item FROM {self._rows_table(table)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY " + ", ".join(orders)
        predicate = where if callable(where) else None
        if predicate is None:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if top is None else top, skip]
        items = [json.loads(row["item"]) for row in self._conn.execute(sql, params)]
        if predicate is not None:
            items = [item for item in items if predicate(item)]
            items = items[skip:] if top is None else items[skip : skip + top]
        return items

    # -- local writes, each with its queue entry -------------------------------------------

    def _operation_for(self, table: str, item_id: str) -> PendingOperation | None:
        row = self._conn.execute(
            "SELECT * FROM sync_operations WHERE table_name = ? AND item_id = ?", (table, item_id)
        ).fetchone()
        return _operation(row) if row else None

    def _enqueue(self, kind: str, table: str, item_id: str, snapshot: str, base_version: str | None) -> None:
        self._conn.execute(
            "INSERT INTO sync_operations (kind, table_name, item_id, item, base_version) VALUES (?, ?, ?, ?, ?)",
            (kind, table, item_id, snapshot, base_version),
        )

    # -- what the server told us about a table ------------------------------------------------

    def server_assigns_ids(self, table: str) -> bool:
        """Whether the server said it assigns ``table``'s ids (so offline inserts are refused)."""
        row = self._conn.execute(
            "SELECT server_assigns_ids FROM sync_tables WHERE table_name = ?", (table,)
        ).fetchone()
        return bool(row and row[0])

    def set_server_assigns_ids(self, table: str, value: bool) -> None:
        if self.server_assigns_ids(table) == value:
            return
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sync_tables (table_name, server_assigns_ids) VALUES (?, ?) "
                "ON CONFLICT (table_name) DO UPDATE SET server_assigns_ids = excluded.server_assigns_ids",
                (check_name(table), int(value)),
            )

    def insert(self, table: str, item: Mapping[str, Any]) -> Item:
        """Insert an item locally and queue its insert. Generates an id if there is none.

        Refused (``OperationRefused``) for a table whose ids the server assigns (an integer
        key): the server refuses any id a client chooses, so the insert could never be pushed.
        """
        self.ensure_table(table)
        if self.server_assigns_ids(table):
            raise OperationRefused(
                f"{table} gets its ids from the server, so a row cannot be created offline; "
                f"insert it online (client.online_table({table!r}).insert(...))"
            )
        new = {k: v for k, v in item.items() if k not in SYSTEM_FIELDS}
        new["id"] = str(new.get("id") or generate_id())
        with self.transaction():
            pending = self._operation_for(table, new["id"])
            if pending is not None and pending.kind == DELETE:
                raise OperationRefused(f"{table}/{new['id']} has a pending delete; push it first")
            if pending is not None or self.get(table, new["id"]) is not None:
                raise OperationRefused(f"{table}/{new['id']} already exists locally")
            self._put(table, new)
            self._enqueue(INSERT, table, new["id"], json.dumps(new, sort_keys=True), None)
        return new

    def update(self, table: str, item: Mapping[str, Any]) -> Item:
        """Change an item locally (the given fields are merged into it) and queue the update.

        An update after a pending insert folds into the insert; after a pending update it
        replaces that update's snapshot and keeps its base version.
        """
        self.ensure_table(table)
        item_id = item.get("id")
        if not item_id:
            raise ItemNotFound("update needs the item's id")
        with self.transaction() as conn:
            pending = self._operation_for(table, item_id)
            if pending is not None and pending.kind == DELETE:
                raise OperationRefused(f"{table}/{item_id} has a pending delete; it cannot be updated")
            current = self.get(table, item_id)
            if current is None:
                raise ItemNotFound(f"{table}/{item_id} is not in the local store")
            changes = {k: v for k, v in item.items() if k not in SYSTEM_FIELDS}
            new = {**current, **changes}
            self._put(table, new)
            snapshot = json.dumps(new, sort_keys=True)
            if pending is None:
                self._enqueue(UPDATE, table, item_id, snapshot, current.get("version"))
            else:  # insert+update → insert; update+update → update (base version kept)
                conn.execute(
                    "UPDATE sync_operations SET item = ?, revision = revision + 1 WHERE sequence = ?",
                    (snapshot, pending.sequence),
                )
        return new

    def delete(self, table: str, item_id: str) -> None:
        """Delete an item locally and queue the delete.

        After a pending insert nothing reaches the server (both entries vanish); after a
        pending update the entry becomes a delete with the update's base version.
        """
        self.ensure_table(table)
        with self.transaction() as conn:
            pending = self._operation_for(table, item_id)
            if pending is not None and pending.kind == DELETE:
                raise OperationRefused(f"{table}/{item_id} already has a pending delete")
            current = self.get(table, item_id)
            if current is None:
                raise ItemNotFound(f"{table}/{item_id} is not in the local store")
            self._remove(table, item_id)
            snapshot = json.dumps(current, sort_keys=True)
            if pending is None:
                self._enqueue(DELETE, table, item_id, snapshot, current.get("version"))
            elif pending.kind == INSERT:
                conn.execute("DELETE FROM sync_operations WHERE sequence = ?", (pending.sequence,))
            else:
                conn.execute(
                    "UPDATE sync_operations SET kind = ?, item = ?, revision = revision + 1 WHERE sequence = ?",
                    (DELETE, snapshot, pending.sequence),
                )

    # -- the queue -------------------------------------------------------------------------

    def operations(self, table: str | None = None) -> list[PendingOperation]:
        """Queued operations in queue order, for one table or all."""
        if table is None:
            rows = self._conn.execute("SELECT * FROM sync_operations ORDER BY sequence").fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM sync_operations WHERE table_name = ? ORDER BY sequence", (table,)
            ).fetchall()
        return [_operation(row) for row in rows]

    def pending_count(self, table: str | None = None, *, set_aside: bool = False) -> int:
        """Queued operations still to push (``set_aside=True``: those set aside as well)."""
        sql = "SELECT COUNT(*) FROM sync_operations WHERE (? OR error IS NULL)"
        if table is None:
            return int(self._conn.execute(sql, (set_aside,)).fetchone()[0])
        return int(self._conn.execute(sql + " AND table_name = ?", (set_aside, table)).fetchone()[0])

    def set_aside(self, op: PendingOperation, error: str) -> PendingOperation:
        """Mark a queued operation the server refused for good: kept, but no longer pushed.

        It stays visible (``operations``, ``offline-sync queue``) until ``discard`` drops it,
        and it no longer keeps the table's pulls waiting for an empty queue.
        """
        with self.transaction() as conn:
            conn.execute("UPDATE sync_operations SET error = ? WHERE sequence = ?", (error, op.sequence))
            fresh = self.operation(op.sequence)
        assert fresh is not None
        return fresh

    def operation(self, sequence: int) -> PendingOperation | None:
        row = self._conn.execute("SELECT * FROM sync_operations WHERE sequence = ?", (sequence,)).fetchone()
        return _operation(row) if row else None

    def complete(self, op: PendingOperation, server_item: Item | None) -> None:
        """Record that the server accepted ``op`` and answered with ``server_item``.

        If the entry did not change meanwhile, it is removed and the local row takes the
        server's copy. If a local write collapsed into it while the request was in flight,
        the entry stays (now an update based on the server's new version) and so does the
        newer local row.
        """
        with self.transaction() as conn:
            current = self.operation(op.sequence)
            if current is None:
                return
            if current.revision == op.revision:
                conn.execute("DELETE FROM sync_operations WHERE sequence = ?", (op.sequence,))
                if op.kind != DELETE and server_item is not None:
                    self._apply_server_item(op.table, server_item)
                return
            version = (server_item or {}).get("version")
            kind = UPDATE if current.kind == INSERT else current.kind
            conn.execute(
                "UPDATE sync_operations SET kind = ?, base_version = ? WHERE sequence = ?",
                (kind, version, op.sequence),
            )
            row = self.get(op.table, op.item_id)
            if row is not None and version is not None:
                self._put(op.table, {**row, **_system_fields(server_item or {})})

    def accept_server(self, op: PendingOperation, server_item: Item | None) -> None:
        """Server wins: drop the entry and take the server's item (or its absence) locally."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM sync_operations WHERE sequence = ?", (op.sequence,))
            if server_item is None or server_item.get("deleted"):
                self._remove(op.table, op.item_id)
            else:
                self._put(op.table, server_item)

    def rebase(self, op: PendingOperation, item: Item | None, base_version: str | None) -> PendingOperation:
        """Client wins or merge: keep the entry, now based on the server's version.

        ``item`` (if given) replaces the snapshot and the local row. An insert the server
        already has becomes an update. Returns the entry as it now is.
        """
        with self.transaction() as conn:
            kind = UPDATE if op.kind == INSERT else op.kind
            snapshot = op.item if item is None else {**item, "id": op.item_id}
            snapshot = {k: v for k, v in snapshot.items() if k not in SYSTEM_FIELDS or k == "id"}
            if kind != DELETE:
                self._put(op.table, {**snapshot, "version": base_version})
                snapshot = {**snapshot, "version": base_version}
            conn.execute(
                "UPDATE sync_operations SET kind = ?, item = ?, base_version = ?, revision = revision + 1 "
                "WHERE sequence = ?",
                (kind, json.dumps(snapshot, sort_keys=True), base_version, op.sequence),
            )
            fresh = self.operation(op.sequence)
        assert fresh is not None
        return fresh

    def requeue_as_insert(self, op: PendingOperation) -> PendingOperation:
        """Turn the entry into an insert (client wins over a row the server no longer has)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sync_operations SET kind = ?, base_version = NULL, revision = revision + 1 WHERE sequence = ?",
                (INSERT, op.sequence),
            )
            fresh = self.operation(op.sequence)
        assert fresh is not None
        return fresh

    def discard(self, sequence: int) -> None:
        """Drop a queued operation without sending it (the local row is left as it is).

        ``SyncClient.discard`` also puts the local row back to the server's copy.
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM sync_operations WHERE sequence = ?", (sequence,))

    # -- pull --------------------------------------------------------------------------------

    def cursor(self, table: str, query_id: str) -> Cursor:
        row = self._conn.execute(
            "SELECT token FROM sync_cursors WHERE table_name = ? AND query_id = ?", (table, query_id)
        ).fetchone()
        return Cursor(table, query_id, row["token"] if row else None)

    def cursors(self, table: str | None = None) -> list[Cursor]:
        sql = "SELECT * FROM sync_cursors"
        params: tuple[str, ...] = ()
        if table is not None:
            sql += " WHERE table_name = ?"
            params = (table,)
        rows = self._conn.execute(sql + " ORDER BY table_name, query_id", params).fetchall()
        return [Cursor(row["table_name"], row["query_id"], row["token"]) for row in rows]

    def apply_page(self, table: str, items: Sequence[Item], query_id: str | None) -> PageOutcome:
        """Apply one pulled page and advance the delta token, in one transaction.

        Deleted rows are removed; rows with a pending local operation are left alone (the
        push will reconcile them). With ``query_id`` None (a full pull) no token is stored.

        The page is written with one ``executemany`` per statement (upserts, deletes) inside
        the transaction that stores the token, so a page and its token still commit together.
        """
        self.ensure_table(table)
        rows_table = self._rows_table(table)
        if len({item["id"] for item in items}) != len(items):
            # A page naming an item twice is applied row by row, in order, so the last one wins
            # exactly as it always has (servers do not send such pages).
            return self._apply_page_in_order(table, items, query_id)
        with self.transaction(flush=False) as conn:
            token = self.cursor(table, query_id).token if query_id is not None else None
            pending = {
                row[0]
                for row in conn.execute("SELECT item_id FROM sync_operations WHERE table_name = ?", (table,))
            }
            puts: list[tuple[str, str, Any]] = []
            removes: list[tuple[str]] = []
            skipped = 0
            for item in items:
                item_id = item["id"]
                if item_id in pending:
                    skipped += 1
                elif item.get("deleted"):
                    removes.append((item_id,))
                else:
                    puts.append((item_id, _ITEM_JSON(item), item.get("updatedAt")))
            deleted = 0
            if removes:
                deleted = conn.executemany(f"DELETE FROM {rows_table} WHERE id = ?", removes).rowcount
            if puts:
                conn.executemany(
                    f"INSERT INTO {rows_table} (id, item, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET item = excluded.item, updated_at = excluded.updated_at",
                    puts,
                )
            new_token = self._store_token(conn, table, query_id, token, items)
        return PageOutcome(len(puts), deleted, skipped, new_token)

    def _apply_page_in_order(self, table: str, items: Sequence[Item], query_id: str | None) -> PageOutcome:
        upserted = deleted = skipped = 0
        with self.transaction(flush=False) as conn:
            token = self.cursor(table, query_id).token if query_id is not None else None
            pending = {
                row[0]
                for row in conn.execute("SELECT item_id FROM sync_operations WHERE table_name = ?", (table,))
            }
            for item in items:
                if item["id"] in pending:
                    skipped += 1
                elif item.get("deleted"):
                    deleted += self._remove(table, item["id"])
                else:
                    self._put(table, item)
                    upserted += 1
            new_token = self._store_token(conn, table, query_id, token, items)
        return PageOutcome(upserted, deleted, skipped, new_token)

    @staticmethod
    def _store_token(
        conn: sqlite3.Connection, table: str, query_id: str | None, token: str | None, items: Sequence[Item]
    ) -> str | None:
        """The token after a page (never earlier than ``token``); stored under ``query_id`` if set."""
        best = newest_timestamp(items)
        if token and (best is None or parse_timestamp(token) > best):
            best = parse_timestamp(token)
        new_token = format_timestamp(best) if best is not None else None
        if query_id is not None and new_token is not None:
            conn.execute(
                "INSERT INTO sync_cursors (table_name, query_id, token) VALUES (?, ?, ?) "
                "ON CONFLICT (table_name, query_id) DO UPDATE SET token = excluded.token",
                (table, query_id, new_token),
            )
        return new_token

    def set_token(self, table: str, query_id: str, token: str | None) -> None:
        """Store (or, with None, forget) the delta token of ``query_id``."""
        with self.transaction() as conn:
            if token is None:
                conn.execute("DELETE FROM sync_cursors WHERE table_name = ? AND query_id = ?", (table, query_id))
            else:
                conn.execute(
                    "INSERT INTO sync_cursors (table_name, query_id, token) VALUES (?, ?, ?) "
                    "ON CONFLICT (table_name, query_id) DO UPDATE SET token = excluded.token",
                    (table, query_id, token),
                )

    def unseen_ids(self, table: str, seen: set[str], not_after: str) -> list[str]:
        """Local rows not in ``seen``, without a pending operation, stamped at or before ``not_after``."""
        self.ensure_table(table)
        limit = parse_timestamp(not_after)
        pending = {
            row[0] for row in self._conn.execute("SELECT item_id FROM sync_operations WHERE table_name = ?", (table,))
        }
        found = []
        for row in self._conn.execute(f"SELECT id, updated_at FROM {self._rows_table(table)}"):
            if row[0] in seen or row[0] in pending:
                continue
            if row[1] is None or parse_timestamp(row[1]) <= limit:
                found.append(row[0])
        return found

    def remove(self, table: str, item_ids: Sequence[str]) -> int:
        """Remove local rows that the server no longer has (never one with a pending operation)."""
        self.ensure_table(table)
        with self.transaction() as conn:
            pending = {
                row[0] for row in conn.execute("SELECT item_id FROM sync_operations WHERE table_name = ?", (table,))
            }
            return sum(self._remove(table, item_id) for item_id in item_ids if item_id not in pending)

    def remove_missing(self, table: str, keep_ids: set[str]) -> int:
        """After a full pull: remove local rows the server no longer has (unless pending)."""
        self.ensure_table(table)
        with self.transaction() as conn:
            pending = {
                row[0]
                for row in conn.execute("SELECT item_id FROM sync_operations WHERE table_name = ?", (table,))
            }
            local = [row[0] for row in conn.execute(f"SELECT id FROM {self._rows_table(table)}")]
            gone = [item_id for item_id in local if item_id not in keep_ids and item_id not in pending]
            for item_id in gone:
                self._remove(table, item_id)
        return len(gone)

    def _apply_server_item(self, table: str, item: Item) -> None:
        if item.get("deleted"):
            self._remove(table, item["id"])
        else:
            self._put(table, item)

    # -- purge ---------------------------------------------------------------------------------

    # -- sign-in ---------------------------------------------------------------------------
    # Kept in the store so that every command run on the device is signed in, as the Azure
    # clients keep currentUser. A table created on first use: stores written before it exist.

    def save_credentials(self, credentials: Credentials) -> None:
        """Keep the sign-in (one per store), and make the store file readable by its owner only."""
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS sync_credentials (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("DELETE FROM sync_credentials")
            conn.execute(
                "INSERT INTO sync_credentials (name, value) VALUES ('sign_in', ?)",
                (json.dumps(dataclasses.asdict(credentials)),),
            )
        if self.path != ":memory:" and not self.path.startswith("file:"):
            for path in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o600)

    def credentials(self) -> Credentials | None:
        try:
            row = self._conn.execute("SELECT value FROM sync_credentials WHERE name = 'sign_in'").fetchone()
        except sqlite3.OperationalError:  # no such table: never signed in
            return None
        if row is None:
            return None
        try:
            return Credentials(**json.loads(row[0]))
        except (TypeError, ValueError):
            return None

    def clear_credentials(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS sync_credentials (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("DELETE FROM sync_credentials")

    def purge(self, table: str, force: bool = False) -> int:
        """Clear a table's local rows and delta tokens; returns the number of rows removed.

        Refused while the table has queued operations, because they would be lost; ``force``
        discards them as well.
        """
        self.ensure_table(table)
        with self.transaction() as conn:
            pending = self.pending_count(table, set_aside=True)
            if pending and not force:
                raise PendingOperationsError(table, pending)
            conn.execute("DELETE FROM sync_operations WHERE table_name = ?", (table,))
            conn.execute("DELETE FROM sync_cursors WHERE table_name = ?", (table,))
            return conn.execute(f"DELETE FROM {self._rows_table(table)}").rowcount


def _operation(row: sqlite3.Row) -> PendingOperation:
    return PendingOperation(
        sequence=row["sequence"],
        kind=row["kind"],
        table=row["table_name"],
        item_id=row["item_id"],
        item=json.loads(row["item"]),
        base_version=row["base_version"],
        revision=row["revision"],
        error=row["error"],
    )


def _system_fields(item: Item) -> Item:
    return {k: v for k, v in item.items() if k in SYSTEM_FIELDS}
