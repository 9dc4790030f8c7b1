"""The wire format, shared by the server and the Python client. Imports nothing from Django.

One place for every rule about how a row looks on the wire (``docs/protocol.rst`` §2):

* versions: an opaque base64 string of 8 big-endian bytes (``encode_version``/``decode_version``),
  or, for a row imported from another server and not written here since, the version that
  server issued (``wire_version``, ``check_imported_version``);
* timestamps: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC at millisecond precision;
* system names per generation (``SYSTEM_WIRE_NAMES``, ``V1_SYSTEM_WIRE_NAMES``) and the
  camelCase rule for user columns (``to_camel``);
* ids: generation and the validation rule (``generate_id``, ``check_id``);
* which columns of a model a table exposes (``exposed_fields``): the serializer, the OData
  field map and the row representer all ask this one function.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import struct
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "IDS_HEADER",
    "ID_MAX_LENGTH",
    "ID_NOT_ACCEPTED",
    "IMPORTED_VERSION_FIELD",
    "IMPORTED_VERSION_MAX_LENGTH",
    "MAX_MS",
    "SERVER_ASSIGNED_IDS",
    "SYSTEM_FIELDS",
    "SYSTEM_WIRE_NAMES",
    "UNSTORABLE_TEXT",
    "UTC",
    "V1_SYSTEM_WIRE_NAMES",
    "InvalidId",
    "check_id",
    "check_imported_version",
    "datetime_to_ms",
    "decode_version",
    "encode_version",
    "exposed_fields",
    "format_timestamp",
    "generate_id",
    "ms_to_datetime",
    "parse_timestamp",
    "printable",
    "to_camel",
    "truncate_ms",
    "wire_name",
    "wire_version",
]

UTC: Final = dt.UTC
#: What no database's text column can hold, nor a UTF-8 answer carry: a NUL character
#: (PostgreSQL text and jsonb refuse it) or a lone UTF-16 surrogate (no driver can encode
#: it). ``json.loads`` makes both from ``\u0000`` and ``\ud800`` escapes.
UNSTORABLE_TEXT: Final = re.compile("[\x00\ud800-\udfff]")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=UTC)

# -- who assigns a table's ids ----------------------------------------------------------------

#: Response header of every answer of a table whose ids the server assigns (an integer key):
#: its value is ``SERVER_ASSIGNED_IDS``. A table whose ids clients may choose sends none. Our
#: own extension (no Azure client reads it): the Python client refuses offline inserts there.
IDS_HEADER: Final = "X-Offline-Sync-Ids"
SERVER_ASSIGNED_IDS: Final = "server"
#: ``errorCode`` of the 400 answering an insert that sends an id to such a table.
ID_NOT_ACCEPTED: Final = "id_not_accepted"

# -- system fields ---------------------------------------------------------------------------

#: Model field names of the system fields, in wire order after ``id``.
SYSTEM_FIELDS: Final = ("id", "created_at", "updated_at", "version", "deleted")
#: Model field name → v2/v3 wire name.
SYSTEM_WIRE_NAMES: Final[Mapping[str, str]] = {
    "id": "id",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "version": "version",
    "deleted": "deleted",
}
#: Model field name → v1 wire name (``docs/protocol.rst`` §2.1).
V1_SYSTEM_WIRE_NAMES: Final[Mapping[str, str]] = {
    name: (wire if name == "id" else "__" + wire) for name, wire in SYSTEM_WIRE_NAMES.items()
}


def to_camel(name: str) -> str:
    """``due_date`` → ``dueDate``; ``task_id`` → ``taskId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- versions --------------------------------------------------------------------------------


_pack_version = struct.Struct(">q").pack


def encode_version(version: int | None) -> str | None:
    """The wire form of a version: base64 of its 8 big-endian bytes.

    SQLite calls it once a row of a page it writes as JSON (``wire_sql``), so an int goes
    straight through ``struct`` and ``binascii``: a quarter of the call's cost against
    ``int()``, ``int.to_bytes`` and ``base64``'s Python wrapper. Anything else (a float or a
    ``Decimal`` holding an integer) goes through ``int()``; a value outside the int64 range
    raises ``OverflowError``.
    """
    if version is None:
        return None
    try:
        packed = _pack_version(version)
    except struct.error:
        packed = int(version).to_bytes(8, "big", signed=True)
    return binascii.b2a_base64(packed, newline=False).decode("ascii")


def decode_version(value: str) -> int:
    """Inverse of ``encode_version``; raises ``ValueError`` on anything else."""
    raw = base64.b64decode(value.encode("ascii"), validate=True)
    if len(raw) != 8:
        raise ValueError("a version is 8 bytes")
    return int.from_bytes(raw, "big", signed=True)


#: The model field holding an imported row's version as its old server issued it (NULL for
#: every row written here). Never exposed as a column: it is the ``version`` on the wire.
IMPORTED_VERSION_FIELD: Final = "imported_version"
#: The longest imported version kept: the Datasync client accepts versions of up to 126
#: characters (``docs/protocol.rst`` §2.2).
IMPORTED_VERSION_MAX_LENGTH: Final = 126


def wire_version(version: int | None, imported: str | None = None) -> str | None:
    """A row's version on the wire: the imported one while the row has it, else ours."""
    return imported if imported is not None else encode_version(version)


def check_imported_version(value: object) -> str:
    """Return ``value`` if this server can keep honouring it as a row's version, else raise ``ValueError``.

    Every known backend issues base64 (SQL Server ``rowversion``: 8 bytes; the Node SQLite
    provider: its decimal counter's digits, 1 byte and up; Datasync's repositories: a 16-byte
    GUID), and ``If-Match`` values are parsed as base64, so a version must be non-empty
    base64 of at most ``IMPORTED_VERSION_MAX_LENGTH`` characters.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("a version is a non-empty string")
    if len(value) > IMPORTED_VERSION_MAX_LENGTH:
        raise ValueError(f"a version is at most {IMPORTED_VERSION_MAX_LENGTH} characters long")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("a version is base64 text") from exc
    if not raw:
        raise ValueError("a version is a non-empty string")
    return value


# -- timestamps ------------------------------------------------------------------------------


#: The latest timestamp a row can have, in milliseconds since the epoch:
#: 9999-12-31T23:59:59.999Z, Python's largest datetime (and .NET's largest DateTimeOffset) at
#: millisecond precision. A table's clock must stay at or below it: ``ms_to_datetime`` of a
#: later stamp raises ``OverflowError`` (``stamping.ClockExhausted`` says so first).
MAX_MS: Final = (dt.date.max - dt.date(1970, 1, 1)).days * 86_400_000 + 86_399_999


def truncate_ms(value: dt.datetime) -> dt.datetime:
    """``value`` at millisecond precision, the precision every stored timestamp has."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def ms_to_datetime(ms: int) -> dt.datetime:
    """An aware UTC datetime for milliseconds since the epoch (exact, no float rounding)."""
    return _EPOCH + dt.timedelta(milliseconds=ms)


def datetime_to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch; a naive ``value`` is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_timestamp(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, the one form every client parses (§2.2).

    A naive ``value`` is taken as UTC.
    """
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def parse_timestamp(value: str) -> dt.datetime:
    """A wire timestamp (``…SS.mmmZ``, or any ISO-8601 form) as an aware UTC datetime."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# -- ids -------------------------------------------------------------------------------------

ID_MAX_LENGTH: Final = 255
# §2.2: the v1/v2 Node rule. Control characters and " + ? \ / ` are forbidden.
_FORBIDDEN_ID_CHARS: Final = re.compile(r'[\x00-\x1f\x7f-\x9f"+?\\/`]')
# §2.2, ours: characters that make two ids look alike or reorder how an id is shown. Unicode
# format characters (Cf: zero-width U+200B-U+200F, bidi embeddings and overrides U+202A-U+202E,
# isolates U+2066-U+2069, the byte-order mark U+FEFF…) and line/paragraph separators.
_INVISIBLE_ID_CATEGORIES: Final = frozenset({"Cf", "Zl", "Zp"})


class InvalidId(ValueError):
    """A client-supplied id breaks the id rules (§2.2); the message names the rule."""


def generate_id() -> str:
    """A new id: 32 lowercase hex digits, as ``Guid.ToString("N")`` and the .NET client make them."""
    return uuid.uuid4().hex


def printable(text: str) -> str:
    """``text`` with its ``UNSTORABLE_TEXT`` characters written as ``\\uXXXX``, safe to echo."""
    return UNSTORABLE_TEXT.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def check_id(value: object) -> str:
    """Return ``value`` if it is a valid client id, else raise ``InvalidId`` naming the rule."""
    if not isinstance(value, str):
        raise InvalidId("The id must be a string.")
    if not value:
        raise InvalidId("The id must not be empty.")
    if len(value) > ID_MAX_LENGTH:
        raise InvalidId(f"The id must be at most {ID_MAX_LENGTH} characters long.")
    if value in (".", ".."):
        raise InvalidId("The id must not be '.' or '..'.")
    if _FORBIDDEN_ID_CHARS.search(value):
        raise InvalidId('The id must not contain control characters or any of the characters " + ? \\ / `.')
    if value.isspace():
        raise InvalidId("The id must not be only whitespace.")
    if value != value.strip():
        raise InvalidId("The id must not start or end with whitespace.")
    if not value.isascii():
        for char in value:
            category = unicodedata.category(char)
            if category == "Cs":
                raise InvalidId(f"The id must be valid Unicode text: it holds a lone surrogate (U+{ord(char):04X}).")
            if category in _INVISIBLE_ID_CATEGORIES:
                raise InvalidId(
                    "The id must not contain invisible formatting characters (zero-width, bidirectional "
                    f"or byte-order marks) or line separators: it holds U+{ord(char):04X}."
                )
    return value


# -- exposed columns -------------------------------------------------------------------------


def exposed_fields(model: Any, fields: Sequence[str] | None = None) -> list[Any]:
    """The concrete fields of ``model`` a table exposes, in wire order: id, user columns, system.

    ``fields`` names user columns by field name or attname (``task`` or ``task_id``); system
    fields are always exposed, ``imported_version`` never (it travels as ``version``). With
    ``fields=None`` every editable user column is. A name that is not a concrete column of
    ``model`` raises ``ValueError``: a typo must not silently hide a column. ``model`` is a
    Django model class, read through ``_meta`` only.
    """
    concrete: Iterable[Any] = model._meta.concrete_fields
    system = {f.name: f for f in concrete if f.name in SYSTEM_WIRE_NAMES}
    if fields is not None:
        known = {name for f in model._meta.concrete_fields for name in (f.name, f.attname)}
        unknown = [name for name in fields if name not in known]
        if unknown:
            raise ValueError(
                f"{model.__name__}: fields {unknown} are not columns "
                f"(choose from {sorted(f.name for f in model._meta.concrete_fields)})."
            )
    wanted = set(fields) if fields is not None else None
    user = [
        f
        for f in model._meta.concrete_fields
        if f.name not in SYSTEM_WIRE_NAMES
        and f.name != IMPORTED_VERSION_FIELD
        and (f.editable if wanted is None else (f.name in wanted or f.attname in wanted))
    ]
    ordered = [system["id"]] if "id" in system else []
    return ordered + user + [system[name] for name in SYSTEM_FIELDS if name != "id" and name in system]


def wire_name(field: Any) -> str:
    """The v2/v3 wire name of a model field: fixed for system fields, else camelCase attname."""
    return SYSTEM_WIRE_NAMES.get(field.name) or to_camel(field.attname)
