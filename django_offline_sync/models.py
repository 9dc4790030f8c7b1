"""``SyncModel``: the abstract model with the system fields every synced table needs.

``id`` (string, client- or server-generated), ``created_at``/``updated_at`` (UTC, millisecond
precision), ``version`` (opaque, new on every write) and ``deleted`` (soft delete). ``save()``
and ``delete()`` keep them right; see ``stamping`` for how ``updated_at`` is made gap-free.
``SyncClock`` is the one concrete model: a row per synced table holding its last stamp.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models, router
from django.utils.translation import gettext_lazy as _

from . import stamping
from .managers import AllObjectsManager, DeletedObjectsManager, SyncManager
from .stamping import Stamp
from .wire import (
    ID_MAX_LENGTH,
    SYSTEM_FIELDS,
    InvalidId,
    check_id,
    decode_version,
    encode_version,
    generate_id,
    ms_to_datetime,
)

__all__ = [
    "ID_MAX_LENGTH",
    "SyncBatch",
    "SyncClock",
    "SyncModel",
    "accepts_stamp",
    "check_id",
    "decode_version",
    "encode_version",
    "generate_id",
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
        if adding or self.created_at is None:
            self.created_at = self.updated_at

    @property
    def etag_version(self) -> str | None:
        return encode_version(self.version)

    def save(self, *args: Any, stamp: Stamp | None = None, **kwargs: Any) -> None:
        """Stamp ``updated_at`` and ``version`` and write, in one transaction.

        ``stamp``: a stamp the caller already reserved in the current transaction (the table
        endpoints reserve it first, as their lock, then read and check the row); without it,
        ``save()`` reserves its own. ``update_fields`` is kept honest: the stamped fields are
        added to it.
        """
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        update_fields = kwargs.get("update_fields")
        adding = self._state.adding
        with stamping.atomic(using):
            if stamp is None:
                (stamp,) = stamping.reserve(type(self), 1, using)
            self.stamp_from(stamp, adding=adding)
            if update_fields is not None:
                kwargs["update_fields"] = set(update_fields) | {"updated_at", "version"}
            super().save(*args, **kwargs)

    save.alters_data = True  # type: ignore[attr-defined]

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
