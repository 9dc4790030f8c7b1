"""Wire names: how a model's snake_case fields are spelled on the wire, per generation.

One place decides it, so the serializer, the OData translator and the keyset cursor agree:
a field's wire name is the camelCase of its ``attname`` (``due_date`` → ``dueDate``, a foreign
key ``task`` → ``taskId``). System fields have fixed names; v1 prefixes them with ``__``.
"""

from __future__ import annotations

from typing import Any

# model field name → v2/v3 wire name
SYSTEM_WIRE_NAMES: dict[str, str] = {
    "id": "id",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "version": "version",
    "deleted": "deleted",
}
# model field name → v1 wire name (PROTOCOL.md §2.1)
V1_SYSTEM_WIRE_NAMES: dict[str, str] = {
    "id": "id",
    "created_at": "__createdAt",
    "updated_at": "__updatedAt",
    "version": "__version",
    "deleted": "__deleted",
}


def to_camel(name: str) -> str:
    """``due_date`` → ``dueDate``; ``task_id`` → ``taskId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_fields(model: Any, fields: list[str] | tuple[str, ...] | None = None) -> dict[str, str]:
    """Map every wire name of ``model`` (v2/v3 spelling) to its model field ``attname``.

    ``fields`` limits the user columns (by field name); system fields are always present.
    Columns that are not concrete, or not editable and not system fields, are left out.
    """
    result: dict[str, str] = {}
    for field in model._meta.concrete_fields:
        if field.name in SYSTEM_WIRE_NAMES:
            result[SYSTEM_WIRE_NAMES[field.name]] = field.attname
            continue
        if fields is not None and field.name not in fields and field.attname not in fields:
            continue
        if fields is None and not field.editable:
            continue
        result[to_camel(field.attname)] = field.attname
    return result
