"""Schemathesis hooks for the fuzz run (loaded with ``SCHEMATHESIS_HOOKS=fuzz.hooks``).

``FUZZ_DB`` names the SQLite file the live server writes; this process reads it directly.

* ``before_call``: for a write (POST, PUT, PATCH, DELETE), snapshots every synced table of
  the example app and the ``offline_sync_clock`` table: all rows, soft-deleted ones included,
  with their versions and stamps. Half of the requests to ``/tables/{T}/{id}`` are first
  pointed at a row that exists (any owner, live or deleted), with no ``If-Match``, the row's
  current version, a stale well-formed version or a malformed one, and half of the bodies
  naming ``taskId`` get a task that exists, so that fuzzed bodies reach real rows and the
  precondition, instead of a 404 for a random id (reads of ``/tables/{T}/{id}`` too).
* ``before_load_schema``: request bodies as JSON only (the form types drf-spectacular lists
  are answered 415 unread).
* ``no_write_on_4xx`` (a check): a write answered 4xx must leave that snapshot unchanged;
  otherwise it fails with the rows added, removed or changed. Requests are sent one at a
  time (``--workers 1``) and the fuzzer is the server's only client, so any change between
  the snapshot and the answer is that request's.
"""

from __future__ import annotations

import base64
import os
import random
import re
import sqlite3
import threading
from typing import Any

import schemathesis

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The example app's tables and the stamping clock.
TABLE_SQL = (
    "SELECT name FROM sqlite_master WHERE type = 'table' "
    "AND (name LIKE 'tasks\\_%' ESCAPE '\\' OR name = 'offline_sync_clock') ORDER BY name"
)
DETAIL = re.compile(r"^/tables/(?P<table>[^/]+)/\{id\}/?$")

Rows = dict[Any, tuple[Any, ...]]
Snapshot = dict[str, Rows]

_rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")))
_pending: dict[int, Snapshot] = {}
_local = threading.local()  # schemathesis calls from a worker thread per phase: a connection each


def _db() -> sqlite3.Connection:
    connection: sqlite3.Connection | None = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = sqlite3.connect(os.environ["FUZZ_DB"], isolation_level=None, timeout=30)
    return connection


def snapshot() -> Snapshot:
    """Every row of every watched table, keyed by its first column (the primary key)."""
    db = _db()
    db.execute("BEGIN")  # one read snapshot for all tables
    try:
        tables = [name for (name,) in db.execute(TABLE_SQL)]
        return {table: {row[0]: row for row in db.execute(f'SELECT * FROM "{table}"')} for table in tables}
    finally:
        db.execute("COMMIT")


def describe_changes(before: Snapshot, after: Snapshot) -> list[str]:
    changes = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, {}), after.get(table, {})
        added = sorted(map(str, new.keys() - old.keys()))
        removed = sorted(map(str, old.keys() - new.keys()))
        changed = [key for key in old.keys() & new.keys() if old[key] != new[key]]
        if added:
            changes.append(f"{table}: rows added {added[:5]}")
        if removed:
            changes.append(f"{table}: rows removed {removed[:5]}")
        for key in sorted(changed, key=str)[:5]:
            changes.append(f"{table}: row {key!r} changed {old[key]!r} -> {new[key]!r}")
    return changes


def _model_table(name: str) -> str:
    return "tasks_" + name.lower()


def _pick_row(table: str) -> tuple[str, int] | None:
    row = _db().execute(f'SELECT id, version FROM "{table}" ORDER BY random() LIMIT 1').fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _encode_version(version: int) -> str:
    return base64.b64encode(version.to_bytes(8, "big", signed=True)).decode("ascii")


def _aim_at_existing_rows(case: Any) -> None:
    match = DETAIL.match(case.operation.path)
    if match and _rng.random() < 0.5:
        row = _pick_row(_model_table(match["table"]))
        if row is not None:
            case.path_parameters = {**(case.path_parameters or {}), "id": row[0]}
            tag = _rng.choice([None, _encode_version(row[1]), _encode_version(row[1] - 1), "not base64!"])
            if tag is not None:
                case.headers = {**(case.headers or {}), "If-Match": f'"{tag}"'}
    if isinstance(case.body, dict) and "taskId" in case.body and _rng.random() < 0.5:
        task = _pick_row("tasks_task")
        if task is not None:
            case.body = {**case.body, "taskId": task[0]}


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    """Request bodies as JSON only: the tables answer any other type 415 before reading it.

    drf-spectacular lists DRF's default form parsers too; without this, half of the write
    cases would be spent on 415s.
    """
    for item in raw_schema.get("paths", {}).values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content") if isinstance(operation, dict) else None
            if content and "application/json" in content:
                for media_type in [m for m in content if m != "application/json"]:
                    del content[media_type]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    _aim_at_existing_rows(case)
    if case.method.upper() not in WRITES:
        return
    _pending.clear()  # one request at a time: only the latest snapshot can still be checked
    _pending[id(case)] = snapshot()


@schemathesis.check
def no_write_on_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """A write answered 4xx must not have added, changed or removed any row, nor moved a clock."""
    before = _pending.pop(id(case), None)
    if before is None or not 400 <= response.status_code < 500:
        return None
    changes = describe_changes(before, snapshot())
    if changes:
        raise AssertionError(
            f"{case.method.upper()} answered {response.status_code} but wrote:\n  " + "\n  ".join(changes)
        )
    return None
