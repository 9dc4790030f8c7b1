"""Import a table from a running Azure Mobile Apps (v2) or Datasync (v3) server.

``import_sync_table`` (the management command) drives ``TableImporter``. The old server is
read through its own table protocol, the way a device pulls (``docs/protocol.rst`` §4.1):
``updatedAt ge <token>`` with ``$orderby=updatedAt,id``, ``$skip`` growing while the token
stays put and reset when it moves, tombstones included. That works against every backend:
it relies on no ``nextLink`` (the Node server's points at its own host name), and a
timestamp stored below the wire's millisecond precision (SQL Server's ``datetimeoffset(7)``)
is still ``ge`` its own truncation. Rows at the token are read again; writing them again is
a no-op, so a run can stop anywhere and resume from the token saved with the last page.

Each page is written in one transaction together with its progress (``SyncImport``):

* a row keeps ``id``, ``createdAt``, ``updatedAt``, ``deleted`` and, in ``imported_version``,
  the version the old server issued, which it shows and honours until its next write here;
* a row this server has written since it was imported (its ``imported_version`` is NULL)
  is never overwritten: it is reported, and this server's copy stays;
* a row whose version and columns are already here is not written again;
* the table's clock moves past every ``updatedAt`` kept, so later stamps are later, and a
  row whose ``updatedAt`` is not past the clock (a catch-up finding a change that the old
  server committed late, after this server handed out later stamps) gets a fresh stamp, so
  a device that already pulled here still receives it. In the first run, ties with the
  clock are kept (no device pulls here yet).

Columns the old server sends that the model does not have are counted and reported, never
dropped silently; a value the model's column cannot take stops the import with an error
naming the row and the column (the page is rolled back, the progress stays at the page before).
So does what no column here can keep (an id or a column name holding NUL or a lone
surrogate), an ``updatedAt`` that would leave the table's clock no later stamp
(``LAST_UPDATED_MS``), and a page that cannot be read (JSON nested too deeply).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, models, router, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.fields import Field
from rest_framework.validators import UniqueValidator

from . import stamping
from .client.errors import SyncClientError
from .client.transport import HttpTransport, decode_json, error_text
from .models import SyncImport, SyncModel, has_imported_version, validate_sync_id
from .serializers import serializer_class_for
from .wire import (
    MAX_MS,
    SYSTEM_WIRE_NAMES,
    UNSTORABLE_TEXT,
    check_imported_version,
    datetime_to_ms,
    format_timestamp,
    ms_to_datetime,
    parse_timestamp,
    truncate_ms,
)

__all__ = ["ImportFailed", "ImportReport", "TableImporter"]

#: Rows asked for per page (servers may send fewer; the paging does not depend on it).
PAGE_SIZE = 500
#: How far before the last run's newest ``updatedAt`` a catch-up run starts reading again,
#: for changes the old server committed late (its stamps are not commit-ordered).
DEFAULT_OVERLAP = dt.timedelta(minutes=5)
#: Ids listed in a report line; the rest are counted.
SHOWN_IDS = 10
#: The latest ``updatedAt`` imported, in milliseconds since the epoch: 9999-12-31T00:00:00.000Z.
#: The table's clock moves to the newest imported ``updatedAt`` and every later write here
#: takes a later millisecond, but a timestamp ends at ``wire.MAX_MS`` (9999-12-31T23:59:59.999Z):
#: a row stamped at the end of time would leave no stamp for any later write
#: (``stamping.ClockExhausted``). A day before the end keeps 86,399,999 stamps after the
#: newest row; no real server stamps rows that late, so such a row is refused as bogus.
LAST_UPDATED_MS: Final = MAX_MS - 86_399_999

_SYSTEM = {wire.lower() for wire in SYSTEM_WIRE_NAMES.values()}


@dataclass(frozen=True)
class _Dialect:
    """How a generation's server spells what the import asks (``docs/protocol.rst`` §3)."""

    include_deleted: str
    timestamp: str  # an OData DateTimeOffset literal, ``{}`` the wire timestamp
    count: dict[str, str]
    items: str  # the key of the rows in an object answer


_DIALECTS: Final[dict[str, _Dialect]] = {
    "v2": _Dialect("__includeDeleted", "datetimeoffset'{}'", {"$inlinecount": "allpages"}, "results"),
    "v3": _Dialect("__includedeleted", "cast({},Edm.DateTimeOffset)", {"$count": "true"}, "items"),
}


class ImportFailed(Exception):
    """The import cannot go on; the message says why (a row and column where one is to blame)."""


@dataclass
class ImportReport:
    """What one run did."""

    pages: int = 0
    #: distinct rows received; ``reads`` counts the rows at a page boundary read twice again
    received: int = 0
    reads: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    restamped: int = 0
    kept: list[str] = field(default_factory=list)
    #: wire name → rows that carried a non-null value in it
    unknown_columns: dict[str, int] = field(default_factory=dict)
    #: model columns no received row carried (new rows take their defaults)
    missing_columns: list[str] = field(default_factory=list)
    total: int | None = None
    token: str = ""
    resumed_from: str = ""

    def lines(self) -> list[str]:
        out = [
            f"{self.received} row(s) received in {self.pages} page(s): {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} already up to date, {len(self.kept)} kept as written here"
            + (f", {self.restamped} given a new updatedAt (changed after this server's newest stamp)"
               if self.restamped else "")
        ]
        if self.kept:
            shown = ", ".join(self.kept[:SHOWN_IDS]) + (" …" if len(self.kept) > SHOWN_IDS else "")
            out.append(
                f"{len(self.kept)} row(s) changed on this server since they were imported; this server's copy "
                f"was kept, the old server's change was not imported: {shown}"
            )
        if self.unknown_columns:
            listed = ", ".join(
                f"{name} ({count} row(s) with a value)" for name, count in sorted(self.unknown_columns.items())
            )
            out.append(f"Columns the old server sends that the model does not have (not imported): {listed}")
        if self.missing_columns:
            out.append(
                "Model columns the old server did not send (new rows take their defaults): "
                + ", ".join(self.missing_columns)
            )
        return out


def _text_problem(text: str) -> str:
    """Why ``text`` cannot be stored in any database as text, or ``""``: NUL (PostgreSQL cannot
    store it, SQLite would) or a lone surrogate (not text at all: it cannot be encoded)."""
    if "\x00" in text:
        return "it holds a NUL character (U+0000)"
    found = UNSTORABLE_TEXT.search(text)  # NUL is ruled out: a lone surrogate
    if found is not None:
        return f"it holds a lone surrogate (U+{ord(found.group()):04X}), which is not text"
    return ""


@dataclass
class _Row:
    pk: Any
    ms: int
    created: dt.datetime | None
    version: str
    deleted: bool
    values: dict[str, Any]  # model field name → value
    unknown: dict[str, bool]  # wire name the model lacks → whether the row has a value in it


class TableImporter:
    """Imports one table of a running server into ``model``; ``run()`` does one pass."""

    def __init__(
        self,
        model: type[SyncModel],
        transport: HttpTransport,
        table: str,
        *,
        page_size: int = PAGE_SIZE,
        since_last_import: bool = False,
        overlap: dt.timedelta = DEFAULT_OVERLAP,
        restart: bool = False,
        progress: Callable[[ImportReport], None] | None = None,
        using: str | None = None,
    ) -> None:
        if not has_imported_version(model):
            raise ImportFailed(
                f"{model._meta.label} has no imported_version column, so it cannot keep the old server's "
                "versions: remove the override that drops it, and migrate."
            )
        if since_last_import and restart:
            raise ImportFailed("--since-last-import continues the last import; --restart starts over. Choose one.")
        self.model = model
        self.transport = transport
        self.table = table
        self.page_size = page_size
        self.since_last_import = since_last_import
        self.overlap = overlap
        self.restart = restart
        self.progress = progress
        self.using = using or router.db_for_write(model)
        serializer = serializer_class_for(model)()
        self._fields: dict[str, Field[Any, Any, Any, Any]] = {
            wire.lower(): f for wire, f in serializer.fields.items() if not f.read_only
        }
        self._model_fields = {f.name: f for f in model._meta.concrete_fields}
        self.source = transport.url_for(transport.table_path(table))
        self.target = model._meta.label
        self._total: int | None = None

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> ImportReport:
        state = self._state()
        report = ImportReport()
        token: str | None = None
        if self.since_last_import and state.finished_at is None:
            raise ImportFailed(
                f"No finished import of {self.source} into {self.target} to catch up with: run it once "
                "without --since-last-import first."
            )
        if state.token and (self.since_last_import or not state.complete) and not self.restart:
            # An interrupted run resumes at its last page; a catch-up starts a little before
            # the last run's newest row.
            token = state.token
            if self.since_last_import:
                start = parse_timestamp(token)
                earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
                token = format_timestamp(start - min(self.overlap, start - earliest))
            report.resumed_from = token
        # Until an import has finished once, no device pulls here: ties with the clock are kept.
        first_run = state.finished_at is None
        state.runs += 1
        state.started_at = timezone.now()
        state.complete = False
        state.received = 0
        # The progress of this run: where an interruption resumes.
        state.token = token or ""
        state.save(using=self.using)
        seen_columns: set[str] = set()
        skip = 0
        previous: list[Any] | None = None
        boundary: set[Any] = set()
        while True:
            items = self._fetch(token, skip, count=report.pages == 0)
            if not items:
                break
            ids = [item.get("id") for item in items]
            if skip and ids == previous:
                raise ImportFailed(
                    f"{self.source} answered $skip={skip} with the rows of the page before: it ignores $skip, "
                    "which this import needs."
                )
            previous = ids
            token_ms = datetime_to_ms(parse_timestamp(token)) if token else None

            def again(row: _Row, token_ms: int | None = token_ms, boundary: set[Any] = boundary) -> bool:
                return row.ms == token_ms and row.pk in boundary

            rows = self._write_page(items, report, state, seen_columns, allow_ties=first_run, again=again)
            report.pages += 1
            newest_ms = rows[-1].ms
            newest = format_timestamp(ms_to_datetime(newest_ms))
            if token_ms is None or newest_ms > token_ms:
                token, skip = newest, 0
                boundary = {r.pk for r in rows if r.ms == newest_ms}
            else:
                skip += len(items)
                boundary |= {r.pk for r in rows}
            report.token = token or ""
            if self.progress:
                self.progress(report)
        if report.received:
            report.missing_columns = sorted(
                f.field_name for lowered, f in self._fields.items() if lowered not in seen_columns and f.field_name
            )
        state.complete = True
        state.finished_at = timezone.now()
        if token:
            state.token = token
        state.save(using=self.using)
        report.token = state.token
        return report

    def _state(self) -> SyncImport:
        key = hashlib.sha256(f"{self.target}\n{self.source}".encode()).hexdigest()
        state, _ = SyncImport.objects.using(self.using).get_or_create(
            key=key,
            defaults={"target": self.target, "source": self.source, "generation": self.transport.generation},
        )
        if state.generation != self.transport.generation:
            raise ImportFailed(
                f"The import of {self.source} into {self.target} so far used {state.generation}; "
                f"continue it with --generation {state.generation} (or start over with --restart)."
            )
        if self.restart:
            state.token, state.complete, state.written, state.unknown_columns = "", False, 0, []
            state.finished_at = None
        return state

    # -- reading the old server ------------------------------------------------------------

    def _fetch(self, token: str | None, skip: int, *, count: bool) -> list[dict[str, Any]]:
        dialect = _DIALECTS[self.transport.generation]
        params = {
            "$orderby": "updatedAt,id",
            "$top": str(self.page_size),
            "$skip": str(skip),
            dialect.include_deleted: "true",
        }
        if token:
            params["$filter"] = f"updatedAt ge {dialect.timestamp.format(token)}"
        if count:
            params.update(dialect.count)
        path = self.transport.table_path(self.table)
        page = f"the page at updatedAt ge {token}, $skip={skip}" if token else f"the page at $skip={skip}"
        try:
            response = self.transport.request("GET", path, params=params)
        except SyncClientError as exc:
            raise ImportFailed(f"Reading {self.source} failed: {exc}") from exc
        if response.status_code != 200:
            raise ImportFailed(
                f"{self.source} answered HTTP {response.status_code}: {error_text(response)}"
                + (" (is the table name right?)" if response.status_code == 404 else "")
            )
        try:
            body = decode_json(response)
        except SyncClientError as exc:
            raise ImportFailed(f"Reading {page}: {exc}") from exc
        if isinstance(body, dict):
            items = body.get(dialect.items)
            if count and isinstance(body.get("count"), int):
                self._total = body["count"]
        else:
            items = body
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
            raise ImportFailed(
                f"{self.source} did not answer {page} with a page of rows (is it a {self.transport.generation} "
                "table?)."
            )
        return items

    # -- writing one page ------------------------------------------------------------------

    def _parse_nested(self, item: Mapping[str, Any], seen: set[str]) -> _Row:
        """``_parse``, and a row holding a value nested too deeply to handle is an error naming it."""
        try:
            return self._parse(item, seen)
        except RecursionError:
            raw_id = item.get("id")
            shown = repr(raw_id) if isinstance(raw_id, str | int) else "(an id that is not text)"
            raise ImportFailed(f"Row {shown}: it holds a value nested too deeply to import") from None

    def _parse(self, item: Mapping[str, Any], seen: set[str]) -> _Row:
        pk_field = self.model._meta.pk
        assert pk_field is not None
        raw_id = item.get("id")

        def fail(column: str, problem: str) -> ImportFailed:
            return ImportFailed(f"Row {raw_id!r}, column {column!r}: {problem}")

        try:
            pk = pk_field.to_python(raw_id)
            if pk in (None, ""):
                raise DjangoValidationError("empty")
        except DjangoValidationError as exc:
            raise fail("id", f"{raw_id!r} is not an id of {self.target}") from exc
        problem = self._id_problem(pk)
        if problem:
            raise fail("id", f"{raw_id!r} is not an id of {self.target}: {problem}")
        values: dict[str, Any] = {}
        system: dict[str, Any] = {}
        unknown: dict[str, bool] = {}
        for key, value in item.items():
            problem = _text_problem(key)
            if problem:
                raise fail(key, f"not a column name this server can keep: {problem}")
            lowered = key.lower()
            seen.add(lowered)
            if lowered in _SYSTEM:
                system[lowered] = value
                continue
            target = self._fields.get(lowered)
            if target is None:
                unknown[key] = value is not None
                continue
            name = target.source or key

            def fail_here(problem: str, column: str = key) -> ImportFailed:
                return fail(column, problem)

            values[name] = self._convert(target, self._model_fields.get(name), value, fail_for=fail_here)
        updated = system.get("updatedat")
        try:
            ms = datetime_to_ms(truncate_ms(parse_timestamp(str(updated) if updated is not None else "")))
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise fail("updatedAt", f"{updated!r} is not a timestamp") from exc
        if ms > LAST_UPDATED_MS:
            raise fail(
                "updatedAt",
                f"{updated!r} is later than {format_timestamp(ms_to_datetime(LAST_UPDATED_MS))}, the latest "
                "updatedAt imported: this table's clock would continue after it, and no timestamp is later "
                f"than {format_timestamp(ms_to_datetime(MAX_MS))}, so later writes here could not be stamped. "
                "Correct the row on the old server.",
            )
        created: dt.datetime | None = None
        if system.get("createdat") is not None:
            try:
                created = truncate_ms(parse_timestamp(system["createdat"]))
            except (TypeError, ValueError, AttributeError, OverflowError) as exc:
                raise fail("createdAt", f"{system['createdat']!r} is not a timestamp") from exc
        try:
            version = check_imported_version(system.get("version"))
        except ValueError as exc:
            raise fail("version", f"{system.get('version')!r}: {exc}") from exc
        deleted = system.get("deleted", False)
        if deleted is None:
            deleted = False
        if not isinstance(deleted, bool):
            raise fail("deleted", f"{deleted!r} is not true or false")
        return _Row(pk, ms, created, version, deleted, values, unknown)

    def _id_problem(self, pk: Any) -> str:
        """What keeps ``pk`` (converted) from being stored as an id here, or ``""``.

        The rules of the key column (its length, an integer's range), and, for text, those of
        every text column (``_convert``): no NUL (PostgreSQL cannot store it, SQLite would) and no
        lone surrogate (not text: no database nor JSON answer can carry it). Not the rest of the
        id rules for clients (``wire.check_id``): the old server's ids are what its devices
        already hold.
        """
        problem = _text_problem(pk) if isinstance(pk, str) else ""
        if problem:
            return problem
        pk_field = self.model._meta.pk
        assert pk_field is not None
        try:
            for validator in pk_field.validators:
                if validator is not validate_sync_id:
                    validator(pk)
        except DjangoValidationError as exc:
            return " ".join(str(m) for m in exc.messages)
        return ""

    @staticmethod
    def _convert(
        target: Field[Any, Any, Any, Any],
        model_field: models.Field[Any, Any] | None,
        value: Any,
        *,
        fail_for: Callable[[str], ImportFailed],
    ) -> Any:
        if value is None:
            if model_field is None or model_field.null:
                return None
            if model_field.has_default():
                default = model_field.get_default()
                return default
            raise fail_for("null, but the column is NOT NULL and has no default")
        try:
            converted = target.to_internal_value(value)
            # The column's validators (the model field's among them), but uniqueness: the
            # database checks that on write, for the whole page at once.
            for validator in target.validators:
                if isinstance(validator, UniqueValidator):
                    continue
                call: Any = validator
                if getattr(validator, "requires_context", False):
                    call(converted, target)
                else:
                    call(converted)
        except (ValidationError, DjangoValidationError) as exc:
            detail = exc.detail if isinstance(exc, ValidationError) else exc.messages
            messages = detail if isinstance(detail, list) else [detail]
            text = " ".join(str(m) for m in messages)
            raise fail_for(f"{value!r} does not fit: {text}") from exc
        if isinstance(converted, dt.datetime):
            converted = truncate_ms(converted)
        return converted

    def _write_page(
        self,
        items: list[dict[str, Any]],
        report: ImportReport,
        state: SyncImport,
        seen: set[str],
        *,
        allow_ties: bool,
        again: Callable[[_Row], bool],
    ) -> list[_Row]:
        """Write one page in one transaction with the run's progress; its rows, oldest first.

        ``again`` tells the rows this run has just read on the page before (at the token):
        they were handled then, and are neither written nor counted twice.
        """
        report.reads += len(items)
        if report.total is None:
            report.total = self._total
        rows = sorted((self._parse_nested(item, seen) for item in items), key=lambda r: (r.ms, str(r.pk)))
        fresh = [row for row in rows if not again(row)]
        report.received += len(fresh)
        for row in fresh:
            for key, has_value in row.unknown.items():
                report.unknown_columns[key] = report.unknown_columns.get(key, 0) + has_value
        newest = max(rows, key=lambda r: r.ms)
        newest_text = format_timestamp(ms_to_datetime(newest.ms))
        base: QuerySet[Any] = QuerySet(self.model, using=self.using)
        try:
            with transaction.atomic(using=self.using):
                clock = self._clock()
                existing = {obj.pk: obj for obj in base.filter(pk__in=[r.pk for r in fresh])}
                inserts: list[SyncModel] = []
                updates: list[SyncModel] = []
                restamp: list[SyncModel] = []
                kept_ms = clock
                for row in fresh:
                    obj = existing.get(row.pk)
                    if obj is not None and obj.imported_version is None:
                        report.kept.append(str(row.pk))
                        continue
                    if obj is not None and self._same(obj, row):
                        report.unchanged += 1
                        continue
                    if obj is None:
                        obj = self.model()
                        obj.pk = row.pk
                        obj.created_at = row.created or ms_to_datetime(row.ms)
                        inserts.append(obj)
                    else:
                        if row.created is not None:
                            obj.created_at = row.created
                        updates.append(obj)
                    for name, value in row.values.items():
                        setattr(obj, name, value)
                    obj.deleted = row.deleted
                    obj.imported_version = row.version
                    if row.ms > clock or (allow_ties and row.ms == clock):
                        obj.updated_at = ms_to_datetime(row.ms)
                        obj.version = row.ms
                        kept_ms = max(kept_ms, row.ms)
                    else:
                        restamp.append(obj)
                if stamping.uses_clock():
                    stamping.advance_to(self.model, kept_ms, self.using)
                for obj, stamp in zip(restamp, stamping.reserve(self.model, len(restamp), self.using), strict=True):
                    obj.updated_at = ms_to_datetime(stamp.ms)
                    obj.version = stamp.version
                report.restamped += len(restamp)
                if inserts:
                    base.bulk_create(inserts)
                if updates:
                    fields = ["created_at", "updated_at", "version", "deleted", "imported_version",
                              *sorted({name for row in fresh for name in row.values})]
                    base.bulk_update(updates, fields)
                report.inserted += len(inserts)
                report.updated += len(updates)
                if not state.token or parse_timestamp(newest_text) > parse_timestamp(state.token):
                    state.token = newest_text
                state.received = report.reads
                state.written += len(inserts) + len(updates)
                state.unknown_columns = sorted(set(state.unknown_columns) | set(report.unknown_columns))
                state.save(using=self.using)
        except IntegrityError as exc:
            raise ImportFailed(f"A page of rows from {self.source} breaks a database constraint: {exc}") from exc
        except DataError as exc:
            # What the checks above let through and the database still refuses (a backend's own
            # limit): an error naming the page, which was rolled back, not a traceback.
            raise ImportFailed(
                f"A page of rows from {self.source} (updatedAt up to {newest_text}) holds a value the database "
                f"cannot store: {exc}"
            ) from exc
        return rows

    def _clock(self) -> int:
        """The newest stamp this table has handed out, with the table's write lock held."""
        if stamping.uses_clock():
            return stamping.advance_to(self.model, 0, self.using)
        newest = QuerySet(self.model, using=self.using).aggregate(newest=Max("updated_at"))["newest"]
        return datetime_to_ms(newest) if newest is not None else 0

    def _same(self, obj: SyncModel, row: _Row) -> bool:
        if obj.imported_version != row.version or obj.deleted != row.deleted:
            return False
        for name, value in row.values.items():
            field_ = self._model_fields.get(name)
            current = getattr(obj, field_.attname) if field_ is not None else getattr(obj, name, None)
            if isinstance(value, models.Model):
                value = value.pk
            if current != value:
                return False
        return True
