"""The v1/v2 ``$skip`` remedy measured by the stress test: skip only within the boundary tie.

v1/v2 clients send ``updatedAt ge T`` with ``$skip=n`` only after reading ``n`` rows that all
had ``updatedAt == T``. If some of those rows were updated meanwhile, they moved to the end and
a positional skip jumps over newer rows instead. Applying the skip to the rows still at ``T``
only (``(updatedAt, id) > (T, n-th id at T)``, one statement, so one snapshot) gives the same
page when nothing moved and loses nothing when something did. With the clock's unique stamps at
most one row sits at ``T``, so this is exact; with legacy ties it is as good as ``$skip``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db.models import Q, QuerySet, Subquery

from django_offline_sync.pagination import KEYSET_UPDATED, ODataPagination, keyset_of

_BOUNDARY = re.compile(r"(?:__)?updatedAt\s+ge\s+datetimeoffset'([^']+)'\s*\)?\s*$", re.IGNORECASE)


def boundary_of(request: Any) -> dt.datetime | None:
    """``T`` of a pull query: a trailing ``updatedAt ge datetimeoffset'T'`` with tombstones asked for."""
    params = {k.lower(): v for k, v in request.GET.items()}
    if params.get("__includedeleted", "").lower() != "true":
        return None
    match = _BOUNDARY.search(params.get("$filter", ""))
    if not match:
        return None
    text = match.group(1).replace("Z", "+00:00")
    head, _, tail = text.partition(".")
    if tail:  # .NET sends 7 fraction digits; fromisoformat takes at most 6
        digits = re.match(r"\d+", tail).group(0)
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    return dt.datetime.fromisoformat(text)


class BoundarySkipPagination(ODataPagination):
    def paginate(self, queryset: QuerySet, request: Any, *, skip: int, order_by: list[Any], **kwargs: Any) -> Any:
        if skip > 0 and keyset_of(order_by, queryset.model._meta.pk.name) == KEYSET_UPDATED:
            boundary = boundary_of(request)
            if boundary is not None:
                nth = queryset.filter(updated_at=boundary).order_by("pk").values("pk")[skip - 1 : skip]
                queryset = queryset.filter(Q(updated_at__gt=boundary) | Q(updated_at=boundary, pk__gt=Subquery(nth)))
                skip = 0
        return super().paginate(queryset, request, skip=skip, order_by=order_by, **kwargs)
