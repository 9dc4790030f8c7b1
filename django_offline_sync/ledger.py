"""The conflict and rejection ledger: every write the server refused after understanding it.

``record_refusal`` runs from ``SyncViewSet.handle_exception``, the one place every refused
request of a table passes through, after the write's transaction has rolled back. It keeps a
``SyncRejection`` when the request was a write (insert, update, replace, delete, undelete) whose
body was understood (it parsed as a JSON object; a delete or undelete has none) and the answer
is 409 or 412 (a conflict) or 400, 403, 404 or 410 (a rejection). Malformed bodies, wrong
media types, unknown versions, 401 (also when DRF answers it as 403, for want of a challenge),
405, 413 and 429 are not recorded: there is nothing to resolve in them, and recording them
would let anyone fill the table.

The entry is written outside the refused transaction so that it survives the rollback: at
once in autocommit mode (the write's ``atomic`` block has already unwound), or, when the
write ran inside an outer transaction that the refusal rolls back (``ATOMIC_REQUESTS``, an
operation of a ``$batch``), when the request has finished (``request_finished``), after that
transaction ended. A failure to record is logged, never turned into a 500.

The success path does not pass through here at all; ``bench/ledger.py`` measures it.

``apply_client_item`` resolves a conflict in the client's favour with a normal stamped write
(the table's clock, its serializer, the ``sync_committed`` signal); ``keep_server_row`` marks
it resolved. The admin (``admin.SyncRejectionAdmin``) calls both.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from django.apps import apps
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connections, router, transaction
from django.http.response import HttpResponseBase
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.exceptions import APIException, AuthenticationFailed, NotAuthenticated, UnsupportedMediaType

from . import stamping
from .exceptions import (
    BodyNotObject,
    EmptyBody,
    EntityConflict,
    MalformedBody,
    MixedGeneration,
    PayloadTooLarge,
    UnsupportedVersion,
    describe,
)
from .generations import policy_for
from .models import SyncModel, SyncRejection
from .settings import get_settings
from .signals import sync_committed
from .wire import UNSTORABLE_TEXT, encode_version

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from .viewsets import SyncViewSet

__all__ = [
    "RECORDED_STATUSES",
    "WRITE_OPERATIONS",
    "ResolveError",
    "apply_client_item",
    "keep_server_row",
    "purge_rejections",
    "record_refusal",
]

logger = logging.getLogger(__name__)

#: DRF action → the operation the ledger names.
WRITE_OPERATIONS: Final[Mapping[str, str]] = {
    "create": "insert",
    "update": "replace",
    "partial_update": "update",
    "destroy": "delete",
    "undelete": "undelete",
}
#: Answers recorded for a write: conflicts, and rejections of an understood body.
RECORDED_STATUSES: Final = frozenset({400, 403, 404, 409, 410, 412})
#: Refusals of a body (or request) the server did not understand: not recorded.
_NOT_UNDERSTOOD: Final = (
    MalformedBody,
    BodyNotObject,
    EmptyBody,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnsupportedVersion,
    MixedGeneration,
    # A caller not signed in, or whose credentials failed: DRF answers 403 instead of 401
    # when no authentication class sends a challenge (SessionAuthentication alone), and such
    # a refusal is the 401 all the same. Recorded, it let anyone fill the ledger.
    NotAuthenticated,
    AuthenticationFailed,
)


def _strip_etag(value: str | None) -> str:
    if not value:
        return ""
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def record_refusal(view: SyncViewSet, exc: Exception, response: HttpResponseBase) -> None:
    """Keep a ledger entry for ``response`` if it refuses an understood write (module docstring)."""
    operation = WRITE_OPERATIONS.get(getattr(view, "action", None) or "")
    if operation is None or response.status_code not in RECORDED_STATUSES or isinstance(exc, _NOT_UNDERSTOOD):
        return
    if not get_settings().RECORD_REJECTIONS:
        return
    try:
        entry = _entry(view, exc, response, operation)
    except Exception:  # never let bookkeeping turn a 4xx into a 500
        logger.exception("Could not build the ledger entry of a refused %s", operation)
        return
    if entry is None:
        return
    using = router.db_for_write(SyncRejection)
    if connections[using].in_atomic_block:
        # Inside a transaction the refusal will roll back (ATOMIC_REQUESTS, a $batch): keep
        # the entry until the request has finished, after that transaction ended.
        _pending().append((entry, using))
    else:
        _save(entry, using)


_local = threading.local()


def _pending() -> list[tuple[SyncRejection, str]]:
    entries: list[tuple[SyncRejection, str]] | None = getattr(_local, "entries", None)
    if entries is None:
        entries = _local.entries = []
    return entries


def flush_pending(**kwargs: Any) -> None:
    """Write the entries kept during the request (``request_finished``; ``apps.py`` connects it).

    By then the request's transactions have ended; an atomic block still open belongs to
    whoever runs the request in-process (a test), and the entry joins it.
    """
    entries = getattr(_local, "entries", None)
    if not entries:
        return
    _local.entries = []
    for entry, using in entries:
        _save(entry, using)


def forget_pending(model: type[SyncModel], row_id: str) -> None:
    """Drop the entries kept during this request for ``row_id`` of ``model``.

    ``$batch`` calls it when an operation conflicts with a row an earlier operation of the
    same batch wrote: that row never reached the server (the batch rolled back), so the
    entry would be a conflict with nothing, offering to apply the client's item over it.
    The batch's answer names both operations.
    """
    entries = getattr(_local, "entries", None)
    if entries:
        label = model._meta.label_lower
        _local.entries = [(e, u) for e, u in entries if not (e.model == label and e.row_id == row_id)]


def discard_pending(**kwargs: Any) -> None:
    """Forget entries left by a request that never finished (``request_started``)."""
    _local.entries = []


def _storable(value: Any) -> Any:
    """``value`` with every string and number made storable in a JSON column.

    A body may hold what no database column takes: a lone surrogate or a NUL byte, kept
    escaped (``\\udc00``, ``\\x00``), and a number too large for a float (``1e999``, read as
    infinity), which JSON cannot write (SQLite's JSON check and PostgreSQL's ``jsonb`` refuse
    ``Infinity``). That is kept as the string ``"inf"`` (``"-inf"``): the text a serializer
    field makes of it, so a text column takes it and a number column refuses it as it did.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        if UNSTORABLE_TEXT.search(value):
            return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
        return value
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _save(entry: SyncRejection, using: str) -> None:
    connection = connections[using]
    was_closed = connection.connection is None  # request_finished may have closed it already
    try:
        with transaction.atomic(using=using):  # a savepoint when inside a caller's transaction
            entry.save(using=using)
    except Exception:  # never let bookkeeping turn an answered request into a 500
        logger.exception("Could not record a refused write in the ledger")
    finally:
        if was_closed and not connection.in_atomic_block:
            connection.close()


def _entry(view: SyncViewSet, exc: Exception, response: HttpResponseBase, operation: str) -> SyncRejection | None:
    from .serializers import read_json
    from .writer import lookup_pk

    request = view.request
    model = view._table().model
    generation = view.generation
    client_item: dict[str, Any] | None = None
    if operation in ("insert", "update", "replace"):
        try:
            data = read_json(request, limit=get_settings().MAX_BODY_BYTES)
        except APIException:
            return None  # not understood
        if not isinstance(data, dict):
            return None
        client_item = data
    row_id = view.kwargs.get("pk") or (client_item or {}).get("id") or ""
    base_version = _strip_etag(request.headers.get("If-Match"))
    if not base_version and client_item is not None:
        version_name = generation.system_names.get("version", "version").lower()
        base_version = str(next((v for k, v in client_item.items() if k.lower() == version_name and v), ""))
    server_item: dict[str, Any] | None = None
    server_version = ""
    if isinstance(exc, EntityConflict):
        server_item = dict(exc.entity) if isinstance(exc.entity, Mapping) else None
        server_version = _strip_etag(exc.etag)
    elif row_id:
        try:
            pk = lookup_pk(model, str(row_id))
        except APIException:
            pk = None
        if pk is not None:
            obj = model.all_objects.using(router.db_for_write(model)).filter(pk=pk).first()
            if obj is not None:
                server_item = view.representer.from_instance(obj)
                server_version = encode_version(obj.version) or ""
    user = getattr(request, "user", None)
    error_code, message = "", ""
    if isinstance(exc, EntityConflict):
        error_code = str(exc.default_code)
    elif isinstance(exc, APIException):
        message, extra = describe(exc)  # the errorCode and message the client received
        error_code = str(extra.get("errorCode", ""))
    else:  # Django's Http404 / PermissionDenied, answered by DRF
        error_code = "not_found" if response.status_code == 404 else "permission_denied"
        message = str(exc)
    return SyncRejection(
        table=stamping.clock_key(model),
        model=model._meta.label_lower,
        row_id=_storable(str(row_id))[:255],
        operation=operation,
        generation=generation.name,
        user=user if user is not None and user.is_authenticated else None,
        status=response.status_code,
        error_code=error_code[:64],
        message=_storable(message),
        client_item=_storable(client_item),
        base_version=_storable(base_version)[:255],
        server_item=_storable(server_item),
        server_version=server_version,
    )


# -- resolving ------------------------------------------------------------------------------


class ResolveError(Exception):
    """A ledger entry that cannot be resolved as asked; the message says why."""


def keep_server_row(entry: SyncRejection, user: AbstractBaseUser | None) -> None:
    """Resolve ``entry`` in the server's favour: nothing is written to the table.

    ``ResolveError`` when the entry is resolved already (also by a resolution made meanwhile).
    """
    if not entry.is_open:
        raise ResolveError("This entry is already resolved.")
    _resolve(entry, SyncRejection.Resolution.SERVER, user, _ledger_db(entry))


def _ledger_db(entry: SyncRejection) -> str:
    return router.db_for_write(SyncRejection, instance=entry)


def _resolve(
    entry: SyncRejection, resolution: str, user: AbstractBaseUser | None, using: str, version: str = ""
) -> None:
    """Mark ``entry`` resolved if it is still open in the database, else ``ResolveError``.

    One conditional UPDATE: of two resolutions of the same entry at once (two admins, a
    double-click), each with its copy of the entry loaded open, the second waits for the
    first's row lock and then matches no row, so exactly one resolves it. ``entry`` is
    changed only once the UPDATE has taken it.
    """
    fields = {
        "resolution": resolution,
        "resolved_at": timezone.now(),
        "resolved_by": cast(Any, user) if user is not None and user.is_authenticated else None,
        "applied_version": version,
    }
    if not SyncRejection.objects.using(using).filter(pk=entry.pk, resolution="").update(**fields):
        raise ResolveError("This entry is already resolved.")
    for name, value in fields.items():
        setattr(entry, name, value)


def table_model(entry: SyncRejection) -> type[SyncModel]:
    try:
        model = apps.get_model(entry.model)
    except (LookupError, ValueError) as exc:
        raise ResolveError(f"The table {entry.model!r} no longer exists.") from exc
    if not issubclass(model, SyncModel):
        raise ResolveError(f"{entry.model!r} is not a synced table.")
    return model


def _view_class_for(model: type[SyncModel]) -> type[SyncViewSet] | None:
    """The routed ``SyncViewSet`` serving ``model``: its fields and serializer validate the item."""
    from .checks import _view_classes
    from .viewsets import SyncViewSet, _table_of

    for cls in _view_classes(get_resolver().url_patterns):
        if isinstance(cls, type) and issubclass(cls, SyncViewSet):
            try:
                if _table_of(cls).model is model:
                    return cls
            except Exception:
                continue
    return None


def apply_client_item(entry: SyncRejection, user: AbstractBaseUser | None) -> SyncModel:
    """Resolve ``entry`` in the client's favour: write the client's item over the current row.

    A normal stamped write: the table's clock is taken (the lock every write takes), the row
    is read under it, the client's columns are validated by the table's serializer (the routed
    view's, else one for every column), saved with the reserved stamp, and ``sync_committed``
    fires on commit (``operation`` as written, ``request`` None). A refused delete applies as
    a soft delete; a row deleted since is restored with the client's values. ``ResolveError``
    when the entry is not an open conflict or the item is no longer valid.
    """
    from .serializers import Representer, serializer_class_for

    if not entry.is_open:
        raise ResolveError("This entry is already resolved.")
    if not entry.is_conflict:
        raise ResolveError("Only conflicts (409, 412) can be resolved by applying the client's item.")
    model = table_model(entry)
    view_class = _view_class_for(model)
    if view_class is not None:
        from .viewsets import _table_of

        table = _table_of(view_class)
        representer = table.representer
        serializer_class = view_class.serializer_class or table.serializer_class
    else:
        representer = Representer(model, None)
        serializer_class = serializer_class_for(model, None)
    system_names = policy_for(entry.generation).system_names  # the names the client's item uses
    using = router.db_for_write(model)
    ledger_db = _ledger_db(entry)
    resolved = SyncRejection(pk=entry.pk)
    try:
        # The entry is taken before the write, in a transaction that holds the write: a
        # resolution of it made meanwhile refuses this one, which then writes nothing, and a
        # write that fails leaves the entry open.
        with transaction.atomic(using=ledger_db):
            _resolve(resolved, SyncRejection.Resolution.CLIENT, user, ledger_db)
            written = _write_client_item(entry, model, using, representer, serializer_class, system_names)
            resolved.applied_version = encode_version(written.version) or ""
            SyncRejection.objects.using(ledger_db).filter(pk=entry.pk).update(applied_version=resolved.applied_version)
    except APIException as exc:  # a column the table no longer has, say
        raise ResolveError(f"The client's item is no longer valid: {exc.detail}") from exc
    except (IntegrityError, DjangoValidationError) as exc:
        raise ResolveError(f"The database refused the client's item: {exc}") from exc
    for name in ("resolution", "resolved_at", "resolved_by", "applied_version"):
        setattr(entry, name, getattr(resolved, name))
    return written


def _write_client_item(
    entry: SyncRejection,
    model: type[SyncModel],
    using: str,
    representer: Any,
    serializer_class: Any,
    system_names: Mapping[str, str],
) -> SyncModel:
    from rest_framework.exceptions import ValidationError

    from .serializers import split_body

    with transaction.atomic(using=using):
        (stamp,) = stamping.reserve(model, 1, using)
        obj = model.all_objects.using(using).filter(pk=entry.row_id).first()
        operation = "delete" if entry.operation == "delete" else "update"
        if entry.operation == "delete":
            if obj is None:
                raise ResolveError("The row no longer exists; there is nothing to delete.")
            if not obj.deleted:
                obj.delete(using=using, stamp=stamp)
        else:
            if entry.client_item is None:
                raise ResolveError("The entry holds no client item.")
            body = split_body(entry.client_item, representer, system_names)
            context = {"stamp": stamp, "sync_id": entry.row_id}
            serializer = serializer_class(obj, data=body.columns, partial=obj is not None, context=context)
            try:
                serializer.is_valid(raise_exception=True)
            except ValidationError as exc:
                raise ResolveError(f"The client's item is no longer valid: {exc.detail}") from exc
            if obj is not None and obj.deleted:
                cast(dict[str, Any], serializer.validated_data)["deleted"] = False
                operation = "undelete"
            elif obj is None:
                operation = "insert"
            obj = cast(SyncModel, serializer.save())
        assert obj is not None
        written: SyncModel = obj
        transaction.on_commit(
            lambda: sync_committed.send(sender=model, instance=written, operation=operation, request=None),
            using=using,
        )
    return written


def purge_rejections(older_than: dt.timedelta, *, dry_run: bool = False, batch_size: int = 1000) -> int:
    """Remove ledger entries recorded more than ``older_than`` ago, resolved or not, in short
    batches; the number removed (or, with ``dry_run``, that would be)."""
    using = router.db_for_write(SyncRejection)
    old = SyncRejection.objects.using(using).filter(created_at__lt=timezone.now() - older_than)
    if dry_run:
        return old.count()
    total = 0
    while True:
        ids = list(old.order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return total
        with transaction.atomic(using=using):
            deleted, _ = SyncRejection.objects.using(using).filter(id__in=ids).delete()
        total += deleted
