"""Wire representation of SyncModel rows, and validation of request bodies.

``Representer`` turns a row (instance or ``values_list`` tuple) into the v2/v3 wire dict in
one pass with precompiled converters; lists never build model instances or DRF fields per
row, which is where a naive serializer spends its time. ``SyncModelSerializer`` (a DRF
``ModelSerializer``) validates incoming bodies field by field; wire names map here only.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from functools import lru_cache
from typing import Any, Callable, Iterable

from django.db import models
from rest_framework import serializers

from . import wire_sql
from .exceptions import BadRequest, InvalidId
from .models import SyncModel, check_id, encode_version
from .naming import SYSTEM_WIRE_NAMES, V1_SYSTEM_WIRE_NAMES, to_camel

UTC = dt.timezone.utc
SERVER_OWNED = ("created_at", "updated_at", "version", "deleted")


def format_datetime(value: dt.datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, the only form every client parses (PROTOCOL §2.2)."""
    if value is None:
        return None
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def _opt(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else func(value)


def converter_for(field: models.Field) -> Callable[[Any], Any] | None:
    """How one column's Python value becomes JSON; ``None`` means as is."""
    if field.name == "version":
        return encode_version
    if isinstance(field, models.DateTimeField):
        return format_datetime
    if isinstance(field, (models.DateField, models.TimeField)):
        return _opt(lambda v: v.isoformat())
    if isinstance(field, models.DecimalField):
        return _opt(float)
    if isinstance(field, models.UUIDField):
        return _opt(str)
    if isinstance(field, models.DurationField):
        return _opt(lambda v: v.total_seconds())
    if isinstance(field, models.BinaryField):
        return _opt(lambda v: base64.b64encode(bytes(v)).decode("ascii"))
    if isinstance(field, models.ForeignKey):
        return converter_for(field.target_field) if not isinstance(field.target_field, models.CharField) else None
    if field.primary_key and not isinstance(field, models.CharField):
        return _opt(str)  # integer primary keys travel as strings (every client's id is a string)
    return None


class Representer:
    """Precompiled row → wire dict conversion for one model and column whitelist."""

    def __init__(self, model: type[SyncModel], fields: Iterable[str] | None = None) -> None:
        self.model = model
        wanted = set(fields) if fields is not None else None
        columns: list[tuple[str, str, Callable[[Any], Any] | None]] = []
        system: list[tuple[str, str, Callable[[Any], Any] | None]] = []
        for field in model._meta.concrete_fields:
            if field.name in SYSTEM_WIRE_NAMES:
                system.append((SYSTEM_WIRE_NAMES[field.name], field.attname, converter_for(field)))
            elif wanted is None or field.name in wanted or field.attname in wanted:
                if wanted is None and not field.editable:
                    continue
                columns.append((to_camel(field.attname), field.attname, converter_for(field)))
        id_column = [c for c in system if c[0] == "id"]
        self.columns = id_column + columns + [c for c in system if c[0] != "id"]
        self.attnames = [attname for _, attname, _ in self.columns]
        self.wire_names = [wire for wire, _, _ in self.columns]
        self.wire_to_attname = {wire: attname for wire, attname, _ in self.columns}
        # lower-cased wire name → wire name, for the user columns of request bodies
        self.user_columns = {wire.lower(): wire for wire, _, _ in columns}
        self._converters = [(i, conv) for i, (_, _, conv) in enumerate(self.columns) if conv is not None]
        self._plans: dict[str, tuple[list[Any], list[tuple[int, Any]]]] = {}

    def from_values(self, row: tuple[Any, ...], converters: list[tuple[int, Any]] | None = None) -> dict[str, Any]:
        values = list(row)
        for index, conv in self._converters if converters is None else converters:
            values[index] = conv(values[index])
        return dict(zip(self.wire_names, values))

    def select_plan(self, vendor: str) -> tuple[list[Any], list[tuple[int, Any]]]:
        """``values_list`` arguments for a list page on ``vendor`` and the converters still needed.

        Timestamps (and on PostgreSQL versions) come back from the database already in wire
        form (``wire_sql``); the other columns keep their Python converters.
        """
        plan = self._plans.get(vendor)
        if plan is None:
            select: list[Any] = []
            converters: list[tuple[int, Any]] = []
            fields = {f.attname: f for f in self.model._meta.concrete_fields}
            for index, (_, attname, conv) in enumerate(self.columns):
                field = fields[attname]
                if isinstance(field, models.DateTimeField) and vendor in wire_sql.TIMESTAMP_VENDORS:
                    select.append(wire_sql.WireTimestamp(attname))
                elif field.name == "version" and vendor in wire_sql.VERSION_VENDORS:
                    select.append(wire_sql.WireVersion(attname))
                else:
                    select.append(attname)
                    if conv is not None:
                        converters.append((index, conv))
            plan = self._plans[vendor] = (select, converters)
        return plan

    def from_instance(self, obj: models.Model) -> dict[str, Any]:
        return self.from_values(tuple(getattr(obj, attname) for attname in self.attnames))

    def rows(self, queryset: models.QuerySet) -> list[dict[str, Any]]:
        return [self.from_values(row) for row in queryset.values_list(*self.attnames)]


@lru_cache(maxsize=None)
def representer_for(model: type[SyncModel], fields: tuple[str, ...] | None = None) -> Representer:
    return Representer(model, fields)


class SyncModelSerializer(serializers.ModelSerializer):
    """Validates the user columns of a request body; system fields are server-owned.

    Fields are keyed by wire name (``dueDate``, ``taskId``) with ``source`` pointing at the
    model field, so validation errors and the OpenAPI schema speak the wire's language.
    Subclass it with ``Meta.model`` (and optionally ``Meta.fields``) to customise
    validation; ``SyncViewSet`` builds one automatically when ``serializer_class`` is unset.
    """

    serializer_related_field = serializers.PrimaryKeyRelatedField

    def get_fields(self) -> dict[str, Any]:
        # ModelSerializer rebuilds every field from model metadata on each instance, about a
        # fifth of a write request's CPU; build them once per class and hand out deep copies
        # (DRF's own pattern for declared fields).
        cls = type(self)
        prototype = cls.__dict__.get("_prototype_fields")
        if prototype is None:
            prototype = self._build_wire_fields()
            cls._prototype_fields = prototype  # type: ignore[attr-defined]
        return copy.deepcopy(prototype)

    def _build_wire_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        model = self.Meta.model
        by_name = {f.name: f for f in model._meta.concrete_fields}
        renamed: dict[str, Any] = {}
        for name, field in fields.items():
            model_field = by_name.get(name)
            if model_field is None:
                renamed[name] = field
                continue
            wire = SYSTEM_WIRE_NAMES.get(name) or to_camel(model_field.attname)
            if name == "version":
                field = serializers.CharField(read_only=True, help_text="Opaque row version (base64).")
            if wire != name:
                # Through _kwargs too, so that deep copies (re-instantiated from them) keep it.
                field._kwargs["source"] = name
                field.source = name
            renamed[wire] = field
        return renamed

    def build_relational_field(self, field_name: str, relation_info: Any) -> tuple[type, dict[str, Any]]:
        field_class, kwargs = super().build_relational_field(field_name, relation_info)
        related = relation_info.related_model
        # A row may point at a soft-deleted row: look in every row, not just the live ones.
        if "queryset" in kwargs and hasattr(related, "all_objects"):
            kwargs["queryset"] = related.all_objects.all()
        return field_class, kwargs

    def create(self, validated_data: dict[str, Any]) -> Any:
        sync_id = self.context.get("sync_id")
        if sync_id is not None:
            validated_data["id"] = sync_id
        return super().create(validated_data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for key, value in list(attrs.items()):
            if isinstance(value, dt.datetime):
                # Stored at millisecond precision, like the system timestamps, so that
                # what a device sends back compares equal to what it pulled.
                attrs[key] = value.replace(microsecond=value.microsecond - value.microsecond % 1000)
        return attrs


def serializer_class_for(model: type[SyncModel], fields: Iterable[str] | None = None) -> type[SyncModelSerializer]:
    names = [
        f.name
        for f in model._meta.concrete_fields
        if f.name not in SYSTEM_WIRE_NAMES and f.editable and (fields is None or f.name in fields)
    ]
    system = list(SYSTEM_WIRE_NAMES)
    meta = type("Meta", (), {"model": model, "fields": system + names, "read_only_fields": system})
    return type(f"{model.__name__}SyncSerializer", (SyncModelSerializer,), {"Meta": meta})


class Body:
    """A request body split into user columns (by field name) and the system values sent."""

    def __init__(self, data: dict[str, Any], columns: dict[str, Any], system: dict[str, Any]) -> None:
        self.data = data
        self.columns = columns
        self.system = system

    @property
    def id(self) -> Any:
        return self.system.get("id")


def split_body(data: Any, representer: Representer, *, v1: bool = False) -> Body:
    """Map wire names to field names; reject unknown keys; set server-owned values apart.

    Property names match case-insensitively, as the v1 runtime and the OData resolver of
    the v3 server do. Server-owned fields are accepted and kept apart (PROTOCOL.md §2.3).
    """
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    system_names = V1_SYSTEM_WIRE_NAMES if v1 else SYSTEM_WIRE_NAMES
    system_by_wire = {wire.lower(): name for name, wire in system_names.items()}
    columns: dict[str, Any] = {}
    system: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        lowered = key.lower()
        if lowered in system_by_wire:
            system[system_by_wire[lowered]] = value
        elif lowered in representer.user_columns:
            columns[representer.user_columns[lowered]] = value
        else:
            unknown.append(key)
    if unknown:
        raise BadRequest(f"Unknown field(s) in the request body: {', '.join(sorted(unknown))}.")
    sent_id = system.get("id")
    if sent_id is not None and isinstance(representer.model._meta.pk, models.CharField):
        try:
            check_id(sent_id)
        except InvalidId as exc:
            raise BadRequest(f"Invalid id: {exc}") from exc
    return Body(data, columns, system)


def new_id_for(model: type[SyncModel], sent: Any) -> Any:
    """The id of a row being inserted: the client's (validated) or a fresh one."""
    pk = model._meta.pk
    if sent in (None, ""):
        return None
    if isinstance(pk, models.CharField):
        return sent
    raise BadRequest(f"{model._meta.object_name} assigns ids itself; do not send an id.")
