"""Who synced when: the last pull and the last push of every authenticated user, per table.

``note(view, request, response)`` runs from ``SyncViewSet.finalize_response`` for every
answered request. A successful list is a pull, a successful write a push. To stay cheap it
writes at most once per ``INTERVAL`` per user, table and direction: a cache key added with
that timeout gates the database update (``cache.add`` is atomic in every Django cache
backend, so concurrent requests of one device write once). With a per-process cache (the
default ``LocMemCache``) each worker process writes at most once a minute; a shared cache
(Redis, Memcached) makes it once a minute for the whole site. The times shown are therefore
up to a minute old.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Final

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, router, transaction
from django.http.response import HttpResponseBase
from django.utils import timezone

from .models import SyncActivity

if TYPE_CHECKING:
    from .viewsets import SyncViewSet

__all__ = ["INTERVAL", "note"]

logger = logging.getLogger(__name__)

#: Seconds between two recordings of one user's pulls (or pushes) of one table.
INTERVAL: Final = 60

_PULL_ACTIONS: Final = frozenset({"list", "retrieve"})
_PUSH_ACTIONS: Final = frozenset({"create", "update", "partial_update", "destroy", "undelete"})


def note(view: SyncViewSet, response: HttpResponseBase) -> None:
    """Record a pull or a push by an authenticated user (at most once per ``INTERVAL``)."""
    if response.status_code >= 400:
        return
    action = getattr(view, "action", None)
    if action in _PULL_ACTIONS:
        column = "last_pull"
    elif action in _PUSH_ACTIONS:
        column = "last_push"
    else:
        return
    user = getattr(view.request, "user", None)
    if user is None or not user.is_authenticated or user.pk is None:
        return
    table = view._table().model._meta.label_lower
    digest = hashlib.blake2s(f"{user.pk}|{table}|{column}".encode(), digest_size=12).hexdigest()
    if not cache.add(f"offline_sync:activity:{digest}", 1, timeout=INTERVAL):
        return  # recorded less than a minute ago
    _record(user.pk, table, column)


def _record(user_pk: int | str, table: str, column: str) -> None:
    using = router.db_for_write(SyncActivity)
    now = timezone.now()
    try:
        with transaction.atomic(using=using):
            updated = SyncActivity.objects.using(using).filter(user_id=user_pk, table=table).update(**{column: now})
            if not updated:
                try:
                    with transaction.atomic(using=using):
                        SyncActivity.objects.using(using).create(user_id=user_pk, table=table, **{column: now})
                except IntegrityError:  # a concurrent first request created it
                    SyncActivity.objects.using(using).filter(user_id=user_pk, table=table).update(**{column: now})
    except DatabaseError:
        logger.exception("Could not record sync activity")
