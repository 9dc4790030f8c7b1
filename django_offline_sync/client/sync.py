"""Push, incremental pull and purge: the moves between the local store and the server.

``Synchronizer`` pushes the operation queue in order (conflicts go to the handler), pulls a
table page by page with the algorithm of the chosen generation (``docs/protocol.rst`` §4.1
for v2, §4.3 for v3) storing the delta token with each page, and purges a table only when
that loses no local change.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from django_offline_sync.wire import ID_NOT_ACCEPTED, IDS_HEADER, SERVER_ASSIGNED_IDS, parse_timestamp

from .conflicts import CANCEL, CLIENT_WINS, MERGE, SERVER_WINS, Conflict, ConflictHandler, cancel, same_value
from .errors import (
    AuthenticationRequired,
    ItemNotFound,
    PushIncomplete,
    ServerError,
    SyncClientError,
    UnaddressableItem,
    UnknownTable,
)
from .store import (
    DELETE,
    INSERT,
    SYSTEM_FIELDS,
    UPDATE,
    Item,
    LocalStore,
    PendingOperation,
    check_name,
    newest_timestamp,
)
from .transport import HttpTransport, decode_json, error_text, etag, looks_like_html, unexpected

#: The server's batch endpoint (``docs/batch.rst``), a protocol extension.
BATCH_PATH = "/tables/$batch"

#: Operations sent in one batch at most (fewer if the server's limit is lower).
BATCH_SIZE = 50

#: ``_send_batch``: the server refused the batch itself, not one of its operations.
WHOLE_BATCH = -1

#: Called as ``progress(table, done, total)``; ``total`` is None when the server gave no count.
Progress = Callable[[str, int, "int | None"], None]

#: How often one operation may be re-sent after client-wins/merge before the push gives up.
MAX_CONFLICT_ROUNDS = 3

#: The header a server adds to a delta pull's pages when tombstones newer than the pull's
#: token were purged (``docs/protocol.rst`` §13.1): the table must be pulled afresh.
HORIZON_HEADER = "X-Offline-Sync-Horizon"

#: Ids per request when a filtered resync asks the server which unseen local rows still exist.
_PROBE_BATCH = 50

#: Test hook only: seconds to sleep after each pulled page and before committing each pushed
#: operation, so a test can kill the process at a known point. Never set it in production.
SLOW_ENV = "OFFLINE_SYNC_TEST_SLOW"


@dataclass
class ConflictRecord:
    """A conflict met during a push and what the handler decided."""

    conflict: Conflict
    action: str


@dataclass
class PushResult:
    """What one push did. ``ok`` is true when the queue (or the pushed part) is empty."""

    pushed: int = 0
    conflicts: list[ConflictRecord] = field(default_factory=list)
    error: str | None = None
    error_operation: PendingOperation | None = None
    cancelled: bool = False
    remaining: int = 0
    #: Operations the server refused for good (an insert into a table whose ids it assigns):
    #: set aside, so they no longer block the push or the table's pulls; discard them.
    set_aside: list[PendingOperation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled

    @property
    def blocking_conflict(self) -> Conflict | None:
        """The conflict the handler left to the user (``cancel``), which stopped this push."""
        if not self.cancelled:
            return None
        return next((record.conflict for record in reversed(self.conflicts) if record.action == CANCEL), None)

    def summary(self) -> str:
        text = f"pushed {self.pushed} operation(s)"
        if self.conflicts:
            text += f", {len(self.conflicts)} conflict(s)"
        if self.cancelled:
            text += ", stopped at a conflict left to the user"
        if self.error:
            text += f", stopped: {self.error}"
        if self.set_aside:
            text += f", {len(self.set_aside)} set aside (refused by the server; see offline-sync queue)"
        return text + f", {self.remaining} pending"


@dataclass(frozen=True)
class DiscardedOperation(PendingOperation):
    """What ``discard`` returns: the dropped operation, and why its row was not put back.

    ``not_restored`` is None when the local row now is the server's copy (or, for an insert,
    is gone). Otherwise it says why the server's copy could not be fetched (unreachable, a
    refusal…): the operation is dropped all the same, and the local row was left as it was
    until a full pull (``pull(table, full=True)``) brings the server's copy.
    """

    not_restored: str | None = None


@dataclass
class PullResult:
    """What one pull of one table did."""

    table: str
    query_id: str | None
    pages: int = 0
    received: int = 0
    upserted: int = 0
    deleted: int = 0
    skipped: int = 0
    token: str | None = None
    pushed: PushResult | None = None
    #: The server's horizon when this pull had to start afresh (its token predated a purge).
    resynced_from: str | None = None

    def summary(self) -> str:
        text = (
            f"{self.table}: {self.received} row(s) received in {self.pages} page(s), {self.upserted} stored, "
            f"{self.deleted} deleted, {self.skipped} kept for pending local changes"
        )
        if self.resynced_from:
            text += f" (full resync: the server purged deletions up to {self.resynced_from})"
        return text


class _HorizonPassed(Exception):
    """A delta pull's token predates the server's purge horizon (``HORIZON_HEADER``)."""

    def __init__(self, horizon: str) -> None:
        super().__init__(horizon)
        self.horizon = horizon


def body_for(item: Item) -> Item:
    """The JSON sent for an insert or update: the item without the server-owned fields."""
    return {k: v for k, v in item.items() if k not in SYSTEM_FIELDS}


def same_content(sent: Item, server: Item) -> bool:
    """Whether the server's item holds every user field we sent, with the same value.

    This is how a re-sent write whose first response was lost is recognised: the server
    then answers 409/412 with an item equal to what we sent.
    """
    return all(key in server and same_value(value, server[key]) for key, value in body_for(sent).items())


class Synchronizer:
    """Push, pull and purge for one store and one server."""

    def __init__(
        self,
        store: LocalStore,
        transport: HttpTransport,
        conflict_handler: ConflictHandler | dict[str, ConflictHandler] = cancel,
        *,
        page_size: int = 50,
        batch: bool | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.store = store
        self.transport = transport
        self.conflict_handler = conflict_handler
        self.page_size = page_size
        #: ``None``: batch when the server advertises ``$batch``; ``False``: never; ``True``: always.
        self.batch = batch
        self.batch_size = batch_size
        self._batch_limits: BatchLimits | bool | None = False  # False: not asked yet
        self.slow = float(os.environ.get(SLOW_ENV) or 0)

    @property
    def generation(self) -> str:
        return self.transport.generation

    def _handler_for(self, table: str) -> ConflictHandler:
        if isinstance(self.conflict_handler, dict):
            return self.conflict_handler.get(table, cancel)
        return self.conflict_handler

    def _pause(self) -> None:
        if self.slow:
            time.sleep(self.slow)

    # -- push --------------------------------------------------------------------------------

    def push(
        self,
        tables: Sequence[str] | None = None,
        handler: ConflictHandler | None = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """Send the queued operations in queue order until the queue is empty or one fails.

        A conflict goes to the handler; a failure that is not a conflict stops the push and
        leaves that operation (and all later ones) queued.
        """
        result = PushResult()
        queue = [
            op for op in self.store.operations() if (tables is None or op.table in tables) and not op.set_aside
        ]
        limits = self.batch_limits() if len(queue) > 1 else None
        if limits is not None:
            self._push_batched(queue, limits, result, handler, progress)
        else:
            for index, queued in enumerate(queue):
                op = self.store.operation(queued.sequence)
                if op is None:  # resolved meanwhile
                    continue
                if not self._push_one(op, result, handler):
                    break
                if progress:
                    progress("push", index + 1, len(queue))
        result.remaining = sum(self.store.pending_count(t) for t in tables) if tables else self.store.pending_count()
        return result

    # -- batched push (``docs/batch.rst``) ---------------------------------------------------

    def batch_limits(self) -> BatchLimits | None:
        """The server's batch limits if it serves ``POST /tables/$batch`` (asked once), else None."""
        if self.batch is False:
            return None
        if self._batch_limits is False:
            self._batch_limits = self._discover_batch()
            if self._batch_limits is None and self.batch:
                raise ServerError(404, "the server does not serve batches (GET /tables/$batch)", b"")
        return self._batch_limits if isinstance(self._batch_limits, BatchLimits) else None

    def _discover_batch(self) -> BatchLimits | None:
        response = self.transport.request("GET", BATCH_PATH)
        if response.status_code != 200:
            return None  # a server without the extension: 404 (or 405)
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("batch") is not True:
            return None
        max_ops, max_bytes = body.get("maxOperations"), body.get("maxBodyBytes")
        if not isinstance(max_ops, int) or not isinstance(max_bytes, int) or max_ops < 1:
            return None
        return BatchLimits(max_ops, max_bytes)

    def _push_batched(
        self,
        queue: list[PendingOperation],
        limits: BatchLimits,
        result: PushResult,
        handler: ConflictHandler | None,
        progress: Progress | None,
    ) -> None:
        """Push ``queue`` in order as batches; an operation a batch refused goes alone.

        A refused batch applied nothing, so the operations before the refused one are sent
        again as a batch, then the refused one alone through the single-request path (which
        gives it to the conflict handler, as without batches), then the rest.
        """
        step = max(1, min(self.batch_size, limits.max_operations))
        position = 0
        while position < len(queue):
            window = queue[position : position + step]
            ops = [op for queued in window if (op := self.store.operation(queued.sequence)) is not None]
            if not ops:  # resolved meanwhile
                position += len(window)
                continue
            chunk = _fit(ops, limits.max_body_bytes)
            refused = self._send_batch(chunk, result)
            if refused is None:
                done = len(chunk)
            else:
                singles = chunk if refused == WHOLE_BATCH else [chunk[refused]]
                head = [] if refused == WHOLE_BATCH else chunk[:refused]
                if head and self._send_batch(head, result) is not None:
                    singles = [*head, *singles]  # refused again without it: one by one
                for op in singles:
                    if not self._push_one(op, result, handler):
                        return
                done = len(chunk) if refused == WHOLE_BATCH else refused + 1
            last = chunk[done - 1].sequence
            position = next(i for i, queued in enumerate(queue) if queued.sequence == last) + 1
            if progress:
                progress("push", position, len(queue))

    def _send_batch(self, chunk: list[PendingOperation], result: PushResult) -> int | None:
        """Send ``chunk`` as one batch: None when applied, else the index of the refused
        operation, or ``WHOLE_BATCH`` when the batch as such was refused."""
        if len(chunk) == 1:
            return WHOLE_BATCH  # one operation gains nothing from a batch: the single request
        body = {"batchId": _batch_id(self.store.path, chunk), "operations": [self._batch_op(op) for op in chunk]}
        response = self.transport.request("POST", BATCH_PATH, json=body)
        self._pause()
        if response.status_code == 401:  # nothing applied, nothing dequeued: sign in again, push again
            raise authentication_required(response)
        if response.status_code == 200:
            answer = decode_json(response)
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(chunk):
                raise unexpected(response, "answered a batch without one result per operation")
            for op, outcome in zip(chunk, results, strict=True):
                item = outcome.get("item") if isinstance(outcome, dict) else None
                server_item = item if isinstance(item, dict) and "id" in item else None
                if server_item is not None and (server_item["id"] != op.item_id or not _looks_like_item(server_item)):
                    raise unexpected(response, f"acknowledged {op.kind} {op.table}/{op.item_id} with another item")
                if server_item is None and op.kind != DELETE:
                    server_item = self.fetch(op.table, op.item_id)
                self.store.complete(op, server_item)
                result.pushed += 1
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        index = answer.get("index") if isinstance(answer, dict) else None
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(chunk):
            return index
        return WHOLE_BATCH  # refused as a whole (a limit, a malformed batch): push the chunk one by one

    def _batch_op(self, op: PendingOperation) -> dict[str, Any]:
        entry: dict[str, Any] = {"op": op.kind, "table": op.table, "id": op.item_id}
        if op.kind != DELETE:
            entry["item"] = body_for(op.item)
        if op.base_version and op.kind != INSERT:
            entry["version"] = op.base_version
        return entry

    def _send(self, op: PendingOperation) -> httpx.Response:
        path = self.transport.table_path(op.table, None if op.kind == INSERT else op.item_id)
        headers = {"If-Match": etag(op.base_version)} if op.base_version and op.kind != INSERT else None
        if op.kind == INSERT:
            return self.transport.request("POST", path, json=body_for(op.item))
        if op.kind == UPDATE:
            method = "PUT" if self.generation == "v3" else "PATCH"
            return self.transport.request(method, path, json=body_for(op.item), headers=headers)
        return self.transport.request("DELETE", path, headers=headers)

    @property
    def _deleted_param(self) -> str:
        return "__includedeleted" if self.generation == "v3" else "__includeDeleted"

    def fetch(self, table: str, item_id: str) -> Item | None:
        """The server's copy of one item, tombstones included; None if it has none.

        An item whose own URL the server cannot route (the router's 404 page: an id with
        ``/``) is read through the table's URL instead; ``UnknownTable`` if that 404s too.
        """
        response = self.transport.request(
            "GET", self.transport.table_path(table, item_id), params={self._deleted_param: "true"}
        )
        if _no_table(response, collection=False):
            return self._fetch_through_table(table, item_id)
        if response.status_code in (404, 410):
            return None
        _raise_for_status(response)
        return _json_item(response, strict=True)

    def _fetch_through_table(self, table: str, item_id: str) -> Item | None:
        """The item as a query of the table's own URL finds it (``$filter=id eq '…'``).

        The way to the server's copy when the item's URL answered the router's 404 page: that
        page also answers a table the server does not have, so this tells the two apart (it
        raises ``UnknownTable`` when the table's URL 404s as well).
        """
        items = self._query_ids(table, [item_id])
        return next((item for item in items if item["id"] == item_id), None)

    def _query_ids(self, table: str, item_ids: list[str]) -> list[Item]:
        """The server's rows (tombstones included) among ``item_ids``, one query of the table's URL."""
        quoted = ",".join(_odata_string(item_id) for item_id in item_ids)
        params = {"$filter": f"id in ({quoted})", "$top": str(len(item_ids)), self._deleted_param: "true"}
        response = self.transport.request("GET", self.transport.table_path(table), params=params)
        _raise_if_no_table(response, table, collection=True)
        _raise_for_status(response)
        body = decode_json(response)
        if isinstance(body, dict):
            body = body.get("items", body.get("results"))
        return _page_items(response, body)

    def _no_route(self, op: PendingOperation, result: PushResult) -> bool:
        """``_push_one`` for an operation whose URL answered the URL router's 404 page.

        That page answers a table the server does not have, an item id the router cannot take
        (one containing ``/``) and, now and then, a proxy or a server being deployed. Only the
        second can never succeed, so only it is set aside, and only when the table's own URL
        shows that the table is there; anything else stops the push and keeps the operation
        queued (a retry may clear it). A 401 while asking raises, as anywhere in a push.
        """
        if op.kind == INSERT:
            return _stopped(result, op, str(UnknownTable(op.table)))
        try:  # the table's URL tells a missing table from an id the router cannot take
            self._fetch_through_table(op.table, op.item_id)
        except UnknownTable as exc:
            return _stopped(result, op, str(exc))
        except AuthenticationRequired:
            raise
        except SyncClientError as exc:
            return _stopped(
                result,
                op,
                f"its URL answered a 'Not Found' page, and asking the table's URL whether the table is "
                f"there failed ({exc}); it stays queued: push again later",
            )
        if "/" not in op.item_id:
            return _stopped(
                result,
                op,
                f"its URL answered a 'Not Found' page though the server serves table {op.table!r} "
                "(a proxy, or a server being deployed?); it stays queued: push again later",
            )
        # The server can never take this change (its URL has no route, and the batch refuses
        # such an id in a body too): set it aside so it does not block every later operation
        # and the table's pulls.
        result.set_aside.append(self.store.set_aside(op, str(UnaddressableItem(op.table, op.item_id))))
        return True

    def _push_one(self, op: PendingOperation, result: PushResult, handler: ConflictHandler | None) -> bool:
        for _round in range(MAX_CONFLICT_ROUNDS + 1):
            response = self._send(op)
            self._pause()
            status = response.status_code
            if _no_table(response, collection=op.kind == INSERT):
                return self._no_route(op, result)
            if 200 <= status < 300:
                server_item = _json_item(response, strict=True)
                if server_item is not None and (server_item["id"] != op.item_id or not _looks_like_item(server_item)):
                    # Stored, it would be a row the device never wrote, and op's own row would
                    # keep no version: the operation stays queued (a resend that finds its
                    # write applied comes back as a conflict with its own content).
                    raise unexpected(response, f"acknowledged {op.kind} {op.table}/{op.item_id} with another item")
                if server_item is None and op.kind != DELETE:
                    server_item = self.fetch(op.table, op.item_id)
                self.store.complete(op, server_item)
                result.pushed += 1
                return True
            if op.kind == DELETE and status in (404, 410):
                self.store.complete(op, None)  # already gone: the delete has happened
                result.pushed += 1
                return True
            if status == 401:  # the operation stays queued; signing in again and pushing resumes here
                raise authentication_required(response)
            is_conflict = status in (409, 412) or (op.kind == UPDATE and status in (404, 410))
            if op.kind == INSERT and status == 400 and _error_code(response) == ID_NOT_ACCEPTED:
                # The table's ids come from the server: this insert can never succeed. Set it
                # aside (it would stop every later push and pull of the table) and remember
                # the table, so the next offline insert is refused up front.
                self.store.set_server_assigns_ids(op.table, True)
                reason = f"HTTP 400: {error_text(response)}"
                result.set_aside.append(self.store.set_aside(op, reason))
                return True
            if status == 429:  # throttled: nothing wrong with the operation, only the timing
                wait = response.headers.get("Retry-After")
                when = f" (the server asks to wait {wait} s)" if wait and wait.isdigit() else ""
                return _stopped(result, op, f"the server is throttling requests (HTTP 429); push again later{when}")
            if not is_conflict:
                result.error = _refused_message(op, f"HTTP {status}: {error_text(response)}")
                result.error_operation = op
                return False
            server_item = _json_item(response, strict=False)
            if server_item is None or server_item.get("id") != op.item_id:
                server_item = self.fetch(op.table, op.item_id)
            # A write whose response was lost comes back as a conflict with our own content.
            if (
                server_item is not None
                and not server_item.get("deleted")
                and op.kind != DELETE
                and same_content(op.item, server_item)
            ):
                self.store.complete(op, server_item)
                result.pushed += 1
                return True
            if op.kind == DELETE and (server_item is None or server_item.get("deleted")):
                self.store.complete(op, None)
                result.pushed += 1
                return True
            local = self.store.get(op.table, op.item_id) if op.kind != DELETE else None
            conflict = Conflict(op, local or op.item, server_item, status)
            resolution = (handler or self._handler_for(op.table))(conflict)
            result.conflicts.append(ConflictRecord(conflict, resolution.action))
            if resolution.action == CANCEL:
                result.cancelled = True
                return False
            if resolution.action == SERVER_WINS:
                self.store.accept_server(op, server_item)
                return True
            if resolution.action not in (CLIENT_WINS, MERGE):
                raise ValueError(f"unknown conflict resolution {resolution.action!r}")
            if server_item is None:
                # Gone from the server for good: client wins means creating it again.
                op = self.store.rebase(op, resolution.item, None)
                op = self.store.requeue_as_insert(op) if op.kind == UPDATE else op
                continue
            if server_item.get("deleted"):
                result.error = (
                    f"{op.kind} {op.table}/{op.item_id}: the server deleted this item; "
                    f"resolve with server-wins or drop it: offline-sync discard {op.sequence}"
                )
                result.error_operation = op
                return False
            op = self.store.rebase(op, resolution.item, server_item.get("version"))
        result.error = f"{op.kind} {op.table}/{op.item_id}: still conflicting after {MAX_CONFLICT_ROUNDS} retries"
        result.error_operation = op
        return False

    # -- pull --------------------------------------------------------------------------------

    def pull(
        self,
        table: str,
        *,
        query_id: str | None = None,
        filter: str | None = None,
        full: bool = False,
        handler: ConflictHandler | None = None,
        progress: Progress | None = None,
    ) -> PullResult:
        """Bring the local copy of ``table`` up to date with the server.

        Incremental by default: the delta token stored under ``query_id`` (derived from
        ``filter`` when not given) is where the pull starts, and it advances with every page.
        ``full`` ignores any token, stores none, and removes local rows the server no
        longer has. Pending operations of the table are pushed first; if that push does not
        empty the queue, ``PushIncomplete`` is raised and nothing is pulled.
        """
        check_name(table)
        pushed = None
        if self.store.pending_count(table):
            pushed = self.push(handler=handler)
            if self.store.pending_count(table):
                raise PushIncomplete(pushed, table)
        qid = None if full else (query_id or default_query_id(filter))
        result = PullResult(table, qid, pushed=pushed)
        token = self.store.cursor(table, qid).token if qid is not None else None
        seen: set[str] | None = set() if full and filter is None else None
        try:
            self._pull_pages(table, qid, filter, token, result, seen, progress)
        except _HorizonPassed as passed:
            self._resync(table, qid, filter, result, progress, passed.horizon)
        if seen is not None:
            result.deleted += self.store.remove_missing(table, seen)
        self.store.ensure_table(table)  # only now: a table the server does not have leaves no trace
        return result

    def _pull_pages(
        self,
        table: str,
        qid: str | None,
        user_filter: str | None,
        token: str | None,
        result: PullResult,
        seen: set[str] | None,
        progress: Progress | None,
    ) -> None:
        if self.generation == "v3":
            self._pull_v3(table, qid, user_filter, token, result, seen, progress)
        else:
            self._pull_v2(table, qid, user_filter, token, result, seen, progress)

    def _resync(
        self,
        table: str,
        qid: str | None,
        user_filter: str | None,
        result: PullResult,
        progress: Progress | None,
        horizon: str,
    ) -> None:
        """Pull ``table`` afresh after the server purged tombstones this device never saw.

        Pending operations stay queued (and their rows untouched). The pull runs without a
        token and stores its token only at the end, so an interrupted resync starts again
        from scratch next time instead of passing the horizon with rows left to remove.
        Local rows the full pull did not return are gone from the server; with a ``filter``
        the pull does not return every row, so those older than the horizon are looked up.
        """
        result.resynced_from = horizon
        seen: set[str] = set()
        fresh = PullResult(table, None)
        self._pull_pages(table, None, user_filter, None, fresh, seen, progress)
        if user_filter is None:
            removed = self.store.remove_missing(table, seen)
        else:
            removed = self.store.remove(table, self._gone(table, self.store.unseen_ids(table, seen, horizon)))
        for name in ("pages", "received", "upserted", "deleted", "skipped"):
            setattr(result, name, getattr(result, name) + getattr(fresh, name))
        result.deleted += removed
        result.token = fresh.token
        if qid is not None:
            self.store.set_token(table, qid, fresh.token)

    def _gone(self, table: str, item_ids: list[str]) -> list[str]:
        """Which of ``item_ids`` the server has no live row for (deleted, purged or never there)."""
        gone: list[str] = []
        for start in range(0, len(item_ids), _PROBE_BATCH):
            chunk = item_ids[start : start + _PROBE_BATCH]
            live = {item["id"] for item in self._query_ids(table, chunk) if not item.get("deleted")}
            gone.extend(item_id for item_id in chunk if item_id not in live)
        return gone

    @staticmethod
    def _check_horizon(response: httpx.Response, watch: bool) -> None:
        horizon = response.headers.get(HORIZON_HEADER)
        if watch and horizon:
            raise _HorizonPassed(horizon)

    def _apply(
        self, table: str, qid: str | None, items: list[Item], result: PullResult, seen: set[str] | None
    ) -> str | None:
        """Apply one page; returns the token after it (the newest updatedAt seen so far)."""
        outcome = self.store.apply_page(table, items, qid)
        result.pages += 1
        result.received += len(items)
        result.upserted += outcome.upserted
        result.deleted += outcome.deleted
        result.skipped += outcome.skipped
        result.token = outcome.token or result.token
        if seen is not None:
            seen.update(item["id"] for item in items if not item.get("deleted"))
        self._pause()
        return outcome.token

    def _pull_v3(
        self,
        table: str,
        qid: str | None,
        user_filter: str | None,
        token: str | None,
        result: PullResult,
        seen: set[str] | None,
        progress: Progress | None,
    ) -> None:
        path = self.transport.table_path(table)
        clauses = [f"({user_filter})"] if user_filter else []
        if token:  # ``docs/protocol.rst`` §4.3: strict gt, no filter on the first pull
            clauses.append(f"(updatedAt gt cast({token},Edm.DateTimeOffset))")
        first: dict[str, str] = {"$orderby": "updatedAt", "$count": "true", "__includedeleted": "true"}
        if clauses:
            first["$filter"] = " and ".join(clauses)
        params: dict[str, str] | None = first
        url: str | None = path
        total: int | None = None
        previous: list[tuple[Any, ...]] | None = None
        while url:
            response = self.transport.request("GET", url, params=params)
            _raise_if_no_table(response, table, collection=True)
            _raise_for_status(response)
            self._check_horizon(response, watch=token is not None)
            body = decode_json(response)
            self._learn(table, response)
            if not isinstance(body, dict) or "items" not in body:
                raise _not_a_page(response)
            items = _page_items(response, body["items"])
            previous = _check_not_repeated(response, items, previous)
            if total is None and isinstance(body.get("count"), int):
                total = body["count"]
            if items:
                self._apply(table, qid, items, result, seen)
            if progress:
                progress(table, result.received, total)
            asked = url
            url = _next_url(response, self.transport.base_url, path, body.get("nextLink")) if items else None
            if url is not None and params is None and url == asked:
                raise unexpected(response, "gave as its nextLink the page it had just sent (a pull that never ends)")
            params = None  # the nextLink carries every parameter

    def _pull_v2(
        self,
        table: str,
        qid: str | None,
        user_filter: str | None,
        token: str | None,
        result: PullResult,
        seen: set[str] | None,
        progress: Progress | None,
    ) -> None:
        # ``docs/protocol.rst`` §4.1 (the .NET client): `ge` the token; when a page moves the
        # token forward the filter is rebuilt and $skip resets, otherwise $skip grows. Done on
        # an empty page. `ge` re-reads the boundary row, which is harmless.
        path = self.transport.table_path(table)
        skip = 0
        total: int | None = None
        # `ge` re-reads the rows at the token: a row already applied at the same version is
        # not applied, received or stored a second time, so the counts are the rows pulled.
        # The rows at a stored token were applied by the pull that stored it: those still at
        # the version held here count as already applied too. A row without a version is
        # always applied: nothing tells it from a row changed in the same millisecond.
        applied: dict[str, Any] = {}
        stored = parse_timestamp(token) if token else None
        watch = token is not None  # a pull from a stored token may have passed the horizon
        previous: list[tuple[Any, ...]] | None = None
        while True:
            clauses = [f"({user_filter})"] if user_filter else []
            if token:
                clauses.append(f"(updatedAt ge datetimeoffset'{token}')")
            params = {
                "$orderby": "updatedAt",
                "$skip": str(skip),
                "$top": str(self.page_size),
                "__includeDeleted": "true",
            }
            if clauses:
                params["$filter"] = " and ".join(clauses)
            if total is None:
                params["$inlinecount"] = "allpages"
            response = self.transport.request("GET", path, params=params)
            _raise_if_no_table(response, table, collection=True)
            _raise_for_status(response)
            self._check_horizon(response, watch)
            body = decode_json(response)
            self._learn(table, response)
            if isinstance(body, dict):
                if "results" not in body:
                    raise _not_a_page(response)
                items = _page_items(response, body["results"])
                if total is None and isinstance(body.get("count"), int):
                    total = body["count"]
            else:
                items = _page_items(response, body)
            if not items:
                break
            # A page that moved the token is re-read in part by the next one (`ge`), so only
            # a page repeated at a larger $skip means a server ignoring $skip.
            previous = _check_not_repeated(response, items, previous)
            # The page's token is max(token, newest updatedAt of the page): the token the loop
            # started from is the stored one (or None on a full pull), and both advance alike.
            if stored is not None:
                self._note_stored_boundary(table, items, stored, applied)
            fresh = [item for item in items if not item.get("version") or applied.get(item["id"]) != item["version"]]
            after = self._apply(table, qid, fresh, result, seen)
            applied.update((item["id"], item.get("version")) for item in fresh)
            if after is not None and (token is None or parse_timestamp(after) > parse_timestamp(token)):
                token = after
                skip = 0
                previous = None
            else:
                skip += len(items)
            if progress:
                progress(table, len(applied) if total is None else min(len(applied), total), total)

    def _note_stored_boundary(self, table: str, items: list[Item], stored: Any, applied: dict[str, Any]) -> None:
        """Add to ``applied`` the rows of ``items`` stamped at the stored token that the local
        store holds at the same version (a v2 pull re-reads them with `ge`)."""
        for item in items:
            stamped, version = item.get("updatedAt"), item.get("version")
            if item["id"] in applied or not version or not stamped or not _at(stamped, stored):
                continue
            local = self.store.get(table, item["id"])
            if local is not None and local.get("version") == version:
                applied[item["id"]] = version

    def _learn(self, table: str, response: httpx.Response) -> None:
        """Remember whether the server assigns ``table``'s ids (``wire.IDS_HEADER``)."""
        self.store.set_server_assigns_ids(table, response.headers.get(IDS_HEADER) == SERVER_ASSIGNED_IDS)

    # -- discard -----------------------------------------------------------------------------

    def discard(self, sequence: int) -> DiscardedOperation:
        """Drop queued operation ``sequence`` and put its item back as the server has it.

        A discarded insert never reached the server, so its local row goes too (no request).
        A discarded update or delete takes the server's current copy (one GET), or removes
        the row when the server has none. Discarding is the device's own decision, so it
        happens even when that copy cannot be fetched (server unreachable, a refusal): the
        local row is then left as it was, and the result's ``not_restored`` says why; a full
        pull of the table brings the server's copy. ``ItemNotFound`` if there is no such
        operation.
        """
        op = self.store.operation(sequence)
        if op is None:
            raise ItemNotFound(f"no queued operation #{sequence}")
        if op.kind == INSERT:
            self.store.accept_server(op, None)
            return DiscardedOperation(**vars(op))
        try:
            server_item = self.fetch(op.table, op.item_id)
        except (AuthenticationRequired, UnknownTable):
            # Not the server's copy being out of reach but this device's sign-in or URL: dropping
            # the operation would leave its edits in the local row, where incremental pulls do
            # not look. Sign in again (or fix the URL) and discard again.
            raise
        except SyncClientError as exc:
            self.store.discard(op.sequence)
            return DiscardedOperation(**vars(op), not_restored=str(exc))
        self.store.accept_server(op, server_item)
        return DiscardedOperation(**vars(op))

    # -- purge -------------------------------------------------------------------------------

    def purge(self, table: str, force: bool = False) -> int:
        """Clear the local rows and delta tokens of ``table`` (see ``LocalStore.purge``)."""
        return self.store.purge(table, force=force)


@dataclass(frozen=True)
class BatchLimits:
    """What ``GET /tables/$batch`` advertised."""

    max_operations: int
    max_body_bytes: int


def _batch_id(store_path: str, chunk: Sequence[PendingOperation]) -> str:
    """The same id for the same operations, so that a batch re-sent after a lost answer (even
    by a restarted process) is recognised by the server and applied once. It names the store
    and each entry's sequence and revision (a changed entry is a new batch) and the content.
    """
    digest = hashlib.sha256(os.path.abspath(store_path).encode())
    for op in chunk:
        entry = [op.sequence, op.revision, op.kind, op.table, op.item_id, op.base_version, op.item]
        digest.update(json.dumps(entry, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _fit(ops: list[PendingOperation], max_bytes: int) -> list[PendingOperation]:
    """The longest prefix of ``ops`` whose batch body stays under ``max_bytes`` (at least one)."""
    budget = max_bytes - 200  # the envelope
    size = 0
    for count, op in enumerate(ops):
        size += len(json.dumps(op.item, default=str)) + len(op.table) + len(op.item_id) + 120
        if size > budget and count > 0:
            return ops[:count]
    return ops


def default_query_id(user_filter: str | None) -> str:
    """The query id used when none is given: one per distinct filter, ``*`` for the whole table."""
    return "*" if not user_filter else f"$filter={user_filter}"


def _next_url(response: httpx.Response, base: httpx.URL, path: str, next_link: Any) -> str | None:
    """Where a v3 nextLink points: a bare query string (CTK), a path or an absolute URL (AMA).

    An absolute URL must be on the client's own server (scheme, host and port): the client
    would send its sign-in headers there and store what it answers, so a link elsewhere is
    refused as a redirect to another site is.
    """
    if not next_link:
        return None
    if not isinstance(next_link, str):
        raise _not_a_page(response)
    if next_link.startswith(("http://", "https://")):
        target = httpx.URL(next_link)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise unexpected(
                response,
                f"gave a nextLink to another server ({target.scheme}://{target.netloc.decode('ascii', 'replace')}); "
                "the client follows links to its own server only",
            )
        return next_link
    if next_link.startswith("/"):
        return next_link
    return f"{path}?{next_link.lstrip('?')}"


def _check_not_repeated(
    response: httpx.Response, items: list[Item], previous: list[tuple[Any, ...]] | None
) -> list[tuple[Any, ...]]:
    """The page's rows as (id, updatedAt, version); the same rows as the page before means a
    server (or a caching proxy) answering every page alike, a pull that would never end."""
    rows = [(item["id"], item.get("updatedAt"), item.get("version")) for item in items]
    if rows and rows == previous:
        raise unexpected(response, "sent the same page again (a pull that would never end)")
    return rows


def _stopped(result: PushResult, op: PendingOperation, reason: str) -> bool:
    """Stop the push at ``op`` (kept queued) for ``reason``; False, for ``_push_one`` to return."""
    result.error = f"{op.kind} {op.table}/{op.item_id}: {reason}"
    result.error_operation = op
    return False


def _refused_message(op: PendingOperation, reason: str) -> str:
    """The message for an operation the server refused and that now stops the push (and the
    table's pulls): what was refused, why, and the two ways out."""
    return (
        f"{op.kind} {op.table}/{op.item_id} refused ({reason}); it stops the push and this table's pulls "
        f"until it is fixed (change the item locally, then push again) or dropped: offline-sync discard {op.sequence}"
    )


def _odata_string(value: str) -> str:
    """``value`` as an OData string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _error_code(response: httpx.Response) -> str | None:
    """The ``errorCode`` of an error body, if it is JSON and has one."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _json_item(response: httpx.Response, *, strict: bool) -> Item | None:
    """The item in a response's body, or None if it holds none.

    ``strict`` (a success, or a fetch): a body that is not JSON raises ``UnexpectedResponse``,
    since taking it for "no item" would mark an operation pushed that never reached the API.
    Otherwise (a conflict's body) it only means the server sent no item.
    """
    if not response.content:
        return None
    if strict:
        body = decode_json(response)
    else:
        try:
            body = response.json()
        except ValueError:
            return None
    return body if isinstance(body, dict) and "id" in body else None


def _not_a_page(response: httpx.Response) -> Exception:
    return unexpected(response, "answered with JSON that is not a page of the sync API's items (a wrong URL?)")


def _at(stamped: str, instant: Any) -> bool:
    """Whether the timestamp ``stamped`` is ``instant``. A page's stamps are checked by its
    newest only (``_page_items``), so an older one may be no date: it is not at ``instant``."""
    try:
        return bool(parse_timestamp(stamped) == instant)
    except (ValueError, OverflowError):
        return False


def _page_items(response: httpx.Response, items: Any) -> list[Item]:
    """A pulled page's items, checked before any is stored: objects with a non-empty string
    id, ``deleted`` a boolean, ``version`` and ``updatedAt`` strings, and every ``updatedAt``
    a timestamp (a server that sends anything else is not the sync API, and storing it would
    leave rows no update can address, or a token no later pull can use)."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(_looks_like_item(item) for item in items):
        raise _not_a_page(response)
    try:
        newest_timestamp(items)
    except (ValueError, TypeError, OverflowError):
        raise unexpected(response, "sent an item whose updatedAt is not a timestamp") from None
    return items


def _looks_like_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and item["id"] != ""
        and isinstance(item.get("deleted", False), bool)
        and isinstance(item.get("version", ""), (str, type(None)))
        and isinstance(item.get("updatedAt", ""), (str, type(None)))
    )


def _no_table(response: httpx.Response, *, collection: bool) -> bool:
    """Whether a 404 says the table, not an item, is missing.

    On a table's own URL any 404 does. On an item's URL the API answers a missing item with
    its own 404 (JSON, or empty); an HTML "Not Found" page comes from the URL router, which
    has no such table, or no route for that id (one containing ``/``): the caller asks the
    table's own URL which (``_fetch_through_table``). Taking it for a missing item would drop
    a queued delete as done.
    """
    return response.status_code == 404 and (collection or looks_like_html(response))


def _raise_if_no_table(response: httpx.Response, table: str, *, collection: bool = False) -> None:
    if _no_table(response, collection=collection):
        raise UnknownTable(table, response.content)


def authentication_required(response: httpx.Response) -> AuthenticationRequired:
    """A 401 as the error to raise: what the server said was wrong, and what to do."""
    code = None
    try:
        body = response.json()
        code = body.get("errorCode") if isinstance(body, dict) else None
    except ValueError:
        pass
    reason = error_text(response)
    return AuthenticationRequired(
        f"the server refused the sign-in ({code or 'HTTP 401'}: {reason}); sign in again", response.content, code
    )


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code == 401:
        raise authentication_required(response)
    if response.status_code >= 400:
        raise ServerError(response.status_code, error_text(response), response.content)
