"""Rows on the wire, and validation of request bodies.

``Representer`` turns a row (instance or ``values_list`` tuple) into the v2/v3 wire dict in
one pass with precompiled converters; lists never build model instances or DRF fields per
row, which is where a naive serializer spends its time. ``SyncModelSerializer`` (a DRF
``ModelSerializer``) validates incoming bodies field by field. Both take their columns from
``wire.exposed_fields``, so what a table returns, filters on and accepts is one list.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any, ClassVar, Final

from django.core.exceptions import RequestDataTooBig
from django.db import models
from django.http.request import RawPostDataException
from rest_framework import serializers
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.fields import Field
from rest_framework.request import Request
from rest_framework.utils import model_meta

from . import wire_sql
from .exceptions import (
    BodyNotObject,
    EmptyBody,
    IdNotAccepted,
    InvalidBodyId,
    MalformedBody,
    PayloadTooLarge,
    UnknownFields,
)
from .models import SyncModel, accepts_stamp, has_imported_version
from .wire import (
    IMPORTED_VERSION_FIELD,
    SYSTEM_WIRE_NAMES,
    UNSTORABLE_TEXT,
    InvalidId,
    check_id,
    encode_version,
    exposed_fields,
    format_timestamp,
    printable,
    truncate_ms,
    wire_name,
)

__all__ = [
    "Body",
    "ParsedBody",
    "Representer",
    "SyncModelSerializer",
    "read_json",
    "serializer_class_for",
    "split_body",
]

Converter = Callable[[Any], Any]


def _opt(func: Converter) -> Converter:
    return lambda value: None if value is None else func(value)


def _finite_decimal(value: Decimal) -> Decimal | None:
    """A decimal stays a ``Decimal``: the renderer writes it as an exact JSON number
    (``renderers.SyncJSONRenderer``). NaN and the infinities have no JSON form: null."""
    return value if value.is_finite() else None


def converter_for(field: models.Field[Any, Any]) -> Converter | None:
    """How one column's Python value becomes JSON; ``None`` means as is."""
    if field.name == "version":
        return encode_version
    if isinstance(field, models.DateTimeField):
        return _opt(format_timestamp)
    if isinstance(field, (models.DateField, models.TimeField)):
        return _opt(lambda v: v.isoformat())
    if isinstance(field, models.DecimalField):
        return _opt(_finite_decimal)
    if isinstance(field, models.UUIDField):
        return _opt(str)
    if isinstance(field, models.DurationField):
        return _opt(lambda v: v.total_seconds())
    if isinstance(field, models.BinaryField):
        return _opt(lambda v: base64.b64encode(bytes(v)).decode("ascii"))
    if isinstance(field, models.ForeignKey):
        target = field.target_field
        return converter_for(target) if not isinstance(target, models.CharField) else None
    if field.primary_key and not isinstance(field, models.CharField):
        return _opt(str)  # integer primary keys travel as strings (every client's id is a string)
    return None


class Representer:
    """Precompiled row → wire dict conversion for one model's exposed columns.

    A model with ``imported_version`` shows it as ``version`` where it is not NULL: the
    database does that in SQL where it writes the value (``wire_sql``); elsewhere the rows
    read carry that column last, one value more than ``fields``, and ``from_values`` folds it in.
    """

    def __init__(self, model: type[SyncModel], fields: Sequence[str] | None = None) -> None:
        self.model = model
        exposed = exposed_fields(model, fields)
        self.fields: list[models.Field[Any, Any]] = exposed
        self.attnames = [f.attname for f in exposed]
        self.imported: models.Field[Any, Any] | None = (
            model._meta.get_field(IMPORTED_VERSION_FIELD) if has_imported_version(model) else None
        )
        self._version_index = next((i for i, f in enumerate(exposed) if f.name == "version"), None)
        if self._version_index is None:
            self.imported = None
        self.wire_names = [wire_name(f) for f in exposed]
        #: lower-cased wire name → wire name, for the user columns of request bodies
        self.user_columns = {wire_name(f).lower(): wire_name(f) for f in exposed if f.name not in SYSTEM_WIRE_NAMES}
        self._converters = [(i, conv) for i, f in enumerate(exposed) if (conv := converter_for(f)) is not None]
        self._plans: dict[str, tuple[list[Any], list[tuple[int, Converter]]]] = {}
        self._row_json: dict[str, wire_sql.WireRow | None] = {}

    def from_values(
        self, row: Sequence[Any], converters: Sequence[tuple[int, Converter]] | None = None
    ) -> dict[str, Any]:
        values = list(row)
        imported = values.pop() if len(values) > len(self.fields) else None
        for index, conv in self._converters if converters is None else converters:
            values[index] = conv(values[index])
        if imported is not None:
            assert self._version_index is not None
            values[self._version_index] = imported
        return dict(zip(self.wire_names, values, strict=True))

    def select_plan(self, vendor: str) -> tuple[list[Any], list[tuple[int, Converter]]]:
        """``values_list`` arguments for a list page on ``vendor`` and the converters still needed.

        Timestamps (and on PostgreSQL versions) come back from the database already in wire
        form (``wire_sql``); the other columns keep their Python converters.
        """
        plan = self._plans.get(vendor)
        if plan is None:
            select: list[Any] = []
            converters: list[tuple[int, Converter]] = []
            for index, field in enumerate(self.fields):
                if isinstance(field, models.DateTimeField) and vendor in wire_sql.TIMESTAMP_VENDORS:
                    select.append(wire_sql.WireTimestamp(field.attname))
                elif field.name == "version" and vendor in wire_sql.VERSION_VENDORS:
                    imported = () if self.imported is None else (self.imported.attname,)
                    select.append(wire_sql.WireVersion(field.attname, *imported))
                else:
                    select.append(field.attname)
                    conv = converter_for(field)
                    if conv is not None:
                        converters.append((index, conv))
            if self.imported is not None and vendor not in wire_sql.VERSION_VENDORS:
                select.append(self.imported.attname)  # folded into the version by from_values
            plan = self._plans[vendor] = (select, converters)
        return plan

    def row_json(self, vendor: str) -> wire_sql.WireRow | None:
        """The expression that has ``vendor`` write each row's wire JSON, or None if it can't."""
        if vendor not in self._row_json:
            supported = wire_sql.supports_rows(self.fields, vendor)
            self._row_json[vendor] = (
                wire_sql.WireRow(self.wire_names, self.fields, self.imported) if supported else None
            )
        return self._row_json[vendor]

    def from_instance(self, obj: models.Model) -> dict[str, Any]:
        values = [getattr(obj, attname) for attname in self.attnames]
        if self.imported is not None:
            values.append(getattr(obj, self.imported.attname))
        return self.from_values(values)


class SyncModelSerializer(serializers.ModelSerializer[Any]):
    """Validates the user columns of a request body; system fields are server-owned.

    Fields are keyed by wire name (``dueDate``, ``taskId``) with ``source`` pointing at the
    model field, so validation errors and the OpenAPI schema speak the wire's language.
    Subclass it with ``Meta.model`` (and optionally ``Meta.fields``) to customise
    validation; ``SyncViewSet`` builds one automatically when ``serializer_class`` is unset.

    ``context["stamp"]``, when the view reserved one, is the stamp ``update()`` saves with.
    """

    serializer_related_field = serializers.PrimaryKeyRelatedField
    _prototype_fields: ClassVar[dict[str, Field[Any, Any, Any, Any]]]
    _null_takes_default: ClassVar[dict[str, models.Field[Any, Any]]]
    _class_validators: ClassVar[list[Any]]

    def get_fields(self) -> dict[str, Field[Any, Any, Any, Any]]:
        # ModelSerializer rebuilds every field from model metadata on each instance, about a
        # fifth of a write request's CPU; build them once per class and hand out deep copies
        # (DRF's own pattern for declared fields).
        cls = type(self)
        prototype = cls.__dict__.get("_prototype_fields")
        if prototype is None:
            prototype = self._build_wire_fields()
            cls._prototype_fields = prototype
        return {name: _fresh_copy(field) for name, field in prototype.items()}

    def _build_wire_fields(self) -> dict[str, Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        model: type[models.Model] = self.Meta.model
        by_name = {f.name: f for f in model._meta.concrete_fields}
        renamed: dict[str, Field[Any, Any, Any, Any]] = {}
        for name, field in fields.items():
            model_field = by_name.get(name)
            if model_field is None:
                renamed[name] = field
                continue
            wire = wire_name(model_field)
            if name == "version":
                field = serializers.CharField(read_only=True, help_text="Opaque row version (base64).")
            if wire != name:
                # Through _kwargs too, so that deep copies (re-instantiated from them) keep it.
                field._kwargs["source"] = name  # type: ignore[attr-defined]
                field.source = name
            renamed[wire] = field
        return renamed

    def build_relational_field(
        self, field_name: str, relation_info: Any
    ) -> tuple[type[Field[Any, Any, Any, Any]], dict[str, Any]]:
        field_class, kwargs = super().build_relational_field(field_name, relation_info)
        related = relation_info.related_model
        # A row may point at a soft-deleted row: look in every row, not just the live ones.
        if "queryset" in kwargs and hasattr(related, "all_objects"):
            kwargs["queryset"] = related.all_objects.all()
        return field_class, kwargs

    def get_validators(self) -> list[Any]:
        # DRF works the model's unique-together and unique-for-date validators out from its
        # metadata for every serializer instance (about 60 µs of each write); they depend on
        # the class's fields only, so work them out once per class, like the fields.
        cls = type(self)
        cached: list[Any] | None = cls.__dict__.get("_class_validators")
        if cached is None:
            cached = list(super().get_validators())
            cls._class_validators = cached
        return list(cached)

    def create(self, validated_data: dict[str, Any]) -> Any:
        """DRF's create, with the client's id (``context["sync_id"]``) when it sent one."""
        sync_id = self.context.get("sync_id")
        if sync_id is not None:
            validated_data["id"] = sync_id
        _check_nested_writes("create", self, validated_data)
        model: type[models.Model] = self.Meta.model
        many_to_many = {
            name: validated_data.pop(name)
            for name, relation in _field_info(model).relations.items()
            if relation.to_many and name in validated_data
        }
        instance = model._default_manager.create(**validated_data)
        for name, value in many_to_many.items():
            getattr(instance, name).set(value)
        return instance

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        """DRF's update, saving with the stamp the view reserved (``context["stamp"]``)."""
        _check_nested_writes("update", self, validated_data)
        info = _field_info(type(instance))
        many_to_many = []
        for attr, value in validated_data.items():
            if attr in info.relations and info.relations[attr].to_many:
                many_to_many.append((attr, value))
            else:
                setattr(instance, attr, value)
        stamp = self.context.get("stamp")
        if stamp is not None and accepts_stamp(instance.save):
            instance.save(stamp=stamp)
        else:
            instance.save()
        for attr, value in many_to_many:
            getattr(instance, attr).set(value)
        return instance

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for key, value in list(attrs.items()):
            if isinstance(value, dt.datetime):
                # Stored at millisecond precision, like the system timestamps, so that
                # what a device sends back compares equal to what it pulled.
                attrs[key] = truncate_ms(value)
        return attrs

    def to_internal_value(self, data: Any) -> Any:
        """DRF's, after a ``null`` for a NOT NULL column with a model default became that default.

        The JavaScript client's offline push sends ``null`` for every column it never set, and
        the .NET client sends nulls too; refusing them would make one such row stop a whole
        push. So on insert, replace (PUT) and merge (PATCH) alike, ``null`` for a column that
        cannot hold it but has a ``default`` takes the default (a callable one is called anew).
        Any other ``null`` is validated as sent: a nullable column stores it, and a NOT NULL
        column without a default is a 400 naming it (§5, §6.1).
        """
        if isinstance(data, Mapping):
            takes_default = self._null_defaults()
            nulls = [wire for wire in takes_default if wire in data and data[wire] is None]
            if nulls:
                data = {**data, **{wire: _default_value(takes_default[wire]) for wire in nulls}}
        return super().to_internal_value(data)

    def _null_defaults(self) -> dict[str, models.Field[Any, Any]]:
        """Wire name → model field, for the writable NOT NULL columns that have a default."""
        cls = type(self)
        cached: dict[str, models.Field[Any, Any]] | None = cls.__dict__.get("_null_takes_default")
        if cached is None:
            model: type[models.Model] = self.Meta.model
            by_name = {f.name: f for f in model._meta.concrete_fields}
            cached = {}
            for wire, field in self.fields.items():
                model_field = by_name.get(field.source or "")
                if (
                    model_field is not None
                    and not field.read_only
                    and model_field.name not in SYSTEM_WIRE_NAMES
                    and not model_field.null
                    and model_field.has_default()
                ):
                    cached[wire] = model_field
            cls._null_takes_default = cached
        return cached


_FIELD_INFO: dict[type[models.Model], model_meta.FieldInfo] = {}


def _check_nested_writes(method_name: str, serializer: serializers.ModelSerializer[Any], validated_data: Any) -> None:
    """DRF's ``raise_errors_on_nested_writes``, where it can raise at all.

    It refuses writable nested serializers and dotted sources; DRF walks the model's
    relations on every write to decide (a twentieth of an insert's CPU). A serializer
    with neither kind of writable field cannot trip it, so it runs only for the others.
    """
    if any(
        isinstance(field, serializers.BaseSerializer) or len(field.source_attrs) > 1
        for field in serializer._writable_fields
    ):
        serializers.raise_errors_on_nested_writes(method_name, serializer, validated_data)


def sets_to_many(serializer: serializers.BaseSerializer[Any]) -> bool:
    """Whether the validated values hold a to-many relation, which ``create`` sets after the row."""
    model: type[models.Model] | None = getattr(getattr(serializer, "Meta", None), "model", None)
    if model is None:
        return True
    data = serializer.validated_data
    return any(relation.to_many and name in data for name, relation in _field_info(model).relations.items())


def _field_info(model: type[models.Model]) -> model_meta.FieldInfo:
    """DRF's ``get_field_info``, which walks the model's relations on every call, once per model."""
    info = _FIELD_INFO.get(model)
    if info is None:
        info = _FIELD_INFO[model] = model_meta.get_field_info(model)
    return info


def _fresh_copy(field: Field[Any, Any, Any, Any]) -> Field[Any, Any, Any, Any]:
    """An unbound copy of a prototype field, as ``copy.deepcopy`` (DRF's way) makes one.

    DRF's deep copy re-runs the field's ``__init__`` from its arguments: a third of the
    serializer's cost on a write. DRF's own flat fields keep nothing per use but what
    ``bind()`` assigns (name, parent, source), and their validators are shared by deep
    copies too, so a shallow copy of the never-bound prototype is the same field. Fields
    with children (``ListField``, ``many=True`` relations), nested serializers and fields of
    other packages or of the project are deep-copied as DRF does.

    The shallow copy is what ``copy.copy`` makes of these classes (none defines ``__copy__``,
    ``__reduce__``, ``__getstate__``, ``__setstate__`` or ``__slots__``: a new instance whose
    ``__dict__`` is a copy of the prototype's; ``Field.__new__`` only sets ``_args`` and
    ``_kwargs``, which the copied ``__dict__`` holds too), without its ``__reduce_ex__`` round
    trip, which cost as much again as the rest of the copy.
    """
    cls = type(field)
    if cls in _SHALLOW_COPY_SAFE:
        fresh = object.__new__(cls)
        fresh.__dict__.update(field.__dict__)
        return fresh
    return copy.deepcopy(field)


#: DRF field classes with no child field and no per-use state beyond ``bind()``'s.
_SHALLOW_COPY_SAFE: Final = frozenset(
    {
        serializers.BooleanField,
        serializers.CharField,
        serializers.ChoiceField,
        serializers.DateField,
        serializers.DateTimeField,
        serializers.DecimalField,
        serializers.DurationField,
        serializers.EmailField,
        serializers.FloatField,
        serializers.IntegerField,
        serializers.IPAddressField,
        serializers.JSONField,
        serializers.ModelField,
        serializers.PrimaryKeyRelatedField,
        serializers.ReadOnlyField,
        serializers.SlugField,
        serializers.TimeField,
        serializers.URLField,
        serializers.UUIDField,
    }
)


def _default_value(field: models.Field[Any, Any]) -> Any:
    """A column's model default as its serializer field takes it (a foreign key's as its pk)."""
    default = field.get_default()
    return default.pk if isinstance(default, models.Model) else default


def serializer_class_for(model: type[SyncModel], fields: Sequence[str] | None = None) -> type[SyncModelSerializer]:
    """A ``SyncModelSerializer`` for the columns ``wire.exposed_fields`` exposes."""
    names = [f.name for f in exposed_fields(model, fields)]
    system = [name for name in names if name in SYSTEM_WIRE_NAMES]
    meta = type("Meta", (), {"model": model, "fields": names, "read_only_fields": system})
    return type(f"{model.__name__}SyncSerializer", (SyncModelSerializer,), {"Meta": meta})


@dataclass(frozen=True)
class Body:
    """A request body: user columns by wire name, and the system values sent by field name."""

    columns: dict[str, Any]
    system: dict[str, Any]

    @property
    def id(self) -> Any:
        return self.system.get("id")


def split_body(
    data: Any, representer: Representer, system_names: Mapping[str, str], *, url_id: str | None = None
) -> Body:
    """Sort a body's keys into user columns and system values; reject unknown keys.

    Property names match case-insensitively, as the v1 runtime and the OData resolver of
    the v3 server do. Server-owned values are accepted and kept apart (§2.3); the caller's
    generation decides their names (``system_names``).

    A sent id is held to the rules for new ids (``check_id``), except where it is the id of
    the row the URL names (``url_id``, an update): a row stored under an id that an older
    server or an adopted table allowed stays addressable (``writer.lookup_pk``), and every
    client sends the row's id back in its body.
    """
    if not isinstance(data, dict):
        raise BodyNotObject()
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
        names = ", ".join(sorted(printable(key) for key in unknown))
        raise UnknownFields(f"Unknown field(s) in the request body: {names}.")
    sent_id = system.get("id")
    if (
        sent_id is not None
        and isinstance(representer.model._meta.pk, models.CharField)
        and not (url_id is not None and sent_id == url_id)
    ):
        try:
            check_id(sent_id)
        except InvalidId as exc:
            raise InvalidBodyId(f"Invalid id: {exc}") from exc
    errors: dict[str, list[str]] = {}
    for wire, value in columns.items():
        found = _unstorable_text(value, wire)
        if found is not None:
            where, problem = found
            errors[wire] = [problem if where == wire else f"{problem} (at {where})"]
    if errors:
        raise serializers.ValidationError(errors)
    return Body(columns, system)


# A NUL character (PostgreSQL text and jsonb cannot hold it) or a lone UTF-16 surrogate (no
# database driver can encode it, nor can the UTF-8 response that would echo it): ``json.loads``
# makes both from ``\u0000`` and ``\ud800`` escapes.
def _unstorable_text(value: Any, where: str) -> tuple[str, str] | None:
    """The first string in a column value (object keys included) that no database can store:
    ``(where it is, why)``, or None. Refused with a 400 naming the column on every backend,
    rather than a 500 from PostgreSQL or the driver, or a choice or foreign key error that
    echoes the string and cannot be rendered."""
    if isinstance(value, str):
        match = UNSTORABLE_TEXT.search(value)
        if match is None:
            return None
        char = match.group()
        if char == "\x00":
            return where, "Null characters are not allowed."
        return where, f"Surrogate characters are not allowed: U+{ord(char):04X}."
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable_text(key, f"{where}.{printable(key)}") or _unstorable_text(
                item, f"{where}.{printable(key)}"
            )
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_text(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


#: The deepest nesting of arrays and objects a request body may have. Parsing, validating and
#: saving a body recurse once per level, and 100,000 ``[`` made ``json.loads`` raise
#: RecursionError (a 500). A row is an object (1 level), so a JSON column may hold 31 levels:
#: MariaDB's own limit for a JSON value, so that a body is accepted alike on every backend.
MAX_BODY_DEPTH: Final = 32
# A JSON string, escapes included; the closing quote is optional so that an unterminated
# string ends the scan in linear time rather than being retried from every later quote.
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP: Final = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON text ``raw`` nest more than ``limit`` deep
    (brackets inside strings do not count): a scan at C speed, made before parsing."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


@dataclass(frozen=True)
class ParsedBody:
    """A body ``read_json`` already parsed, attached to a request as ``ATTRIBUTE``.

    A ``$batch`` operation (``batch.py``) is dispatched as its single request with the item
    the batch body's own ``read_json`` parsed: encoding it again and parsing that would not
    give the same value back (``1e999`` is read as infinity, which JSON cannot write). The
    request keeps a body of the item's size, so the size and media type checks still apply.
    """

    ATTRIBUTE: ClassVar[str] = "offline_sync_parsed_body"
    value: Any


def read_json(request: Request, *, limit: int, allow_empty: bool = False) -> Any:
    """A JSON request body with precise 4xx errors: size (413), media type (415), syntax (400).

    Hand-written rather than DRF's ``JSONParser`` for three protocol rules: the size limit is
    checked before the body is read, a body without ``Content-Type`` is JSON (as the v2 Node
    server takes it, §1.4), and an empty body is told apart from malformed JSON. With
    ``allow_empty`` (a request that takes no body) an empty body is fine whatever its
    ``Content-Type``: ``runserver`` and some clients label even an empty body ``text/plain``.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise PayloadTooLarge(f"The request body is {length} bytes; the limit is {limit}.")
    content_type = request.content_type.split(";")[0].strip().lower() if request.content_type else ""
    not_json = bool(content_type) and content_type != "application/json" and not content_type.endswith("+json")
    if not_json and not allow_empty:
        raise UnsupportedMediaType(content_type)
    try:
        raw = request.body
    except (RequestDataTooBig, RawPostDataException) as exc:
        raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.") from exc
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is {len(raw)} bytes; the limit is {limit}.")
    if not raw.strip():
        if allow_empty:
            return None
        raise EmptyBody()
    if not_json:
        raise UnsupportedMediaType(content_type)
    if nested_deeper_than(raw, MAX_BODY_DEPTH):
        raise MalformedBody(f"The request body nests arrays and objects more than {MAX_BODY_DEPTH} levels deep.")
    parsed = getattr(request, ParsedBody.ATTRIBUTE, None)
    if isinstance(parsed, ParsedBody):
        return parsed.value  # a $batch operation: its item, as this function read it in the batch
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise MalformedBody("The request body is not valid UTF-8.") from exc
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"Malformed JSON in the request body: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except _NotJson as exc:
        raise MalformedBody(f"Malformed JSON in the request body: {exc}") from exc
    except ValueError as exc:  # int() refuses a literal over sys.get_int_max_str_digits() digits
        raise MalformedBody("Malformed JSON in the request body: a number has too many digits.") from exc
    except RecursionError as exc:  # pragma: no cover - nested_deeper_than refuses such bodies first
        raise MalformedBody("The request body is nested too deeply.") from exc


class _NotJson(ValueError):
    """A literal ``json.loads`` accepts but JSON does not have."""


def _refuse_constant(name: str) -> Any:
    # NaN, Infinity and -Infinity: a string column stored them as "nan", and a float column
    # would hold a value the JSON renderer cannot write back.
    raise _NotJson(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity).")


def server_assigns_ids(model: type[SyncModel]) -> bool:
    """Whether inserts into ``model`` must leave the id to the server (any key but a string)."""
    return not isinstance(model._meta.pk, models.CharField)


def new_id_for(model: type[SyncModel], sent: Any) -> Any:
    """The id of a row being inserted: the client's (validated) or None for a fresh one."""
    if sent in (None, ""):
        return None
    if not server_assigns_ids(model):
        return sent
    raise IdNotAccepted(f"{model._meta.object_name} assigns ids itself; do not send an id.")
