"""JSON for the table endpoints: orjson, and a content negotiation that knows the clients.

Every sync client asks for JSON (``Accept: application/json``, or nothing), and a page of
rows is the largest thing the server writes, so both steps sit on the hot path of a pull:

* ``SyncJSONRenderer`` encodes with orjson (compact UTF-8, as DRF's ``JSONRenderer`` with
  its default ``COMPACT_JSON``/``UNICODE_JSON``), several times faster on a page of rows;
  values orjson does not know (lazy translations, ``Decimal``) go through DRF's encoder.
* ``SyncContentNegotiation`` answers the clients' ``Accept`` values without DRF's general
  media-type matching; anything else (a browser asking for HTML) takes DRF's own path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.utils.encoders import JSONEncoder

__all__ = ["SyncContentNegotiation", "SyncJSONRenderer"]

_FALLBACK: Final = JSONEncoder().default


def _default(value: Any) -> Any:
    return _FALLBACK(value)


class SyncJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer`` output, encoded by orjson."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:  # DRF's stub says str; every renderer returns bytes
        if data is None:
            return b""
        if accepted_media_type and "indent=" in accepted_media_type:
            return super().render(data, accepted_media_type, renderer_context)  # a human asked for indentation
        try:
            return orjson.dumps(data, default=_default)
        except orjson.JSONEncodeError:
            # e.g. an integer beyond 64 bits: DRF's encoder writes what orjson refuses
            return super().render(data, accepted_media_type, renderer_context)


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
