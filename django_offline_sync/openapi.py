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
from rest_framework.relations import PrimaryKeyRelatedField

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

        def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
            schema = super()._map_serializer_field(field, direction, bypass_extensions)
            return _as_string(schema) if _travels_as_string(field) else schema

    SyncAutoSchema.__qualname__ = SyncAutoSchema.__name__ = f"Sync{base.__name__}"
    _SCHEMAS[base] = SyncAutoSchema
    return SyncAutoSchema


def _travels_as_string(field: Any) -> bool:
    """Whether the wire sends ``field``'s value as a string whatever its column's type: a row's
    own key and a foreign key's value are ids, and every client's id is a string
    (``serializers.converter_for``), an integer key's included."""
    if isinstance(field, PrimaryKeyRelatedField):
        return True
    model = getattr(getattr(getattr(field, "parent", None), "Meta", None), "model", None)
    return model is not None and getattr(field, "source", None) in ("pk", model._meta.pk.name)


def _as_string(schema: Any) -> Any:
    """``schema`` with an integer type made a string (its integer bounds and format dropped)."""
    if not isinstance(schema, dict) or schema.get("type") != "integer":
        return schema
    kept = {key: value for key, value in schema.items() if key not in ("format", "minimum", "maximum")}
    return {**kept, "type": "string"}


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
