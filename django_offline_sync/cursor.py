"""The opaque keyset cursor carried in v3 nextLinks (and v1/v2 Link headers).

A cursor says "continue after the row ``(updated_at, id)``" for one query, one caller and a
limited time. It is signed with ``SECRET_KEY`` (``django.core.signing``, salt ``CURSOR_SALT``)
and bound to a digest of the table and query it came from and to a keyed tag of the caller
(the user's pk, or one marker for every anonymous caller), so a client can neither forge one,
move it to another query, nor replay another user's. It expires after ``CURSOR_MAX_AGE``
seconds. It only ever *adds* a condition to the caller's data view, so even a valid cursor
cannot widen what a user sees. It also carries the ``$count`` of the first page, so a
multi-page pull counts once, and the clock of the database that served the page
(``watermark``), so that the next page is never read from a database behind it
(``replicas.database_at``; several app servers, read replicas: ``docs/scaling.rst``).

The payload is signed, not encrypted: base64 JSON that the holder can read. What it could
read is its own data: the stamp and id of the last row of the page it was just sent, the count
it asked for and the rows left of its ``$top``. The caller and the query appear only as
digests, and the watermark (the table's last stamp, which tells of other users' writes) is
masked with a keyed pad drawn from the cursor's own position (``_pad``; deterministic, so the
same page gives the same link). Encrypting would need a
cryptography library as a dependency of every install and would hide nothing the same
response does not show (``docs/protocol.rst`` §3.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings as django_settings
from django.core import signing
from django.utils.crypto import salted_hmac

from .exceptions import InvalidCursor
from .settings import get_settings

CURSOR_PARAM = "__cursor"
#: The caller of a request with no authenticated user.
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Cursor:
    updated_ms: int | None  # None when the order is by id alone
    last_id: str
    count: int | None = None
    remaining: int | None = None  # rows left of the client's $top, if it sent one
    watermark: int | None = None  # the table's clock as the database that read the page showed it


def caller_of(request: Any) -> str:
    """Who a cursor is issued to: ``user:{pk}``, or ``ANONYMOUS`` without an authenticated user."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return f"user:{user.pk}"


def _caller_tag(caller: str) -> str:
    """A keyed tag of ``caller``: it binds the cursor without revealing a pk (pks are guessable)."""
    return _tag(get_settings().CURSOR_SALT, django_settings.SECRET_KEY, caller)


@lru_cache(maxsize=1024)
def _tag(salt: str, secret: str, caller: str) -> str:
    # Keyed on everything the tag depends on (a changed SECRET_KEY or salt makes new tags):
    # every page of a pull needs its caller's tag, and the HMAC is the same each time.
    return salted_hmac(salt + ".caller", caller, secret=secret, algorithm="sha256").hexdigest()[:16]


def query_digest(params: Iterable[tuple[str, str]], path: str = "", caller: str | None = None) -> str:
    """A digest of the table (its path) and the query options that define the row set and order,
    followed by ``.`` and the caller's tag when ``caller`` is given."""
    relevant = sorted((k.lower(), v) for k, v in params if k.lower() not in ("$skip", "$top", CURSOR_PARAM, "$count"))
    query = hashlib.sha256(repr((path.rstrip("/"), relevant)).encode()).hexdigest()[:16]
    return query if caller is None else f"{query}.{_caller_tag(caller)}"


def _pad(digest: str, updated_ms: int | None, last_id: str) -> int:
    """63 bits keyed by ``SECRET_KEY`` and the cursor's query and position: the watermark goes
    out XORed with it. Two cursors for the same position show only whether the clock moved
    between them."""
    seed = f"{digest}|{updated_ms}|{last_id}"
    tag = salted_hmac(get_settings().CURSOR_SALT + ".watermark", seed, algorithm="sha256").digest()
    return int.from_bytes(tag[:8], "big") >> 1


def dump(cursor: Cursor, digest: str) -> str:
    payload: dict[str, Any] = {"u": cursor.updated_ms, "i": cursor.last_id, "q": digest}
    if cursor.count is not None:
        payload["c"] = cursor.count
    if cursor.remaining is not None:
        payload["r"] = cursor.remaining
    if cursor.watermark is not None:
        payload["w"] = cursor.watermark ^ _pad(digest, cursor.updated_ms, cursor.last_id)
    return signing.dumps(payload, salt=get_settings().CURSOR_SALT, compress=False)


def load(token: str, digest: str) -> Cursor:
    settings = get_settings()
    try:
        payload = signing.loads(token, salt=settings.CURSOR_SALT, max_age=settings.CURSOR_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise InvalidCursor(
            f"The paging cursor has expired (cursors are valid for {settings.CURSOR_MAX_AGE} seconds); "
            "restart the pull from its first request."
        ) from exc
    except signing.BadSignature as exc:
        raise InvalidCursor("The paging cursor is invalid or has been tampered with.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("q"), str):
        raise InvalidCursor()
    sent_query, _, sent_caller = payload["q"].partition(".")
    query, _, caller = digest.partition(".")
    if sent_query != query:
        raise InvalidCursor("The paging cursor belongs to a different query.")
    if sent_caller != caller:
        raise InvalidCursor("The paging cursor was issued to another user; restart the pull from its first request.")
    updated, last_id = payload.get("u"), payload.get("i")
    if (updated is not None and not isinstance(updated, int)) or not isinstance(last_id, str):
        raise InvalidCursor()
    count, remaining, watermark = payload.get("c"), payload.get("r"), payload.get("w")
    if isinstance(watermark, int):
        watermark ^= _pad(payload["q"], updated, last_id)
    else:
        watermark = None
    return Cursor(
        updated,
        last_id,
        count if isinstance(count, int) else None,
        remaining if isinstance(remaining, int) else None,
        watermark,
    )
