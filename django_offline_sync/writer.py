"""The writer: every write to a sync table, in the one order that makes it safe.

For a write to an existing row (update, replace, delete, undelete), inside one transaction::

    lock + stamp      reserve the write's stamp from the table's clock: that UPDATE is the
                      lock, held until commit (with STAMPING="now": lock the row instead)
    load              the row in the caller's data view (``get_queryset``), or 404,
                      then the view's object permissions
    precondition      the expected version against the row's: else 409/412 with the entity
    save              the caller's hook saves with the reserved stamp, passed explicitly
    signal            ``sync_committed`` once the transaction commits

so the version check and the write are atomic in the database, never check-then-write
across transactions. An insert needs no lock: the primary key decides duplicates
(``Writer.insert``). ``docs/gap-free-pull.rst`` explains why stamps taken this way never
let a pull miss a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import F, QuerySet
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer

from . import rowsql, stamping
from .concurrency import Precondition, etag_for
from .exceptions import ConstraintViolation, IdUnavailable, ItemNotFound
from .generations import Generation
from .managers import SyncManager
from .models import SyncModel, autocommits, saves_as_the_library_does
from .serializers import Representer, SyncModelSerializer, sets_to_many
from .signals import sync_committed
from .stamping import Stamp
from .wire import ID_MAX_LENGTH, IMPORTED_VERSION_FIELD, UNSTORABLE_TEXT

__all__ = ["LockedRow", "Operation", "Writer", "WriterView", "lookup_pk", "row_by_pk"]

Operation = Literal["insert", "update", "delete", "undelete"]


class WriterView(Protocol):
    """What the writer needs from the view (``SyncViewSet`` provides it)."""

    request: Request

    @property
    def generation(self) -> Generation: ...
    def get_queryset(self) -> QuerySet[Any]: ...
    @property
    def plain_data_view(self) -> bool: ...
    def check_object_permissions(self, request: Request, obj: Any) -> None: ...
    @property
    def representer(self) -> Representer: ...


@dataclass(frozen=True)
class LockedRow:
    """A row loaded under the table's write lock, with the stamp its write will take.

    ``stamp`` is ``None`` with ``STAMPING="now"``: ``save()`` then stamps at save time.
    """

    obj: SyncModel
    stamp: Stamp | None
    writer: Writer
    #: the writer's transaction is the outermost one: autocommit was on, no ``atomic`` block
    #: open (no ``ATOMIC_REQUESTS``, no caller's ``atomic``)
    outermost: bool = False

    def _carry_commit(self, serializer: BaseSerializer[Any] | None = None, *, plain: bool) -> None:
        """Let the row's UPDATE carry the transaction's ``COMMIT``, where it is its last statement.

        The library's own views call this (private: a statement after the carried ``COMMIT``
        would run in a transaction of its own, so ``rowsql`` refuses any until the writer's
        block ends). The view says its hook is the library's (``plain``: ``perform_update``,
        ``perform_destroy`` or ``perform_undelete`` not overridden); this checks the rest of
        the way down to the UPDATE: the serializer's ``save``/``update`` (with no to-many
        values, which are set after the row) where there is one, and the writer's own,
        outermost transaction on a connection that sends two statements in one message
        (``stamping.reads_with_lock``). ``SyncModel._do_update`` checks the save hooks of the
        row's class (``models.saves_as_the_library_does``) and the database, and leaves the
        transaction open where a ``pre_save`` or ``post_save`` receiver is connected. On
        PostgreSQL an update, a delete and an undelete are then ``BEGIN``, clock + row,
        ``UPDATE`` + ``COMMIT``: three round trips instead of four.
        """
        if (
            plain
            and self.outermost
            and (serializer is None or _updates_with_one_save(serializer, self.writer.model))
        ):
            # The value: the database whose UPDATE may carry it. The save hooks are checked
            # where they run, on the loaded row's own class (a proxy or a subclass of the
            # view's model may have its own): SyncModel._do_update.
            self.obj.__dict__[rowsql.COMMIT_WITH_UPDATE] = self.writer.using

    def check(self, precondition: Precondition | None, *, if_match_sent: bool) -> None:
        """Raise the generation's conflict (with the current entity) unless the version matches."""
        obj = self.obj
        imported = getattr(obj, IMPORTED_VERSION_FIELD, None)
        if precondition is not None and not precondition.matches(obj.version, imported):
            view = self.writer.view
            item = view.representer.from_instance(obj)
            raise view.generation.conflict(view.request, item, etag_for(obj.etag_version), if_match_sent=if_match_sent)


def lookup_pk(model: type[SyncModel], pk: str) -> Any:
    """The URL id as the primary key's Python value; an id no row can have is a 404.

    Only what no stored row can hold is refused here, before the database sees it
    (PostgreSQL rejects a NUL byte or a lone surrogate in text with an error). The stricter
    rules for new ids (``wire.check_id``) are not applied: a row stored under an id an older
    release accepted must stay addressable.
    """
    field = model._meta.pk
    try:
        value = field.to_python(pk)
        if isinstance(field, models.CharField) and not _storable_text(value):
            raise ValueError("no row has this id")
    except (DjangoValidationError, TypeError, ValueError) as exc:
        raise ItemNotFound() from exc
    return value


def row_by_pk(queryset: QuerySet[Any], pk: Any) -> Any:
    """The row of ``queryset`` with primary key ``pk``, or None.

    ``.first()`` without the ``ORDER BY pk`` it adds to an unordered queryset: a primary key
    matches one row at most, and the ordering was a clone and a compile on every write.
    """
    for obj in queryset.filter(pk=pk)[:1]:
        return obj
    return None


def _storable_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_MAX_LENGTH and UNSTORABLE_TEXT.search(value) is None


@dataclass(frozen=True)
class Writer:
    """Writes of one request to one table; see the module docstring for the order."""

    view: WriterView
    model: type[SyncModel]

    @cached_property
    def using(self) -> str:
        return router.db_for_write(self.model)

    @contextmanager
    def row(self, pk: str) -> Iterator[LockedRow]:
        """Lock + stamp, then load ``pk`` in the caller's data view (tombstones included).

        The body of the ``with`` runs in the write's transaction; an exception rolls it back,
        and a constraint the database refuses is a 400. The row is read from the database
        the write goes to, never from a replica.
        """
        value = lookup_pk(self.model, pk)
        # (asked only where the UPDATE can carry the COMMIT: LockedRow._carry_commit)
        outermost = stamping.reads_with_lock(self.using) and autocommits(self.using)
        try:
            with transaction.atomic(using=self.using):
                stamp, obj = self._lock_and_load(value)
                if obj is None:
                    raise ItemNotFound()
                self.view.check_object_permissions(self.view.request, obj)
                try:
                    yield LockedRow(obj, stamp, self, outermost)
                finally:
                    if outermost:
                        obj.__dict__.pop(rowsql.COMMIT_WITH_UPDATE, None)  # unused: the body wrote nothing
                        rowsql.end_of_write(self.using)
        except IntegrityError as exc:
            raise ConstraintViolation(f"The item violates a database constraint: {exc}") from exc
        except rowsql.RowGone as exc:
            raise ItemNotFound() from exc

    def _lock_and_load(self, pk: Any) -> tuple[Stamp | None, Any]:
        """``_lock`` then ``_load``; on PostgreSQL, with the row's statement compiled once,
        both in one message to the database (``stamping.reserve_reading``)."""
        loader = self._loader() if stamping.reads_with_lock(self.using) else None
        if loader is not None:
            read = stamping.reserve_reading(self.model, self.using, loader.sql, loader.params(self.using, pk))
            if read is not None:
                stamp, row = read
                return stamp, (None if row is None else loader.instance(self.using, row))
        return self._lock(pk), self._load(pk)

    def _loader(self) -> rowsql.RowLoader | None:
        """The row's statement compiled once per model, where the caller's data view is every
        row of the table (``plain_data_view``); None where the ORM must load it."""
        return rowsql.row_loader(self.model, self.using) if self.view.plain_data_view else None

    def _load(self, pk: Any) -> Any:
        """The row in the caller's data view, or None (with ``_loader``'s statement where there
        is one, instead of a queryset filtered and compiled on every write)."""
        loader = self._loader()
        if loader is not None:
            return loader.load(self.using, pk)
        return row_by_pk(self.view.get_queryset().using(self.using), pk)

    def _lock(self, pk: Any) -> Stamp | None:
        """Serialize with the table's other writers; the reserved stamp in clock mode."""
        if stamping.uses_clock():
            (stamp,) = stamping.reserve(self.model, 1, self.using)
            return stamp
        # A no-op UPDATE takes the row lock (and SQLite's write lock) until commit.
        QuerySet(self.model, using=self.using).filter(pk=pk).update(deleted=F("deleted"))
        return None

    def insert(
        self,
        serializer: BaseSerializer[Any],
        perform_create: Callable[[Any], None],
        sent_id: Any,
        *,
        plain_create: bool = False,
    ) -> SyncModel:
        """Run ``perform_create(serializer)`` in a transaction; a taken id is a 409 (or a 400).

        The primary key decides duplicates: an INSERT of a taken id fails (a concurrent one
        waits for the first to commit, then fails), and only then do we look. A row outside
        the caller's data view is never revealed (the Datasync create-conflict leak): 400.
        Where no row holds the id by then (the retention purged the tombstone that refused
        it), a create that is one ``save()`` (below) is tried once more.

        ``plain_create``: the view's ``perform_create`` is the library's (``serializer.save()``).
        Where the serializer and the model create as the library does too, and no transaction
        is open, the one model ``save()`` is all the write is, and it opens the transaction it
        needs itself (none, on PostgreSQL, for an insert that is one statement:
        ``SyncModel.save``).
        """
        # Inside a transaction (ATOMIC_REQUESTS, a caller's atomic) the writer's savepoint
        # stays: a taken id rolls back to it, and the transaction can still look (below).
        alone = (
            plain_create
            and stamping.stamps_in_insert(self.using)  # elsewhere save() opens the same transaction
            and autocommits(self.using)
            and _creates_with_one_save(serializer, self.model)
        )
        retried = False
        while True:
            try:
                with nullcontext() if alone else transaction.atomic(using=self.using):
                    perform_create(serializer)
                    instance = serializer.instance
                    if not isinstance(instance, SyncModel):
                        raise ImproperlyConfigured("perform_create must save the serializer (serializer.save()).")
                    self.committed(instance, "insert")
            except IntegrityError as exc:
                if sent_id is not None and self.model.all_objects.using(self.using).filter(pk=sent_id).exists():
                    visible = self.view.get_queryset().using(self.using).filter(pk=sent_id).first()
                    if visible is None:
                        raise IdUnavailable() from exc
                    item = self.view.representer.from_instance(visible)
                    etag = etag_for(visible.etag_version)
                    raise self.view.generation.conflict(
                        self.view.request, item, etag, if_match_sent=False, duplicate=True
                    ) from exc
                if (
                    sent_id is not None
                    and not retried
                    and plain_create
                    and _creates_with_one_save(serializer, self.model)
                ):
                    # No row holds the id, though one may have refused it: a tombstone the
                    # retention purged since the INSERT failed. The id is free again: insert
                    # once more (the refused INSERT, the whole write, wrote nothing) rather
                    # than refuse the item as a constraint it no longer violates.
                    retried = True
                    continue
                raise ConstraintViolation(f"The item violates a database constraint: {exc}") from exc
            return instance

    def committed(self, instance: SyncModel, operation: Operation) -> None:
        """Send ``sync_committed`` once the current transaction commits (never on rollback)."""
        request = self.view.request
        transaction.on_commit(
            lambda: sync_committed.send(sender=type(instance), instance=instance, operation=operation, request=request),
            using=self.using,
        )


def _creates_with_one_save(serializer: BaseSerializer[Any], model: type[SyncModel]) -> bool:
    """Whether ``serializer.save()`` is one ``model.save()`` of a new row and nothing more.

    So it is with the library's serializer ``save``/``create`` for the view's model (no
    to-many relation among the values), manager ``create``, and the model's save hooks
    (``models.saves_as_the_library_does``). An override of any of them may write more, which
    must commit with the row: the writer's transaction stays.
    """
    manager = model._default_manager
    return (
        _library_serializer_save(serializer, model, "create")
        and type(manager).create is SyncManager.create
        and manager._queryset_class.create is QuerySet.create
        and saves_as_the_library_does(model)
    )


def _updates_with_one_save(serializer: BaseSerializer[Any], model: type[SyncModel]) -> bool:
    """Whether ``serializer.save()`` of an existing row is one ``save()`` and nothing after it."""
    return _library_serializer_save(serializer, model, "update")


def _library_serializer_save(serializer: BaseSerializer[Any], model: type[SyncModel], method: str) -> bool:
    """Whether ``serializer.save()`` runs the library's ``create`` or ``update`` (``method``) for
    ``model``, with no to-many values to set after the row."""
    cls = type(serializer)
    return (
        cls.save is BaseSerializer.save
        and getattr(cls, method, None) is getattr(SyncModelSerializer, method)
        and getattr(getattr(cls, "Meta", None), "model", None) is model
        and not sets_to_many(serializer)
    )
