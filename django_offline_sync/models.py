"""``SyncModel``: the abstract model with the system fields every synced table needs.

``id`` (string, client- or server-generated), ``created_at``/``updated_at`` (UTC, millisecond
precision), ``version`` (opaque, new on every write) and ``deleted`` (soft delete). ``save()``
and ``delete()`` keep them right; see ``stamping`` for how ``updated_at`` is made gap-free.
``SyncClock`` is the one concrete model: a row per synced table holding its last stamp.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, router
from django.utils.translation import gettext_lazy as _

from . import stamping
from .exceptions import InvalidId
from .managers import AllObjectsManager, DeletedObjectsManager, SyncManager

ID_MAX_LENGTH = 255
# PROTOCOL.md §2.2: the v1/v2 Node rule. Control characters and " + ? \ / ` are forbidden.
_FORBIDDEN_ID_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f"+?\\/`]')


def generate_id() -> str:
    """A server-generated id: 32 lowercase hex digits, as ``Guid.ToString("N")``."""
    return uuid.uuid4().hex


def check_id(value: Any) -> str:
    """Return ``value`` if it is a valid client id, else raise ``InvalidId`` naming the rule."""
    if not isinstance(value, str):
        raise InvalidId(_("The id must be a string."))
    if not value:
        raise InvalidId(_("The id must not be empty."))
    if len(value) > ID_MAX_LENGTH:
        raise InvalidId(_("The id must be at most %(max)d characters long.") % {"max": ID_MAX_LENGTH})
    if value in (".", ".."):
        raise InvalidId(_("The id must not be '.' or '..'."))
    if _FORBIDDEN_ID_CHARS.search(value):
        raise InvalidId(
            _('The id must not contain control characters or any of the characters " + ? \\ / `.')
        )
    return value


def validate_sync_id(value: Any) -> None:
    """Model-field validator wrapping ``check_id`` for forms and the admin."""
    try:
        check_id(value)
    except InvalidId as exc:
        raise ValidationError(str(exc), code="invalid_id") from exc


def encode_version(version: int | None) -> str | None:
    """The wire form of a version: base64 of its 8 big-endian bytes."""
    if version is None:
        return None
    return base64.b64encode(int(version).to_bytes(8, "big", signed=True)).decode("ascii")


def decode_version(value: str) -> int:
    """Inverse of ``encode_version``; raises ``ValueError`` on anything else."""
    raw = base64.b64decode(value.encode("ascii"), validate=True)
    if len(raw) != 8:
        raise ValueError("a version is 8 bytes")
    return int.from_bytes(raw, "big", signed=True)


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

    objects = SyncManager()
    all_objects = AllObjectsManager()
    deleted_objects = DeletedObjectsManager()

    SYSTEM_FIELDS = ("id", "created_at", "updated_at", "version", "deleted")

    class Meta:
        abstract = True
        # Pulls read in (updated_at, id) order; this index makes every page a range scan.
        indexes = [models.Index(fields=["updated_at", "id"])]

    # -- stamping -----------------------------------------------------------------------

    def stamp_from(self, ms: int, version: int, *, adding: bool) -> None:
        self.updated_at = stamping.ms_to_datetime(ms)
        self.version = version
        if adding or self.created_at is None:
            self.created_at = self.updated_at

    def use_reserved_stamp(self, ms: int, version: int) -> None:
        """Have the next ``save()`` use a stamp already reserved in the current transaction.

        For writers that take the table's clock lock before reading the row (the table
        endpoints do, to make the version check and the write atomic).
        """
        self.__dict__["_reserved_stamp"] = (ms, version)

    @property
    def etag_version(self) -> str | None:
        return encode_version(self.version)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Stamp ``updated_at`` and ``version`` and write, in one transaction.

        ``update_fields`` is kept honest: the stamped fields are added to it.
        """
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        update_fields = kwargs.get("update_fields")
        adding = self._state.adding
        with stamping.atomic(using):
            reserved = self.__dict__.pop("_reserved_stamp", None)
            ((ms, version),) = [reserved] if reserved is not None else stamping.reserve(type(self), 1, using)
            self.stamp_from(ms, version, adding=adding)
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

    def delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Soft delete: mark deleted and stamp, so devices pull the tombstone."""
        if self.deleted:
            return 0, {self._meta.label: 0}
        self.deleted = True
        self.save(using=using, update_fields=["deleted"])
        return 1, {self._meta.label: 1}

    delete.alters_data = True  # type: ignore[attr-defined]

    def hard_delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Remove the row from the database for good."""
        return super().delete(using=using, keep_parents=keep_parents)

    hard_delete.alters_data = True  # type: ignore[attr-defined]

    def undelete(self, using: str | None = None) -> None:
        """Restore a soft-deleted row (stamped, so devices pull it again)."""
        self.deleted = False
        self.save(using=using, update_fields=["deleted"])

    undelete.alters_data = True  # type: ignore[attr-defined]

    restore = undelete


class SyncClock(models.Model):
    """The last stamp handed out for one synced table (see ``stamping``)."""

    table = models.CharField(_("table"), max_length=255, primary_key=True)
    last_ms = models.BigIntegerField(_("last stamp"), default=0)

    class Meta:
        db_table = "offline_sync_clock"
        verbose_name = _("sync clock")
        verbose_name_plural = _("sync clocks")

    def __str__(self) -> str:
        return f"{self.table}: {self.last_ms}"
