"""``POST /tables/$batch``: several writes in one transaction, all or nothing (a protocol extension).

``docs/batch.rst`` is the reference. The design in one paragraph: a batch does not have
write logic of its own. Each operation is turned into the request its single-request twin
would be (``POST /tables/Task``, ``PUT``/``PATCH``/``DELETE``/``POST /tables/Task/{id}`` with
``If-Match``) and dispatched through that table's ``SyncViewSet``, sharing the caller's user,
headers and generation, so the checks, data view, permissions, hooks, stamping and signals
are the table's own, whatever a project overrides. What the batch adds is around them:

* one ``transaction.atomic`` on the tables' write database holds every operation; the first
  operation that answers 4xx rolls all of them back, and ``sync_committed`` (sent with
  ``transaction.on_commit``) fires only once the whole batch has committed;
* a ``SyncBatch`` row keyed by (user, ``batchId``), inserted first in that transaction, makes
  a retry replay the stored results instead of writing again; a concurrent duplicate waits
  on the row's unique key and then replays the first one's results;
* limits on the body size and on the number of operations, and ``GET /tables/$batch`` telling
  a client that batches are supported and what the limits are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Final

import orjson
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest, HttpResponseBase, QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .exceptions import BadRequest, BodyNotObject, describe, exception_handler
from .generations import VERSION_PARAM, Generation, ZumoVersioning, policy_for, settle_version
from .ledger import forget_pending
from .models import SyncBatch, SyncModel
from .renderers import SyncContentNegotiation, SyncJSONRenderer
from .serializers import ParsedBody, read_json
from .settings import get_settings
from .wire import UNSTORABLE_TEXT, printable

__all__ = ["BATCH_PATH", "OPERATION_KINDS", "BatchView"]

#: The batch endpoint's name under the tables prefix (``/tables/$batch``).
BATCH_PATH: Final = "$batch"

#: Operation kinds a batch accepts.
OPERATION_KINDS: Final = ("insert", "update", "delete", "undelete")

#: Request headers a sub-request does not inherit: they describe the batch's own body or
#: are set per operation.
_NOT_INHERITED: Final = frozenset(
    {"CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "QUERY_STRING"}
)

_MAX_BATCH_ID: Final = 255

#: The statuses whose body is the row the operation conflicted with.
_CONFLICTS: Final = frozenset({status.HTTP_409_CONFLICT, status.HTTP_412_PRECONDITION_FAILED})


class InvalidBatch(BadRequest):
    """The batch envelope itself is wrong (not one of its operations)."""

    default_detail = _("The batch is invalid.")
    default_code = "invalid_batch"


class TooManyOperations(BadRequest):
    default_detail = _("The batch has too many operations.")
    default_code = "too_many_operations"


class BatchIdReused(BadRequest):
    """A ``batchId`` the caller already committed, sent again with other operations."""

    default_detail = _("This batchId was already used for a different batch.")
    default_code = "batch_id_reused"


class BatchSpansDatabases(BadRequest):
    default_detail = _("The batch writes to tables stored in different databases; one transaction cannot hold them.")
    default_code = "batch_spans_databases"


@dataclass(frozen=True)
class _Table:
    """A registered table: its name as registered, its viewset and the router's basename."""

    name: str
    viewset: Any  # a SyncViewSet subclass
    basename: str

    @property
    def model(self) -> type[SyncModel]:
        model: type[SyncModel] = self.viewset._table().model
        return model


@dataclass(frozen=True)
class _Operation:
    """One validated operation and the request its single-request twin would send."""

    index: int
    kind: str
    table: _Table
    id: str | None
    item: dict[str, Any] | None
    if_match: str | None

    def describe(self) -> str:
        # The id may come from the item, where the single request's own checks refuse what
        # cannot be written in the answer; escape it here, before they have run.
        return f"{self.kind} {self.table.name}" + (f"/{printable(self.id)}" if self.id is not None else "")


#: The rows a batch's operations have written so far: (model, id) → the operation that wrote it.
_Written = dict[tuple[type[SyncModel], str], _Operation]


class _OperationFailed(Exception):
    """Raised inside the batch's transaction to roll it back; carries the answer to give."""

    def __init__(self, response: Response) -> None:
        self.response = response


class _Replay(Exception):
    """A concurrent duplicate committed first: leave the transaction, then replay it."""


class _SubRequest(HttpRequest):
    """An operation's request: the batch's headers and user, its own method, path and body."""

    def __init__(self, outer: HttpRequest, method: str, path_info: str, item: dict[str, Any] | None) -> None:
        super().__init__()
        self.method = method
        self.path_info = path_info
        self.path = outer.path[: len(outer.path) - len(outer.path_info)] + path_info
        self.META = {k: v for k, v in outer.META.items() if k not in _NOT_INHERITED}
        self.META["REQUEST_METHOD"] = method
        self.META["PATH_INFO"] = path_info
        # The query string is the batch's own, but for the version a client may send there.
        query = QueryDict(mutable=True)
        for name, values in outer.GET.lists():
            if name.lower() == VERSION_PARAM:
                query.setlist(name, values)
        self.META["QUERY_STRING"] = query.urlencode()
        self.GET = QueryDict(self.META["QUERY_STRING"])
        self._body = b""
        if item is not None:
            # The viewset reads the item the batch parsed (``ParsedBody``), not this body: no
            # encoding gives every parsed value back (``1e999`` was read as infinity). The body
            # is there for the single request's size limit and for code that reads it.
            self._body = _encode(item)
            setattr(self, ParsedBody.ATTRIBUTE, ParsedBody(item))
            self.META["CONTENT_TYPE"] = "application/json"
            self.META["CONTENT_LENGTH"] = str(len(self._body))
        self._scheme = outer.scheme
        for name in ("COOKIES", "session"):  # what middleware attached, for project hooks
            if hasattr(outer, name):
                setattr(self, name, getattr(outer, name))

    def _get_scheme(self) -> str:
        return self._scheme or "http"


class BatchView(APIView):
    """``POST /tables/$batch`` runs a batch; ``GET`` describes the endpoint and its limits.

    ``SyncRouter`` routes it with ``tables`` (lower-cased name → table); each operation
    checks its own table's permissions, so the view itself allows any caller.
    """

    tables: ClassVar[Mapping[str, _Table]] = {}
    permission_classes = [AllowAny]
    renderer_classes = [SyncJSONRenderer]
    content_negotiation_class = SyncContentNegotiation
    versioning_class = None  # see determine_version
    schema = None  # an extension: documented in docs/batch.rst, not in the tables' OpenAPI schema

    @property
    def generation(self) -> Generation:
        return policy_for(getattr(self.request, "version", None))

    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> tuple[str, ZumoVersioning]:
        scheme = ZumoVersioning()
        return scheme.determine_version(request, *args, **kwargs), scheme

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return exception_handler

    def handle_exception(self, exc: Exception) -> Response:
        settle_version(self)  # a 406 comes before DRF asks for the version
        return super().handle_exception(exc)

    # -- discovery --------------------------------------------------------------------------
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """What a client needs to decide to batch: the kinds and the limits (``docs/batch.rst``)."""
        settings = get_settings()
        return Response(
            {
                "batch": True,
                "operations": list(OPERATION_KINDS),
                "maxOperations": settings.BATCH_MAX_OPERATIONS,
                "maxBodyBytes": settings.BATCH_MAX_BODY_BYTES,
                "tables": sorted(table.name for table in self.tables.values()),
            }
        )

    # -- a batch ----------------------------------------------------------------------------
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        settings = get_settings()
        data = read_json(request, limit=settings.BATCH_MAX_BODY_BYTES)
        if not isinstance(data, dict):
            raise BodyNotObject("The batch must be a JSON object with batchId and operations.")
        batch_id, raw_operations = self._envelope(data, settings.BATCH_MAX_OPERATIONS)
        operations: list[_Operation] = []
        for index, raw in enumerate(raw_operations):
            try:
                operations.append(self._operation(index, raw))
            except APIException as exc:
                return self._failure(batch_id, index, self._error_response(exc))
        databases = {router.db_for_write(op.table.model) for op in operations}
        if len(databases) > 1:
            raise BatchSpansDatabases()
        (using,) = databases
        user = _user_key(request)
        digest = _digest(raw_operations)

        stored = _stored(using, user, batch_id)
        if stored is not None:
            return _replay(stored, digest)
        try:
            with transaction.atomic(using=using):
                record = self._claim(using, user, batch_id, digest, settings.BATCH_RECORD_TTL)
                written: _Written = {}
                results = []
                for op in operations:
                    result = self._run(request, op, batch_id, written)
                    results.append(result)
                    row_id = _row_id(result.get("item")) or op.id
                    if row_id is not None:
                        written[(op.table.model, row_id)] = op
                body = {"batchId": batch_id, "results": results}
                # As the answer is written (decimals exact, integers past 64 bits), so that a
                # table with a DecimalField can be batched and a replay gives the same numbers.
                record.response = SyncJSONRenderer().render(body).decode()
                record.save(using=using, update_fields=["response"])
        except _OperationFailed as failed:
            return failed.response
        except _Replay:
            stored = _stored(using, user, batch_id)
            if stored is None:  # pragma: no cover - the duplicate's row was purged in between
                raise InvalidBatch("A batch with this batchId is being applied; retry it.") from None
            return _replay(stored, digest)
        return Response(body)

    def _envelope(self, data: dict[str, Any], max_operations: int) -> tuple[str, list[Any]]:
        unknown = sorted(set(data) - {"batchId", "operations"})
        if unknown:
            raise InvalidBatch(f"Unknown batch member(s) {unknown}; a batch has batchId and operations.")
        batch_id = data.get("batchId")
        if not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > _MAX_BATCH_ID:
            raise InvalidBatch(f"batchId must be a non-empty string of at most {_MAX_BATCH_ID} characters.")
        _check_text("batchId", batch_id)
        operations = data.get("operations")
        if not isinstance(operations, list) or not operations:
            raise InvalidBatch("operations must be a non-empty array.")
        if len(operations) > max_operations:
            raise TooManyOperations(
                f"The batch has {len(operations)} operations; the limit is {max_operations} (GET /tables/$batch)."
            )
        return batch_id, operations

    def _operation(self, index: int, raw: Any) -> _Operation:
        """Validate one operation and build its twin request's parts; 400/404 for this index."""
        if not isinstance(raw, dict):
            raise InvalidBatch("An operation must be a JSON object.")
        unknown = sorted(set(raw) - {"op", "table", "id", "item", "version"})
        if unknown:
            raise InvalidBatch(f"Unknown operation member(s) {unknown}.")
        for member in ("op", "table", "id", "version"):
            if isinstance(raw.get(member), str):
                _check_text(member, raw[member])
        kind = raw.get("op")
        if kind not in OPERATION_KINDS:
            raise InvalidBatch(f"op must be one of {list(OPERATION_KINDS)}, not {kind!r}.")
        name = raw.get("table")
        if not isinstance(name, str) or not name:
            raise InvalidBatch("table must be a table name.")
        table = self.tables.get(name.lower())
        if table is None:
            raise NotFound(f"There is no table {name!r}.")
        item = raw.get("item")
        if kind in ("insert", "update"):
            if not isinstance(item, dict):
                raise InvalidBatch(f"An {kind} needs item, a JSON object.")
        elif item is not None:
            raise InvalidBatch(f"A {kind} takes no item.")
        item_id = raw.get("id")
        if item_id is None and isinstance(item, dict) and isinstance(item.get("id"), (str, int)):
            item_id = item["id"]
        if item_id is not None:
            if not isinstance(item_id, (str, int)) or isinstance(item_id, bool) or item_id == "":
                raise InvalidBatch("id must be a non-empty string (or an integer key).")
            item_id = str(item_id)
            if isinstance(item, dict) and "id" in item and str(item["id"]) != item_id:
                raise InvalidBatch(f"The item's id ({item['id']!r}) does not match the operation's id ({item_id!r}).")
            if "/" in item_id:
                raise NotFound("No item has an id containing '/'.")
        elif kind != "insert":
            raise InvalidBatch(f"An {kind} needs the id of the item.")
        version = raw.get("version")
        if version is not None and (not isinstance(version, str) or not version):
            raise InvalidBatch("version must be a non-empty string (the row's version, or its ETag).")
        if version is not None and kind == "insert":
            raise InvalidBatch("An insert takes no version.")
        if version is not None and not (version.startswith(('"', "W/")) or version == "*"):
            version = f'"{version}"'
        if isinstance(item, dict) and item_id is not None and kind == "insert" and "id" not in item:
            item = {"id": item_id, **item}
        return _Operation(index, kind, table, item_id, item, version)

    def _claim(self, using: str, user: str, batch_id: str, digest: str, ttl: int) -> SyncBatch:
        """Insert the batch's record first: a concurrent duplicate blocks here until we finish."""
        now = timezone.now()
        # The caller's expired records go in the same transaction (their retries are long over).
        SyncBatch.objects.using(using).filter(user=user, created_at__lt=now - dt.timedelta(seconds=ttl)).delete()
        try:
            with transaction.atomic(using=using):
                return SyncBatch.objects.using(using).create(
                    user=user, batch_id=batch_id, digest=digest, created_at=now, response=""
                )
        except IntegrityError as exc:
            raise _Replay() from exc

    def _run(self, request: Request, op: _Operation, batch_id: str, written: _Written) -> dict[str, Any]:
        """Dispatch ``op`` through its table's viewset; its result, or roll the batch back.

        ``written``: the rows the earlier operations wrote, to tell a conflict with one of
        them (whose row the rollback undoes) from a conflict with a committed row.
        """
        response = self._dispatch(request, op)
        try:
            if response.status_code >= 400:
                raise _OperationFailed(self._failure(batch_id, op.index, response, op, written))
            data = getattr(response, "data", None)
            result: dict[str, Any] = {"status": response.status_code, "item": data if isinstance(data, dict) else None}
            etag = response.get("ETag")
            if etag:
                result["etag"] = etag
            return result
        finally:
            # The viewset's clean-up (it drops its request/response references). Not
            # response.close(): that also sends request_finished, whose handler closes a
            # connection found inside a transaction, ours.
            for closer in getattr(response, "_resource_closers", ()):
                closer()

    def _dispatch(self, request: Request, op: _Operation) -> HttpResponseBase:
        base = request._request.path_info[: -len(BATCH_PATH)]
        detail = op.kind != "insert"
        path = f"{base}{op.table.name}" + (f"/{op.id}" if detail else "")
        method = {
            "insert": "POST",
            "update": self.generation.update_method,
            "delete": "DELETE",
            "undelete": "POST",
        }[op.kind]
        sub = _SubRequest(request._request, method, path, op.item)
        if op.if_match is not None:
            sub.META["HTTP_IF_MATCH"] = op.if_match
        if request.user is not None and request.user.is_authenticated:
            # Authenticated once, for the whole batch (and CSRF-checked if by session).
            sub._force_auth_user = request.user  # type: ignore[attr-defined]  # DRF's hook (force_authenticate)
            sub._force_auth_token = request.auth  # type: ignore[attr-defined]
        action = {
            "POST": "undelete" if detail else "create",
            "PUT": "update",
            "PATCH": "partial_update",
            "DELETE": "destroy",
        }[method]
        view = _view(op.table, method.lower(), action, detail)
        kwargs = {"pk": op.id} if detail else {}
        response: HttpResponseBase = view(sub, **kwargs)
        return response

    def _error_response(self, exc: APIException) -> Response:
        message, extra = describe(exc)
        return Response(self.generation.error_body(exc.status_code, message, extra), status=exc.status_code)

    def _failure(
        self,
        batch_id: str,
        index: int,
        response: HttpResponseBase,
        op: _Operation | None = None,
        written: _Written | None = None,
    ) -> Response:
        """The batch's answer when operation ``index`` failed: that operation's status and body.

        A conflict (409/412) with a row an earlier operation of the batch wrote says so: its
        body is that operation's row, which the rollback undoes, not a row on the server, and
        its ETag, a version never committed, is left out.
        """
        data = getattr(response, "data", None)
        what = f"Operation {index}" + (f" ({op.describe()})" if op is not None else "")
        reason = _message(data) or f"HTTP {response.status_code}"
        earlier = None
        if op is not None and written and response.status_code in _CONFLICTS and isinstance(data, dict):
            row_id = _row_id(data)
            earlier = written.get((op.table.model, row_id)) if row_id is not None else None
        if earlier is not None:
            assert op is not None and row_id is not None
            forget_pending(op.table.model, row_id)  # no conflict with the server to keep
            reason = (
                f"it conflicts with operation {earlier.index} of this batch ({earlier.describe()}), "
                "and the body is that operation's row, which was rolled back with the batch: "
                "it is not on the server"
            )
        body: dict[str, Any] = {
            "errorCode": "batch_operation_failed",
            "message": f"{what} failed, so no operation of the batch was applied: {reason}",
            "batchId": batch_id,
            "index": index,
            "status": response.status_code,
            "error": data,
        }
        headers = {}
        etag = response.get("ETag") if isinstance(response, HttpResponseBase) and earlier is None else None
        if etag:
            body["etag"] = etag
        for name in ("WWW-Authenticate", "Retry-After"):
            if response.has_header(name):
                headers[name] = response[name]
        return Response(body, status=response.status_code, headers=headers or None)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-cache"
        return response


def _row_id(item: Any) -> str | None:
    """The ``id`` of a row as an answer holds it (an integer key as its text), or None."""
    if isinstance(item, dict):
        row_id = item.get("id")
        if isinstance(row_id, (str, int)) and not isinstance(row_id, bool):
            return str(row_id)
    return None


def _check_text(member: str, value: str) -> None:
    """400 ``invalid_batch`` for an envelope string no database (or answer) can hold."""
    found = UNSTORABLE_TEXT.search(value)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else f"a lone surrogate (U+{ord(found.group()):04X})"
        raise InvalidBatch(f"{member} must be text without NUL characters or lone surrogates; it holds {what}.")


def _encode(value: Any) -> bytes:
    """``value`` as JSON text of its size, whatever it holds (see ``_SubRequest``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


def _digest(operations: list[Any]) -> str:
    """What a retry must match: a hash of the operations, keys sorted.

    orjson's encoding, as batches committed by earlier releases were hashed; but orjson writes
    infinity as null (a different batch) and refuses lone surrogates and integers over 64 bits,
    so operations holding those are hashed from the standard library's encoding, which keeps
    each of them apart.
    """
    if not _has_non_finite(operations):
        try:
            return hashlib.sha256(orjson.dumps(operations, option=orjson.OPT_SORT_KEYS)).hexdigest()
        except orjson.JSONEncodeError:
            pass
    text = json.dumps(operations, sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(b"json:" + text.encode()).hexdigest()


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    return False


def _message(data: Any) -> str | None:
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "title"):
            if isinstance(data.get(key), str):
                return str(data[key])
        if "id" in data:
            return "the item on the server is not the version the operation expected (the body is the server's item)"
    return None


_views: dict[tuple[type, str, str, bool], Callable[..., HttpResponseBase]] = {}


def _view(table: _Table, method: str, action: str, detail: bool) -> Callable[..., HttpResponseBase]:
    """The viewset's view for one method and action, made once (as the router makes it)."""
    key = (table.viewset, method, action, detail)
    view = _views.get(key)
    if view is None:
        view = table.viewset.as_view({method: action}, basename=table.basename, detail=detail)
        _views[key] = view
    return view


def _user_key(request: Request) -> str:
    user = request.user
    return str(user.pk) if user is not None and user.is_authenticated else ""


def _stored(using: str, user: str, batch_id: str) -> SyncBatch | None:
    return SyncBatch.objects.using(using).filter(user=user, batch_id=batch_id).first()


def _replay(stored: SyncBatch, digest: str) -> Response:
    if stored.digest != digest:
        raise BatchIdReused(
            "This batchId was already committed with different operations; use a new batchId for a new batch."
        )
    # Decimals back as Decimal: a replay writes the digits the first answer wrote.
    response = Response(json.loads(stored.response, parse_float=Decimal), status=status.HTTP_200_OK)
    response["X-Batch-Replayed"] = "true"
    return response
