"""``SyncModel``: the abstract model with the system fields every synced table needs.

``id`` (string, client- or server-generated), ``created_at``/``updated_at`` (UTC, millisecond
precision), ``version`` (opaque, new on every write) and ``deleted`` (soft delete). ``save()``
and ``delete()`` keep them right; see ``stamping`` for how ``updated_at`` is made gap-free.
``imported_version`` holds the version another server issued for a row imported from it
(``import_sync_table``), which the row keeps showing and honouring until its next write here.
``SyncClock`` holds a row per synced table with its last stamp; ``SyncHorizon`` a row per
table whose tombstones were purged (``retention.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import nullcontext
from functools import cache
from typing import Any, ClassVar, Final

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import rowsql, stamping
from .managers import AllObjectsManager, DeletedObjectsManager, SyncManager
from .stamping import Stamp
from .wire import (
    ID_MAX_LENGTH,
    IMPORTED_VERSION_FIELD,
    IMPORTED_VERSION_MAX_LENGTH,
    SYSTEM_FIELDS,
    InvalidId,
    check_id,
    decode_version,
    encode_version,
    generate_id,
    ms_to_datetime,
    wire_version,
)

__all__ = [
    "ID_MAX_LENGTH",
    "SyncActivity",
    "SyncBatch",
    "SyncClock",
    "SyncHorizon",
    "SyncImport",
    "SyncModel",
    "SyncRejection",
    "accepts_stamp",
    "check_id",
    "decode_version",
    "encode_version",
    "generate_id",
    "has_imported_version",
    "validate_sync_id",
]


def validate_sync_id(value: Any) -> None:
    """Model-field validator wrapping ``wire.check_id`` for forms and the admin."""
    try:
        check_id(value)
    except InvalidId as exc:
        raise ValidationError(str(exc), code="invalid_id") from exc


def accepts_stamp(method: Callable[..., Any]) -> bool:
    """Whether a ``save``/``delete``/``undelete`` (or a view hook) takes ``stamp=``.

    A project may override them with Django's or DRF's own signatures; those are called
    without the stamp and reserve their own, which is as correct, one clock update dearer.
    """
    return _accepts_stamp(getattr(method, "__func__", method))


@cache
def _accepts_stamp(function: Callable[..., Any]) -> bool:
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == "stamp" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def has_imported_version(model: type[models.Model]) -> bool:
    """Whether ``model`` has the ``imported_version`` column (a subclass may remove it by
    setting ``imported_version = None``; its table then cannot take imports)."""
    return _has_imported_version(model._meta.concrete_model or model)


@cache
def _has_imported_version(model: type[models.Model]) -> bool:
    return any(f.name == IMPORTED_VERSION_FIELD for f in model._meta.concrete_fields)


#: Set on an instance while its INSERT is to take the stamp (``SyncModel._stamps_in_insert``).
_PENDING_STAMP: Final = "_offline_sync_pending_stamp"


def _commits_alone(model: type[models.Model], using: str) -> bool:
    """Whether an insert that takes its stamp in its own statement may run in autocommit.

    One statement is atomic by itself, and its implicit transaction holds the clock row's
    lock until it commits, as an explicit one would (``docs/gap-free-pull.rst``): outside a
    transaction, ``BEGIN`` and ``COMMIT`` are two round trips that buy nothing. Django's
    ``save_base`` reasons the same way ("a transaction isn't needed if only one query is
    issued"). Not where anything could write after the row within ``save()`` (a ``post_save``
    receiver, a save hook of a class after ``SyncModel`` in the model's MRO: their writes
    commit with the row, as before), nor inside a transaction or with autocommit off (the
    row joins it).
    """
    return autocommits(using) and not post_save.has_listeners(model) and saves_as_the_library_does(model)


def autocommits(using: str) -> bool:
    """Whether the connection is outside any transaction: autocommit on, no ``atomic`` block."""
    connection = connections[using]
    return not connection.in_atomic_block and connection.get_autocommit()


#: The hooks of a model's save and soft delete, any of which, overridden, may write more.
_SAVE_HOOKS: Final = (
    "save", "save_base", "_save_parents", "_save_table", "_do_insert", "_do_update", "_insert_row",
    "stamp_from", "delete", "undelete",
)


def saves_as_the_library_does(model: type[models.Model]) -> bool:
    """Whether ``save()``, ``delete()`` and ``undelete()`` of ``model`` are ``SyncModel``'s and
    Django's own all the way down: no class of its MRO but ``SyncModel`` (and Django's
    ``Model``) defines one of their hooks, and it has no parent table.

    ``model.save is SyncModel.save`` is not enough: a mixin listed after ``SyncModel``
    (``class Task(SyncModel, Audited)``) runs inside ``SyncModel.save``'s ``super().save()``.
    Looked up on each write (two or three class dicts), so a class changed at run time counts.
    """
    if model._meta.parents:
        return False
    for cls in model.__mro__:
        if cls is SyncModel:
            continue
        if cls is models.Model:
            return True
        if any(hook in cls.__dict__ for hook in _SAVE_HOOKS):
            return False
    return False  # pragma: no cover - every model's MRO holds models.Model


class SyncModel(models.Model):
    """Abstract base for a table that devices sync.

    Subclasses add their own fields. ``objects`` hides soft-deleted rows, ``all_objects``
    shows them and ``deleted_objects`` shows only them.
    """

    id = models.CharField(
        _("id"),
        max_length=ID_MAX_LENGTH,
        primary_key=True,
        default=generate_id,
        validators=[validate_sync_id],
    )
    created_at = models.DateTimeField(_("created at"), editable=False, null=True)
    updated_at = models.DateTimeField(_("updated at"), editable=False, null=True)
    version = models.BigIntegerField(_("version"), editable=False, default=0)
    deleted = models.BooleanField(_("deleted"), default=False, db_index=True, editable=False)
    # Why a column rather than a mapping table: a pull renders every row's version, and a
    # column costs one COALESCE per row (in SQL where the database writes the JSON); a table
    # would cost a join on every pull for rows that, after their first write here, no longer
    # need it. NULL for every row written here (``docs/importing.rst``).
    imported_version = models.CharField(
        _("imported version"),
        max_length=IMPORTED_VERSION_MAX_LENGTH,
        null=True,
        blank=True,
        default=None,
        editable=False,
        help_text=_("The version the server this row was imported from issued; cleared by its next write here."),
    )

    objects: ClassVar[SyncManager] = SyncManager()
    all_objects: ClassVar[AllObjectsManager] = AllObjectsManager()
    deleted_objects: ClassVar[DeletedObjectsManager] = DeletedObjectsManager()

    SYSTEM_FIELDS: ClassVar[tuple[str, ...]] = SYSTEM_FIELDS

    class Meta:
        abstract = True
        # Pulls read in (updated_at, id) order; this index makes every page a range scan.
        indexes = [models.Index(fields=["updated_at", "id"])]

    # -- stamping -----------------------------------------------------------------------

    def stamp_from(self, stamp: Stamp, *, adding: bool) -> None:
        """Set ``updated_at``/``version`` (and ``created_at`` on insert) from ``stamp``."""
        self.updated_at = ms_to_datetime(stamp.ms)
        self.version = stamp.version
        if has_imported_version(type(self)):
            self.imported_version = None
        if adding or self.created_at is None:
            self.created_at = self.updated_at

    @property
    def etag_version(self) -> str | None:
        """The version on the wire (and in ETags): the imported one while the row has it."""
        return wire_version(self.version, getattr(self, IMPORTED_VERSION_FIELD, None))

    def save(self, *args: Any, stamp: Stamp | None = None, **kwargs: Any) -> None:
        """Stamp ``updated_at`` and ``version`` and write, in one transaction.

        ``stamp``: a stamp the caller already reserved in the current transaction (the table
        endpoints reserve it first, as their lock, then read and check the row); without it,
        ``save()`` reserves its own. ``update_fields`` is kept honest: the stamped fields are
        added to it.
        """
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        if not args:
            # The row goes where the stamp was taken, in its transaction, and Django's save()
            # does not ask the router a second time.
            kwargs["using"] = using
        update_fields = kwargs.get("update_fields")
        adding = self._state.adding
        if stamp is None and adding and not args and self._stamps_in_insert(using, kwargs):
            # PostgreSQL: the INSERT takes the stamp itself (rowsql.insert_stamped_row);
            # _do_insert stamps the usual way where that statement cannot be used (in a
            # transaction it opens for the two statements, if none is open).
            self.__dict__[_PENDING_STAMP] = True
            try:
                with nullcontext() if _commits_alone(type(self), using) else stamping.atomic(using):
                    super().save(**kwargs)
            finally:
                self.__dict__.pop(_PENDING_STAMP, None)
            return
        with stamping.atomic(using):
            if stamp is None:
                (stamp,) = stamping.reserve(type(self), 1, using)
            self.stamp_from(stamp, adding=adding)
            if update_fields is not None:
                stamped = {"updated_at", "version"}
                if has_imported_version(type(self)):
                    stamped.add(IMPORTED_VERSION_FIELD)
                kwargs["update_fields"] = set(update_fields) | stamped
            super().save(*args, **kwargs)

    save.alters_data = True  # type: ignore[attr-defined]

    def _stamps_in_insert(self, using: str, kwargs: dict[str, Any]) -> bool:
        """Whether this insert may take its stamp in the INSERT statement itself.

        One round trip instead of two on PostgreSQL, and nothing a project can see changes:
        ``save()`` overrides run as before, ``post_save`` receivers and the caller see the
        stamped instance. Only a ``pre_save`` receiver would see the row before its stamp,
        so a model with one connected stamps first, as does a save that Django might turn
        into an UPDATE (``update_fields``, ``force_update``, a key without a default) or
        that writes parent tables, and the ``"now"`` stamping mode.
        """
        meta = self._meta
        return (
            stamping.stamps_in_insert(using)
            and kwargs.get("update_fields") is None
            and not kwargs.get("force_update")
            and not meta.parents
            and all(field.has_default() for field in meta.pk_fields)
            and not pre_save.has_listeners(type(self))
        )

    def _take_pending_stamp(self, using: str) -> None:
        """Reserve and set the stamp that ``save()`` left to the INSERT, if it did."""
        if self.__dict__.pop(_PENDING_STAMP, False):
            (stamp,) = stamping.reserve(type(self), 1, using)
            self.stamp_from(stamp, adding=True)

    # Django's own hooks below save(): the statements themselves, compiled once per model
    # (``rowsql``); anything they do not cover goes to Django's implementation, and so does
    # a Django whose hooks take more arguments than 5.2's.
    def _do_update(self, base_qs: Any, using: Any, pk_val: Any, values: Any, *args: Any) -> Any:
        if _PENDING_STAMP in self.__dict__:  # not expected (see _stamps_in_insert): stamp now
            self._take_pending_stamp(using)
            values = [
                (field, model, getattr(self, field.attname) if field.attname in rowsql.STAMPED else value)
                for field, model, value in values
            ]
        # The writer's last statement (LockedRow._carry_commit) carries its COMMIT, unless a
        # receiver could write: a post_save one after it, a pre_save one before it (its write
        # would commit even where the UPDATE finds no row and the request is refused).
        # A save hook of the row's own class (a proxy, a mixin after SyncModel) may too.
        commit = (
            self.__dict__.pop(rowsql.COMMIT_WITH_UPDATE, None) == using
            and not (pre_save.has_listeners(type(self)) or post_save.has_listeners(type(self)))
            and saves_as_the_library_does(type(self))
        )
        if len(args) == 2:  # update_fields, forced_update (Django 5.2)
            updated = rowsql.update_row(base_qs.model, using, pk_val, values, commit=commit)
            if updated is not None:
                return updated
        return super()._do_update(base_qs, using, pk_val, values, *args)

    def _do_insert(self, manager: Any, using: Any, fields: Any, returning_fields: Any, *args: Any) -> Any:
        if _PENDING_STAMP in self.__dict__:
            ms = None
            if args == (False,) and not returning_fields:  # raw=False (Django 5.2)
                ms = rowsql.insert_stamped_row(self, using, fields, stamping.clock_key(type(self)))
            if ms is not None:
                del self.__dict__[_PENDING_STAMP]
                self.stamp_from(Stamp(ms, ms), adding=True)
                return []
            # Two statements, the clock's and the row's: one transaction, which save() left to
            # this statement where it would have been the only one (_commits_alone).
            with stamping.atomic(using):
                self._take_pending_stamp(using)
                return self._insert_row(manager, using, fields, returning_fields, *args)
        return self._insert_row(manager, using, fields, returning_fields, *args)

    def _insert_row(self, manager: Any, using: Any, fields: Any, returning_fields: Any, *args: Any) -> Any:
        if len(args) == 1 and rowsql.insert_row(self, using, fields, returning_fields, raw=args[0]):
            return []
        return super()._do_insert(manager, using, fields, returning_fields, *args)  # type: ignore[misc]  # not in the stubs

    def validate_unique(self, exclude: Any = None) -> None:
        """Also refuse the id of a soft-deleted row: the tombstone still owns it.

        Django checks uniqueness through ``_default_manager`` (``objects``), which hides
        deleted rows, so without this a form accepts the id and the INSERT fails.
        """
        super().validate_unique(exclude=exclude)
        if self._state.adding and self.pk is not None and not (exclude and "id" in exclude):
            model = type(self)
            if model.all_objects.filter(pk=self.pk, deleted=True).exists():
                raise ValidationError({"id": [self.unique_error_message(model, ("id",))]})

    def delete(
        self, using: str | None = None, keep_parents: bool = False, *, stamp: Stamp | None = None
    ) -> tuple[int, dict[str, int]]:
        """Soft delete: mark deleted and stamp, so devices pull the tombstone."""
        if self.deleted:
            return 0, {self._meta.label: 0}
        self.deleted = True
        self.save(using=using, update_fields=["deleted"], stamp=stamp)
        return 1, {self._meta.label: 1}

    delete.alters_data = True  # type: ignore[attr-defined]

    def hard_delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Remove the row from the database for good."""
        return super().delete(using=using, keep_parents=keep_parents)

    hard_delete.alters_data = True  # type: ignore[attr-defined]

    def undelete(self, using: str | None = None, *, stamp: Stamp | None = None) -> None:
        """Restore a soft-deleted row (stamped, so devices pull it again)."""
        self.deleted = False
        self.save(using=using, update_fields=["deleted"], stamp=stamp)

    undelete.alters_data = True  # type: ignore[attr-defined]

    restore = undelete


class SyncClock(models.Model):
    """The last stamp handed out for one synced table (see ``stamping``)."""

    table = models.CharField(_("table"), max_length=255, primary_key=True)
    last_ms = models.BigIntegerField(_("last stamp"), default=0)

    class Meta:
        db_table = stamping.CLOCK_TABLE
        verbose_name = _("sync clock")
        verbose_name_plural = _("sync clocks")

    def __str__(self) -> str:
        return f"{self.table}: {self.last_ms}"


class SyncBatch(models.Model):
    """A committed ``POST /tables/$batch``: its results, kept to answer a retry of it.

    Written in the batch's own transaction, so it exists exactly when the batch's writes do;
    the unique key makes a concurrent duplicate wait for the first and then replay it
    (``docs/batch.rst``). ``user`` is the caller's primary key as text, ``""`` when anonymous.
    """

    user = models.CharField(_("user"), max_length=255)
    batch_id = models.CharField(_("batch id"), max_length=255)
    digest = models.CharField(_("operations digest"), max_length=64)
    created_at = models.DateTimeField(_("created at"))
    response = models.TextField(_("response"))

    class Meta:
        db_table = "offline_sync_batch"
        verbose_name = _("sync batch")
        verbose_name_plural = _("sync batches")
        constraints = [models.UniqueConstraint(fields=["user", "batch_id"], name="offline_sync_batch_user_id")]
        indexes = [models.Index(fields=["user", "created_at"], name="offline_sync_batch_age")]

    def __str__(self) -> str:
        return f"{self.user or 'anonymous'}: {self.batch_id}"


class SyncImport(models.Model):
    """Where an import of one table from another server stands (``import_sync_table``).

    One row per target model and source table. It is saved in the transaction of every
    imported page, so an interrupted import resumes after the last page it committed, and a
    catch-up run (``--since-last-import``) knows where the last run ended.
    """

    key = models.CharField(_("key"), max_length=64, unique=True, help_text=_("SHA-256 of target and source."))
    target = models.CharField(_("target model"), max_length=255)
    source = models.TextField(_("source table URL"))
    generation = models.CharField(_("generation"), max_length=2)
    token = models.CharField(
        _("newest updatedAt imported"), max_length=40, blank=True, default="",
        help_text=_("The wire timestamp the next run starts from (rows at it are read again)."),
    )
    complete = models.BooleanField(_("complete"), default=False)
    runs = models.PositiveIntegerField(_("runs"), default=0)
    started_at = models.DateTimeField(_("last run started"), null=True)
    finished_at = models.DateTimeField(_("last run finished"), null=True)
    received = models.BigIntegerField(_("rows received"), default=0)
    written = models.BigIntegerField(_("rows written"), default=0)
    unknown_columns = models.JSONField(_("unknown columns"), default=list, blank=True)

    class Meta:
        db_table = "offline_sync_import"
        verbose_name = _("sync import")
        verbose_name_plural = _("sync imports")

    def __str__(self) -> str:
        return f"{self.target} <- {self.source}"


class SyncHorizon(models.Model):
    """How far ``purge_tombstones`` has removed one table's tombstones.

    ``horizon`` is the newest ``updated_at`` of a purged tombstone: a device whose delta token
    is older may still hold a row whose tombstone it never pulled, and must start afresh
    (``retention.py``, ``docs/fleet.rst``).
    """

    table = models.CharField(_("table"), max_length=255, primary_key=True)
    horizon = models.DateTimeField(_("horizon"))
    purged = models.BigIntegerField(_("tombstones purged"), default=0)
    purged_at = models.DateTimeField(_("last purge"), null=True, blank=True)

    class Meta:
        db_table = "offline_sync_horizon"
        verbose_name = _("sync horizon")
        verbose_name_plural = _("sync horizons")

    def __str__(self) -> str:
        return f"{self.table}: {self.horizon.isoformat()}"


class SyncRejection(models.Model):
    """One write the server refused after understanding its body: the conflict and rejection ledger.

    Recorded by ``ledger.record`` outside the refused transaction (it survives the rollback);
    shown in the admin, where a conflict is resolved by keeping the server's row or applying
    the client's item (``docs/fleet.rst``).
    """

    class Resolution(models.TextChoices):
        OPEN = "", _("open")
        SERVER = "server", _("kept the server's row")
        CLIENT = "client", _("applied the client's item")

    table = models.CharField(_("table"), max_length=255, db_index=True)
    model = models.CharField(_("model"), max_length=255, help_text=_("app_label.model_name of the table."))
    row_id = models.CharField(_("row id"), max_length=255, blank=True)
    operation = models.CharField(_("operation"), max_length=16)
    generation = models.CharField(_("generation"), max_length=4)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("user")
    )
    status = models.PositiveSmallIntegerField(_("status"), db_index=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    message = models.TextField(_("message"), blank=True)
    client_item = models.JSONField(_("client's item"), null=True, blank=True, encoder=DjangoJSONEncoder)
    base_version = models.CharField(_("client's base version"), max_length=255, blank=True)
    server_item = models.JSONField(_("server's item"), null=True, blank=True, encoder=DjangoJSONEncoder)
    server_version = models.CharField(_("server's version"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    resolution = models.CharField(_("resolution"), max_length=16, blank=True, choices=Resolution.choices)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("resolved by"),
    )
    applied_version = models.CharField(_("version written"), max_length=255, blank=True)

    class Meta:
        db_table = "offline_sync_rejection"
        verbose_name = _("rejected write")
        verbose_name_plural = _("conflicts and rejected writes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.status} {self.operation} {self.table}/{self.row_id}"

    @property
    def is_conflict(self) -> bool:
        return self.status in (409, 412)

    @property
    def is_open(self) -> bool:
        return self.resolution == ""


class SyncActivity(models.Model):
    """When a user last pulled from and pushed to one table (``activity.py``).

    Updated at most once a minute per user, table and direction, so it costs a pull or a
    push almost nothing; the admin's sync status page shows it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name=_("user"))
    table = models.CharField(_("table"), max_length=255)
    last_pull = models.DateTimeField(_("last pull"), null=True, blank=True)
    last_push = models.DateTimeField(_("last push"), null=True, blank=True)

    class Meta:
        db_table = "offline_sync_activity"
        verbose_name = _("sync status")
        verbose_name_plural = _("sync status")
        constraints = [models.UniqueConstraint(fields=["user", "table"], name="offline_sync_activity_user_table")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.table}"
