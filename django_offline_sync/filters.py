"""``ODataFilterBackend``: the DRF filter backend that applies ``$filter``. It only filters.

It reads the parsed query from the view (``SyncViewSet.odata_query``), so the query string is
parsed once per request. Tombstones (``__includeDeleted``) and ``$orderby`` are the list
pipeline's own steps, so a view with other backends (or none) still never shows a tombstone
by accident. It composes with other backends: put django-filter's ``DjangoFilterBackend``
before it to let plain query parameters narrow what a device syncs.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.views import APIView

from .query.options import ODataQuery

__all__ = ["ODataFilterBackend"]

_M = TypeVar("_M", bound=Model)
_R = TypeVar("_R")


class _QueryView(Protocol):
    @property
    def odata_query(self) -> ODataQuery: ...


class ODataFilterBackend(BaseFilterBackend):
    def filter_queryset(self, request: Request, queryset: QuerySet[_M, _R], view: APIView) -> QuerySet[_M, _R]:
        query_view: _QueryView = view  # type: ignore[assignment]  # a SyncViewSet
        condition = query_view.odata_query.filter
        return queryset if condition is None else queryset.filter(condition)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        def param(name: str, description: str) -> dict[str, Any]:
            schema = {"type": "string"}
            return {"name": name, "required": False, "in": "query", "description": description, "schema": schema}

        return [
            param("$filter", "OData filter expression, e.g. (updatedAt ge datetimeoffset'2024-01-01T00:00:00.000Z')."),
            param("$orderby", "Comma-separated fields with asc/desc; id is always the last tie-breaker."),
            param("$select", "Comma-separated wire names to return."),
        ]
