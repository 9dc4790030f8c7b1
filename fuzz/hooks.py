"""Schemathesis hooks for the fuzz run (loaded with ``SCHEMATHESIS_HOOKS=fuzz.hooks``).

It reads the database the live server writes through Django, with the server's settings
(``DJANGO_SETTINGS_MODULE``, ``DATABASE_URL``).

* ``before_call``: half of the requests to ``/tables/{T}/{id}`` are pointed at a row that
  exists (any owner, live or deleted), with the row's current version, a stale well-formed
  version or a malformed one in ``If-Match``, in the body's version field or nowhere; three
  undeletes (``POST /tables/{T}/{id}``) in four lose the body the schema gives them (any body
  is 400 ``body_not_allowed``); half of the bodies naming ``taskId`` get a task that exists.
  Fuzzed bodies so reach real rows and preconditions instead of a 404 for a random id. Then,
  for a write (POST, PUT, PATCH, DELETE), it snapshots every table of the example app and
  ``offline_sync_clock``: all rows, soft-deleted ones included, with versions and stamps.
* ``before_load_schema``: request bodies as JSON only (the form types drf-spectacular lists
  are answered 415 unread).
* ``after_call``: logs each 4xx/5xx answer's method, status and ``errorCode``.
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
from typing import Any

import django
import schemathesis
from schemathesis.core import NOT_SET

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The body's version field, by the generation the run speaks (``FUZZ_GENERATION``).
VERSION_FIELD = "__version" if os.environ.get("FUZZ_GENERATION") == "v1" else "version"
DETAIL = re.compile(r"^/tables/(?P<table>[^/]+)/\{id\}/?$")

Rows = dict[Any, tuple[Any, ...]]
Snapshot = dict[str, Rows]

_rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")))
_pending: dict[int, Snapshot] = {}

# The server's own settings and DATABASE_URL: this process reads the database the server writes.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fuzz.settings")
django.setup()

from django.apps import apps  # noqa: E402  (after setup)
from django.db import connection  # noqa: E402


def watched_tables() -> list[str]:
    """The example app's tables and the stamping clock's."""
    models = apps.get_app_config("tasks").get_models()
    return sorted({model._meta.db_table for model in models} | {"offline_sync_clock"})


def snapshot() -> Snapshot:
    """Every row of every watched table, keyed by its first column (the primary key).

    Django's connections are per thread (schemathesis runs each phase in a thread of its own)
    and in autocommit: each SELECT sees everything committed before it.
    """
    result: Snapshot = {}
    with connection.cursor() as cursor:
        for table in watched_tables():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            result[table] = {row[0]: tuple(row) for row in cursor.fetchall()}
    return result


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


def _pick_row(table: str) -> tuple[str, int] | None:
    """A random row of the model named ``table`` (any case), deleted or not, and its version."""
    try:
        model = apps.get_model("tasks", table)
    except LookupError:
        return None
    row = model.all_objects.order_by("?").values_list("id", "version").first()
    return None if row is None else (str(row[0]), int(row[1]))


def _encode_version(version: int) -> str:
    return base64.b64encode(version.to_bytes(8, "big", signed=True)).decode("ascii")


def _aim_at_existing_rows(case: Any) -> None:
    match = DETAIL.match(case.operation.path)
    if match and _rng.random() < 0.5:
        row = _pick_row(match["table"])
        if row is not None:
            case.path_parameters = {**(case.path_parameters or {}), "id": row[0]}
            tag = _rng.choice([_encode_version(row[1]), _encode_version(row[1] - 1), "not base64!"])
            where = _rng.choice(["none", "If-Match", "body"])
            if where == "If-Match":
                case.headers = {**(case.headers or {}), "If-Match": f'"{tag}"'}
            elif where == "body" and isinstance(case.body, dict):
                case.body = {**case.body, VERSION_FIELD: tag}
    if match and case.method.upper() == "POST" and _rng.random() < 0.75:
        case.body = NOT_SET  # an undelete has no body: the schema's is DRF's default
    if isinstance(case.body, dict) and "taskId" in case.body and _rng.random() < 0.5:
        task = _pick_row("Task")
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


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Append ``METHOD STATUS errorCode`` to ``FUZZ_RESPONSES`` (the run's summary counts them)."""
    path = os.environ.get("FUZZ_RESPONSES")
    if not path or response.status_code < 400:
        return
    try:
        body = response.json()
        code = body.get("errorCode") or body.get("code") if isinstance(body, dict) else None
    except Exception:
        code = None
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"{case.method.upper()} {response.status_code} {code or '-'}\n")


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
