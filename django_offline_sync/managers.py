"""``SyncQuerySet`` and the three managers every ``SyncModel`` gets.

``objects`` hides soft-deleted rows, ``all_objects`` includes them, ``deleted_objects``
holds only them. Bulk ``update()``, ``delete()`` (soft) and ``bulk_create()`` stamp every
row they touch through ``stamping``, so incremental pulls see bulk changes too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models
from django.db.models import Case, Q, Value, When

from . import stamping
from .wire import IMPORTED_VERSION_FIELD, ms_to_datetime

_M = TypeVar("_M", bound=models.Model)

# Rows per UPDATE statement when a bulk update hands each row its own stamp.
STAMP_CHUNK = 500


def _has_imported_version(model: type[models.Model]) -> bool:
    from .models import has_imported_version  # models imports this module

    return has_imported_version(model)


class SyncQuerySet(models.QuerySet[_M]):
    """A queryset whose writes keep ``updated_at``/``version`` right on every row."""

    def update(self, **kwargs: Any) -> int:
        """Update the rows and stamp each one with its own ``updated_at`` and ``version``.

        A row imported from another server takes our version from now on (its
        ``imported_version`` is cleared), as on any write.
        """
        model = self.model
        self._for_write = True  # as QuerySet.update: the write database, not a read replica
        using = self.db
        if _has_imported_version(model):
            kwargs = {**kwargs, IMPORTED_VERSION_FIELD: None}
        with stamping.atomic(using):
            if not stamping.uses_clock():
                (stamp,) = stamping.reserve(model, 1, using)
                return models.QuerySet.update(
                    self, **kwargs, updated_at=ms_to_datetime(stamp.ms), version=stamp.version
                )
            stamping.lock(model, using)
            pks = list(self.order_by("pk").values_list("pk", flat=True))
            if not pks:
                return 0
            stamps = stamping.reserve(model, len(pks), using)
            base: models.QuerySet[_M] = models.QuerySet(model, using=using)
            total = 0
            for start in range(0, len(pks), STAMP_CHUNK):
                chunk = pks[start : start + STAMP_CHUNK]
                chunk_stamps = stamps[start : start + STAMP_CHUNK]
                if len(chunk) == 1:
                    updated_at: Any = ms_to_datetime(chunk_stamps[0][0])
                    version: Any = chunk_stamps[0][1]
                else:
                    updated_at = Case(
                        *(
                            When(pk=pk, then=Value(ms_to_datetime(ms)))
                            for pk, (ms, _) in zip(chunk, chunk_stamps, strict=True)
                        ),
                        output_field=models.DateTimeField(),
                    )
                    version = Case(
                        *(When(pk=pk, then=Value(v)) for pk, (_, v) in zip(chunk, chunk_stamps, strict=True)),
                        output_field=models.BigIntegerField(),
                    )
                total += base.filter(pk__in=chunk).update(**kwargs, updated_at=updated_at, version=version)
            return total

    update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        """Soft delete: mark the rows deleted (and stamp them) instead of removing them."""
        count = self.filter(deleted=False).update(deleted=True)
        return count, {self.model._meta.label: count}

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        """Remove the rows for good. Devices that already pulled them keep their copies."""
        return models.QuerySet.delete(self)

    hard_delete.alters_data = True  # type: ignore[attr-defined]
    hard_delete.queryset_only = True  # type: ignore[attr-defined]

    def undelete(self) -> int:
        """Restore soft-deleted rows (stamped, so devices pull them again)."""
        return self.filter(deleted=True).update(deleted=False)

    undelete.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Create rows with one stamp each; ids are generated where missing."""
        objs = list(objs)
        if not objs:
            return objs
        self._for_write = True  # as QuerySet.bulk_create: the write database (and its clock)
        using = self.db
        with stamping.atomic(using):
            for obj, stamp in zip(objs, stamping.reserve(self.model, len(objs), using), strict=True):
                obj.stamp_from(stamp, adding=True)
            return super().bulk_create(objs, *args, **kwargs)

    def changed_since(self, updated_at: dt.datetime | None, pk: str | None = None) -> SyncQuerySet[_M]:
        """Rows after the keyset cursor ``(updated_at, pk)`` in pull order."""
        qs = self
        if updated_at is not None:
            if pk is None:
                qs = qs.filter(updated_at__gt=updated_at)
            else:
                qs = qs.filter(Q(updated_at__gt=updated_at) | Q(updated_at=updated_at, pk__gt=pk))
        return qs.order_by("updated_at", "pk")


class SyncManager(models.Manager.from_queryset(SyncQuerySet)):  # type: ignore[misc]
    """``objects``: the live rows only."""

    def get_queryset(self) -> SyncQuerySet[Any]:
        queryset: SyncQuerySet[Any] = super().get_queryset()
        return queryset.filter(deleted=False)

    def create(self, **kwargs: Any) -> Any:
        # An INSERT has no WHERE: skip the live-rows filter, a queryset clone that cost about
        # 50 µs of every insert (DRF's ModelSerializer creates through ``_default_manager``).
        return super().get_queryset().create(**kwargs)

    create.alters_data = True  # type: ignore[attr-defined]


class AllObjectsManager(models.Manager.from_queryset(SyncQuerySet)):  # type: ignore[misc]
    """``all_objects``: live and soft-deleted rows."""


class DeletedObjectsManager(models.Manager.from_queryset(SyncQuerySet)):  # type: ignore[misc]
    """``deleted_objects``: the soft-deleted rows (tombstones) only."""

    def get_queryset(self) -> SyncQuerySet[Any]:
        queryset: SyncQuerySet[Any] = super().get_queryset()
        return queryset.filter(deleted=True)
