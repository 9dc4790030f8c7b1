"""ETags from versions, and the ``If-Match`` / ``If-None-Match`` preconditions.

Header splitting and quoting use Django's own ``parse_etags``/``quote_etag``. What is ours
is the protocol's strictness (``docs/protocol.rst`` §6.2): one strong, quoted, base64 ETag or ``*``;
anything else is a 400 naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.http import parse_etags, quote_etag

from .exceptions import InvalidPrecondition
from .wire import decode_version, encode_version


def etag_for(version: int | None) -> str | None:
    """The ETag header value for a row version: ``"`` + base64 + ``"``."""
    encoded = encode_version(version)
    return quote_etag(encoded) if encoded is not None else None


@dataclass(frozen=True)
class Precondition:
    """What ``If-Match`` asked for: any existing row (``*``) or one exact version."""

    any: bool = False
    version: int | None = None

    def matches(self, version: int) -> bool:
        return self.any or self.version == version


def parse_version_value(value: str, *, source: str) -> int:
    try:
        return decode_version(value)
    except (ValueError, UnicodeEncodeError) as exc:
        message = f"{source} is not a version this server issued (expected base64 of 8 bytes)."
        raise InvalidPrecondition(message) from exc


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
    return Precondition(version=parse_version_value(tag[1:-1], source="If-Match"))


def if_none_match_hits(header: str | None, version: int) -> bool:
    """True when ``If-None-Match`` names the current version (or ``*``): answer 304."""
    if not header:
        return False
    tags = parse_etags(header)
    if tags == ["*"]:
        return True
    current = encode_version(version)
    return any(tag.removeprefix("W/").strip('"') == current for tag in tags)
