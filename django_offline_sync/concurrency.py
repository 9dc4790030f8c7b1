"""ETags from versions, and the ``If-Match`` / ``If-None-Match`` preconditions.

Header splitting and quoting use Django's own ``parse_etags``/``quote_etag``. What is ours
is the protocol's strictness (``docs/protocol.rst`` §6.2): one strong, quoted, base64 ETag or ``*``;
anything else is a 400 naming the problem. A well-formed version this server never issued
(base64 of another length, as a device that moved from another backend carries) is no
error: it matches no row, so the write is a conflict (412/409 with the server's row) — except
a row imported from that backend and not written here since, which still carries the version
the backend issued (``SyncModel.imported_version``) and matches it, byte for byte.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.utils.http import parse_etags, quote_etag

from .exceptions import InvalidPrecondition
from .wire import decode_version, encode_version


def etag_for(version: int | str | None) -> str | None:
    """The ETag header value for a row version (ours, or a wire version text): ``"`` + base64 + ``"``."""
    encoded = version if isinstance(version, str) else encode_version(version)
    return quote_etag(encoded) if encoded is not None else None


@dataclass(frozen=True)
class Precondition:
    """What ``If-Match`` (or a v2 body version) asked for: any existing row (``any``), one
    exact version, or, with ``version=None``, a version this server never issued, which no
    row matches."""

    any: bool = False
    version: int | None = None
    #: The bytes the sent base64 stands for: what an imported row's version is compared with.
    raw: bytes | None = None

    def matches(self, version: int, imported: str | None = None) -> bool:
        """Whether a row whose version is ``version`` (or, while it has one, ``imported``) matches."""
        if self.any:
            return True
        if imported is not None:
            return self.raw is not None and self.raw == base64.b64decode(imported)
        return self.version is not None and self.version == version


def parse_version_value(value: str, *, source: str) -> Precondition:
    """The precondition "the row's version is ``value``"; its ``version`` is ``None`` for base64
    that is not a version of ours (only an imported row can match it then, by ``raw``).

    Versions are opaque to clients (§2.2): a device that moved from another backend (CTK
    issues 16 bytes) still carries that backend's versions in its queue. Such a version is
    stale, not malformed, and the client settles it like any conflict. Only a value that is
    not base64 at all, or empty, is a 400 (``InvalidPrecondition``).
    """
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidPrecondition(f'{source} is not a version: expected base64, e.g. "AAAAAAAAB9E=".') from exc
    if not raw:
        raise InvalidPrecondition(f"{source} is empty; it must be a version.")
    try:
        return Precondition(version=decode_version(value), raw=raw)
    except ValueError:
        # Base64 of another length: another server's version, matched only by a row imported
        # from it that still has that version.
        return Precondition(raw=raw)


def parse_if_match(header: str | None) -> Precondition | None:
    """Parse an ``If-Match`` header; ``None`` when absent."""
    if header is None:
        return None
    if not header.strip():
        raise InvalidPrecondition("If-Match is empty.")
    tags = parse_etags(header)
    if tags == ["*"]:
        return Precondition(any=True)
    parts = [p for p in header.split(",") if p.strip()]
    if len(parts) > 1:
        raise InvalidPrecondition("If-Match must carry exactly one ETag.")
    if not tags:
        raise InvalidPrecondition('If-Match must be a quoted ETag, e.g. If-Match: "AAAAAAAAB9E=".')
    tag = tags[0]
    if tag.startswith("W/"):
        raise InvalidPrecondition("If-Match must be a strong ETag; weak ETags never match.")
    return parse_version_value(tag[1:-1], source="If-Match")


def if_none_match_hits(header: str | None, version: int | str) -> bool:
    """True when ``If-None-Match`` names the current version (or ``*``): answer 304.

    ``version``: the row's version, or its wire text (``SyncModel.etag_version``).
    """
    if not header:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    current = version if isinstance(version, str) else encode_version(version)
    return any(tag.removeprefix("W/").strip('"') == current for tag in tags)
