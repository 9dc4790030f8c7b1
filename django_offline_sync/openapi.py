"""drf-spectacular support: one distinct ``operationId`` per table operation.

The table protocol puts two ``POST`` routes on every table: insert (``POST /tables/T``) and
undelete (``POST /tables/T/{id}``). drf-spectacular names an operation after its path and the
method's usual action, so both became ``tables_T_create``; it logged a collision on every
schema request and renamed one ``tables_T_create_2``, which generated clients then expose.
This extension names the undelete ``tables_T_undelete`` and leaves every other name, the
``OPERATION_ID_METHOD_POSITION`` setting and an explicit ``@extend_schema(operation_id=...)``
as drf-spectacular has them.

Loaded by the app config when drf-spectacular is installed; nothing here is public.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_class

__all__: list[str] = []


_SCHEMAS: dict[type[AutoSchema], type[AutoSchema]] = {}


def _undelete_aware(base: type[AutoSchema]) -> type[AutoSchema]:
    """``base`` (the view's schema class), naming the undelete action's ``POST`` "undelete"."""
    if base in _SCHEMAS:
        return _SCHEMAS[base]

    class SyncAutoSchema(base):  # type: ignore[misc,valid-type]
        @property
        def method_mapping(self) -> dict[str, str]:
            mapping: dict[str, str] = base.method_mapping
            if getattr(self.view, "action", None) == "undelete":
                return {**mapping, "post": "undelete"}
            return mapping

    SyncAutoSchema.__qualname__ = SyncAutoSchema.__name__ = f"Sync{base.__name__}"
    _SCHEMAS[base] = SyncAutoSchema
    return SyncAutoSchema


class SyncViewSetExtension(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    target_class = "django_offline_sync.viewsets.SyncViewSet"
    match_subclasses = True

    def view_replacement(self) -> type[Any]:
        view: type[Any] = self.target
        base = get_class(view.schema)
        if not isinstance(base, type) or not issubclass(base, AutoSchema):
            return view  # a schema class of the project's own that is not drf-spectacular's
        # The stand-in serves the same table: sharing the view's table (and so its serializer
        # class) keeps one schema component per table instead of two of the same name.
        table = view._table
        attributes = {"schema": _undelete_aware(base)(), "_table": classmethod(lambda cls: table())}
        return type(view.__name__, (view,), {**attributes, "__module__": view.__module__})
