"""JSON for the table endpoints: orjson, and a content negotiation that knows the clients.

Every sync client asks for JSON (``Accept: application/json``, or nothing), and a page of
rows is the largest thing the server writes, so both steps sit on the hot path of a pull:

* ``SyncJSONRenderer`` encodes with orjson (compact UTF-8, as DRF's ``JSONRenderer`` with
  its default ``COMPACT_JSON``/``UNICODE_JSON``), several times faster on a page of rows;
  a ``Decimal`` is written as an exact JSON number (``12.30``, not the nearest double), and
  other values orjson does not know (lazy translations) go through DRF's encoder. An indented
  answer (``Accept: application/json; indent=4``, the browsable API) is orjson's two-space
  indentation, so every form of an answer carries the same numbers.
* ``SyncContentNegotiation`` answers the clients' ``Accept`` values without DRF's general
  media-type matching; anything else (a browser asking for HTML) takes DRF's own path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.utils.encoders import JSONEncoder

__all__ = ["SyncContentNegotiation", "SyncJSONRenderer"]

_FALLBACK: Final = JSONEncoder().default
_INT64: Final = range(-(2**63), 2**64)  # what orjson writes (int64 and uint64)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Exact: DRF's encoder (and so the JSON) would carry float(value), the nearest double,
        # which loses digits past the 15th-17th (money, measurements). A JSON number rather
        # than a string, because clients store it in numeric columns: the v2 Cordova SQLite
        # store refuses a string for a "real" column. NaN and the infinities have no JSON form.
        return orjson.Fragment(format(value, "f")) if value.is_finite() else None
    return _FALLBACK(value)


def _big_ints_as_fragments(data: Any) -> Any:
    """``data`` with every integer orjson cannot write replaced by its exact JSON text."""
    if isinstance(data, int) and not isinstance(data, bool):
        return data if data in _INT64 else orjson.Fragment(str(data))
    if isinstance(data, dict):
        return {k: _big_ints_as_fragments(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_big_ints_as_fragments(v) for v in data]
    return data


class SyncJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer`` output, encoded by orjson, with decimals exact."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:  # DRF's stub says str; every renderer returns bytes
        if data is None:
            return b""
        # A human asked for indentation (a browser, the browsable API): orjson's two spaces.
        option = orjson.OPT_INDENT_2 if accepted_media_type and "indent=" in accepted_media_type else 0
        try:
            return orjson.dumps(data, default=_default, option=option)
        except orjson.JSONEncodeError:
            # An integer beyond 64 bits (a JSON column can hold one): written as its digits.
            return orjson.dumps(_big_ints_as_fragments(data), default=_default, option=option)


# What the clients send: nothing, a wildcard, or JSON (the .NET client adds a charset).
_JSON_ACCEPTS: Final = frozenset({"", "*/*", "application/json", "application/json; charset=utf-8"})


class SyncContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        accept = request.META.get("HTTP_ACCEPT", "").strip().lower()
        renderers = list(renderers)
        if not format_suffix and accept in _JSON_ACCEPTS and isinstance(renderers[0], SyncJSONRenderer):
            return renderers[0], renderers[0].media_type
        chosen: tuple[BaseRenderer, str] = super().select_renderer(request, renderers, format_suffix)
        return chosen
