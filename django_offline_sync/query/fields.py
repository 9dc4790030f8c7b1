"""``FieldMap``: the queryable fields of one view, by wire name, with their OData types.

The translator resolves every property of ``$filter``, ``$orderby`` and ``$select`` here:
lookups ignore case (the v3 server resolves names case-insensitively) and accept the v1
``__createdAt``/``__updatedAt``/``__version``/``__deleted`` spellings of the system fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..wire import SYSTEM_WIRE_NAMES, V1_SYSTEM_WIRE_NAMES, exposed_fields, wire_name
from .errors import ODataTypeError

# Django internal type → OData type family used for checking and coercion.
_INTERNAL_TYPES: dict[str, str] = {
    "CharField": "string", "TextField": "string", "SlugField": "string", "EmailField": "string",
    "URLField": "string", "FilePathField": "string", "GenericIPAddressField": "string",
    "IntegerField": "int", "SmallIntegerField": "int", "BigIntegerField": "int",
    "PositiveIntegerField": "int", "PositiveSmallIntegerField": "int", "PositiveBigIntegerField": "int",
    "AutoField": "int", "SmallAutoField": "int", "BigAutoField": "int",
    "DecimalField": "decimal", "FloatField": "float", "BooleanField": "bool",
    "DateTimeField": "datetime", "DateField": "date", "TimeField": "time", "UUIDField": "guid",
}
_INT_BOUNDS = {
    "SmallIntegerField": 2**15, "PositiveSmallIntegerField": 2**15, "SmallAutoField": 2**15,
    "IntegerField": 2**31, "PositiveIntegerField": 2**31, "AutoField": 2**31,
}
INT64_BOUND = 2**63


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One queryable column: its canonical wire name, model attname and OData type."""

    wire_name: str
    attname: str
    type: str  # string int decimal float bool datetime date time guid version
    nullable: bool
    system: bool
    bound: int | None = None  # largest magnitude of an int column
    max_length: int | None = None
    #: An integer key the wire sends as a string (``"id": "7"``): an integer primary key or a
    #: foreign key to one. It also accepts an integer's string, ``id eq '7'``.
    string_id: bool = False


class FieldMap:
    """Wire name → ``FieldInfo`` for the fields a view lets clients query."""

    def __init__(self, fields: Iterable[FieldInfo]) -> None:
        self._fields: dict[str, FieldInfo] = {}
        self._canonical: dict[str, FieldInfo] = {}
        for info in fields:
            self._canonical[info.wire_name] = info
            self._fields[info.wire_name.lower()] = info
        for model_name, v1_name in V1_SYSTEM_WIRE_NAMES.items():
            system = self._canonical.get(SYSTEM_WIRE_NAMES[model_name])
            if system is not None:
                self._fields.setdefault(v1_name.lower(), system)

    @classmethod
    def for_model(cls, model: Any, fields: Iterable[str] | None = None) -> FieldMap:
        """The map for ``model``; ``fields`` whitelists model field names (system fields always)."""
        infos = []
        for field in exposed_fields(model, tuple(fields) if fields is not None else None):
            wire, attname = wire_name(field), field.attname
            target = field.target_field if field.is_relation else field
            internal = target.get_internal_type()
            if field.name == "version":
                kind = "version"
            else:
                kind = _INTERNAL_TYPES.get(internal, "")
            if not kind:
                continue  # JSON, binary and other columns cannot be queried
            infos.append(
                FieldInfo(
                    wire_name=wire,
                    attname=attname,
                    type=kind,
                    nullable=bool(field.null),
                    system=field.name in SYSTEM_WIRE_NAMES,
                    bound=_INT_BOUNDS.get(internal, INT64_BOUND) if kind == "int" else None,
                    max_length=getattr(target, "max_length", None) if kind == "string" else None,
                    # As serializers.converter_for and wire_sql.row_kind render them.
                    string_id=kind == "int" and bool(target.primary_key),
                )
            )
        return cls(infos)

    def get(self, name: str) -> FieldInfo | None:
        return self._fields.get(name.lower())

    def resolve(self, name: str, position: int | None = None) -> FieldInfo:
        """The field called ``name`` (any case, v1 spelling allowed); ``ODataTypeError`` if none."""
        info = self.get(name)
        if info is None:
            raise ODataTypeError(
                f"Unknown or non-queryable property {name!r}", position,
                "one of " + ", ".join(sorted(self._canonical)),
            )
        return info

    def __iter__(self) -> Iterator[FieldInfo]:
        return iter(self._canonical.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __repr__(self) -> str:
        return f"FieldMap({', '.join(self._canonical)})"
