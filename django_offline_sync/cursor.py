"""The opaque keyset cursor carried in v3 nextLinks (and v1/v2 Link headers).

A cursor says "continue after the row ``(updated_at, id)``" for one query. It is signed
with ``SECRET_KEY`` (``django.core.signing``) and bound to a digest of the query it came from,
so a client can neither forge one nor move it to another query. It only ever *adds* a
condition to the caller's data view, so even a valid cursor cannot widen what a user sees.
It also carries the ``$count`` of the first page, so a multi-page pull counts once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core import signing

from .exceptions import InvalidCursor
from .settings import get_settings

CURSOR_PARAM = "__cursor"


@dataclass(frozen=True)
class Cursor:
    updated_ms: int | None  # None when the order is by id alone
    last_id: str
    count: int | None = None
    remaining: int | None = None  # rows left of the client's $top, if it sent one


def query_digest(params: Iterable[tuple[str, str]], path: str = "") -> str:
    """A digest of the table (its path) and the query options that define the row set and order."""
    relevant = sorted((k.lower(), v) for k, v in params if k.lower() not in ("$skip", "$top", CURSOR_PARAM, "$count"))
    return hashlib.sha256(repr((path.rstrip("/"), relevant)).encode()).hexdigest()[:16]


def dump(cursor: Cursor, digest: str) -> str:
    payload: dict[str, Any] = {"u": cursor.updated_ms, "i": cursor.last_id, "q": digest}
    if cursor.count is not None:
        payload["c"] = cursor.count
    if cursor.remaining is not None:
        payload["r"] = cursor.remaining
    return signing.dumps(payload, salt=get_settings().CURSOR_SALT, compress=False)


def load(token: str, digest: str) -> Cursor:
    try:
        payload = signing.loads(token, salt=get_settings().CURSOR_SALT)
    except signing.BadSignature as exc:
        raise InvalidCursor("The paging cursor is invalid or has been tampered with.") from exc
    if not isinstance(payload, dict) or payload.get("q") != digest:
        raise InvalidCursor("The paging cursor belongs to a different query.")
    updated, last_id = payload.get("u"), payload.get("i")
    if (updated is not None and not isinstance(updated, int)) or not isinstance(last_id, str):
        raise InvalidCursor()
    count, remaining = payload.get("c"), payload.get("r")
    return Cursor(
        updated,
        last_id,
        count if isinstance(count, int) else None,
        remaining if isinstance(remaining, int) else None,
    )
