"""The DRF filter backend that applies ``$filter``, ``__includeDeleted`` and ``$orderby``.

It reads the parsed query from the view (``SyncViewSet.get_odata_query()``), so the query
string is parsed once per request. It composes with other backends: put django-filter's
``DjangoFilterBackend`` before it to let plain query parameters narrow what a device syncs.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.filters import BaseFilterBackend


class ODataFilterBackend(BaseFilterBackend):
    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        query = view.get_odata_query()
        if not query.include_deleted:
            queryset = queryset.filter(deleted=False)
        if query.filter is not None:
            queryset = queryset.filter(query.filter)
        return queryset.order_by(*query.order_by)
