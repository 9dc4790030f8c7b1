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

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        def param(name: str, description: str) -> dict[str, Any]:
            return {"name": name, "required": False, "in": "query", "description": description, "schema": {"type": "string"}}

        return [
            param("$filter", "OData filter expression, e.g. (updatedAt ge datetimeoffset'2024-01-01T00:00:00.000Z')."),
            param("$orderby", "Comma-separated fields with asc/desc; id is always the last tie-breaker."),
            param("$select", "Comma-separated wire names to return."),
        ]

