"""Client generations: detect which one sent a request, and speak its dialect back.

v1 is Azure Mobile Services (``__``-prefixed system columns, no version header), v2 is Azure
Mobile Apps (``ZUMO-API-VERSION: 2.0.0``), v3 is Datasync (``3.0.0``). One ``Adapter`` per
generation holds every difference (names, response shapes, status codes, error bodies), so
the viewset stays generation-agnostic. Facts: PROTOCOL.md §1.3, §2, §3.4, §5-§8, §12.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import status

from .exceptions import BadRequest, UnsupportedVersion
from .naming import SYSTEM_WIRE_NAMES, V1_SYSTEM_WIRE_NAMES
from .settings import sync_settings

VERSION_PARAM = "zumo-api-version"
_V2 = re.compile(r"^2\.0\.\d+$")
_V3 = re.compile(r"^3\.0(\.\d+)?$")
# v1 system-column names in a query: the strongest v1 signal after X-ZUMO-APPLICATION.
_V1_NAMES = re.compile(r"(?<![A-Za-z0-9_])__(createdat|updatedat|version|deleted)\b", re.IGNORECASE)
V1_QUERY_OPTIONS = ("$filter", "$orderby", "$select")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")


def _v1_name_in(text: str | None) -> re.Match[str] | None:
    """A v1 system-column name used as a property (not inside a string literal)."""
    return _V1_NAMES.search(_STRING_LITERAL.sub("''", text or ""))

VERSION_HELP = "For more information and supported clients see: http://go.microsoft.com/fwlink/?LinkID=690568#2.0.0"


class Adapter:
    """What differs between generations. Subclasses override class attributes mostly."""

    name = ""
    system_names: dict[str, str] = SYSTEM_WIRE_NAMES
    deleted_status = status.HTTP_404_NOT_FOUND
    undelete_status = status.HTTP_200_OK
    include_deleted_param = "__includeDeleted"

    def __init__(self, request: Any = None, version: str | None = None) -> None:
        self.request = request
        self.version = version

    def validate(self) -> None:
        """Raise 400 for what this generation's clients never send (mixed dialects)."""
        if self.request is None or self.version is None:
            return
        for option in V1_QUERY_OPTIONS:
            found = _v1_name_in(_param(self.request, option))
            if found:
                raise BadRequest(
                    f"{option} uses the v1 name {found.group(0)!r}, but the request declares "
                    f"ZUMO-API-VERSION {self.version}; spell it {_plain_name(found.group(1))!r}."
                )
        if _param(self.request, "__systemproperties") is not None:
            raise BadRequest(
                f"__systemproperties is a v1 option; a ZUMO-API-VERSION {self.version} client "
                "receives every system property."
            )

    # -- entities -------------------------------------------------------------------
    def render(self, item: dict[str, Any]) -> dict[str, Any]:
        """Turn a v2/v3-named wire dict into this generation's entity."""
        return item

    def render_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return items

    def always_selected(self) -> set[str]:
        """Columns a ``$select`` keeps even when it does not name them."""
        return set()

    def include(self, names: set[str]) -> None:
        """Return these system columns too (v1 returns only the ones asked for)."""

    # -- lists ----------------------------------------------------------------------
    def list_payload(self, items: list[dict[str, Any]], count: int | None, next_link: str | None) -> Any:
        if count is None:
            return items
        return {"results": items, "count": count}

    # -- status codes ---------------------------------------------------------------
    def conflict_status(self, if_match_sent: bool) -> int:
        return status.HTTP_412_PRECONDITION_FAILED if if_match_sent else status.HTTP_409_CONFLICT

    # -- errors ---------------------------------------------------------------------
    def error_payload(self, status_code: int, message: str, extra: dict[str, Any]) -> Any:
        return {"message": message, "error": message, **extra}


class V1Adapter(Adapter):
    """Azure Mobile Services: ``__`` names, system columns only on request (§2.4)."""

    name = "v1"
    system_names = V1_SYSTEM_WIRE_NAMES
    KNOWN = {"createdat": "createdAt", "updatedat": "updatedAt", "version": "version", "deleted": "deleted"}

    def __init__(self, request: Any = None, version: str | None = None) -> None:
        super().__init__(request, version)
        self.requested: set[str] = set()

    KNOWN_OPTIONS = {"$filter", "$orderby", "$skip", "$top", "$select", "$inlinecount", "$count"}
    KNOWN_PRIVATE = {"__includedeleted", "__systemproperties", "__cursor"}

    def validate(self) -> None:
        self.requested = self._requested_system_properties()
        for key in self.request.GET if self.request is not None else ():
            lowered = key.lower()
            if (key.startswith("$") and key not in self.KNOWN_OPTIONS) or (
                key.startswith("__") and lowered not in self.KNOWN_PRIVATE
            ):
                # The v1 runtime's rule (PROTOCOL.md §2.4): those prefixes are reserved.
                raise BadRequest(f"Custom query parameter names must not start with $ or __ ({key!r}).")

    def _requested_system_properties(self) -> set[str]:
        if self.request is None:
            return set()
        raw = _param(self.request, "__systemproperties")
        if raw is None:
            return set()
        wanted: set[str] = set()
        for part in raw.split(","):
            name = part.strip().removeprefix("__").lower()
            if not name:
                continue
            if name == "*":
                wanted.update(self.KNOWN.values())
            elif name in self.KNOWN:
                wanted.add(self.KNOWN[name])
            else:
                raise BadRequest(
                    f"The value {part.strip()!r} is not a supported system property "
                    "(use __createdAt, __updatedAt, __version, __deleted or *)."
                )
        return wanted

    def render(self, item: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key in self.KNOWN.values():
                if key in self.requested:
                    out["__" + key] = value
            else:
                out[key] = value
        return out

    def render_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.render(item) for item in items]

    def always_selected(self) -> set[str]:
        return set(self.requested)

    def include(self, names: set[str]) -> None:
        """Also return these system columns (named in ``$select``)."""
        self.requested |= {name for name in names if name in self.KNOWN.values()}

    def conflict_status(self, if_match_sent: bool) -> int:
        return status.HTTP_412_PRECONDITION_FAILED

    def error_payload(self, status_code: int, message: str, extra: dict[str, Any]) -> Any:
        return {"code": status_code, "error": f"Error: {message}", **extra}


class V2Adapter(Adapter):
    """Azure Mobile Apps, ``ZUMO-API-VERSION: 2.0.x``."""

    name = "v2"


class V3Adapter(Adapter):
    """Datasync, ``ZUMO-API-VERSION: 3.0.x`` (or a CTK client that sends no version)."""

    name = "v3"
    deleted_status = status.HTTP_410_GONE
    include_deleted_param = "__includedeleted"

    def list_payload(self, items: list[dict[str, Any]], count: int | None, next_link: str | None) -> Any:
        return {"items": items, "count": count, "nextLink": next_link}

    def error_payload(self, status_code: int, message: str, extra: dict[str, Any]) -> Any:
        return {"title": message, "status": status_code, **extra}


ADAPTERS: dict[str, type[Adapter]] = {"v1": V1Adapter, "v2": V2Adapter, "v3": V3Adapter}


def _param(request: Any, name: str) -> str | None:
    """A query parameter by case-insensitive name (PROTOCOL.md §1.3, §3.2)."""
    params = request.GET
    if name in params:
        return params[name]
    lowered = name.lower()
    for key in params:
        if key.lower() == lowered:
            return params[key]
    return None


def requested_version(request: Any) -> str | None:
    """``ZUMO-API-VERSION``: the query parameter wins over the header (.NET and AMA order)."""
    value = _param(request, VERSION_PARAM)
    if value is None:
        value = request.headers.get("ZUMO-API-VERSION")
    return value.strip() if value is not None else None


def has_v1_markers(request: Any) -> bool:
    if "X-ZUMO-APPLICATION" in request.headers:
        return True
    if _param(request, "__systemproperties") is not None:
        return True
    return any(_v1_name_in(_param(request, option)) for option in V1_QUERY_OPTIONS)


def detect(request: Any) -> Adapter:
    """The adapter for ``request``; raises 400 for an unknown or disabled generation.

    Call ``adapter.validate()`` next: its 400s (mixed dialects) are then rendered in the
    caller's own error shape.
    """
    enabled = list(sync_settings.ENABLED_GENERATIONS)
    version = requested_version(request)
    if version is not None:
        if _V2.match(version):
            generation = "v2"
        elif _V3.match(version):
            generation = "v3"
        else:
            raise UnsupportedVersion(
                f"An invalid API version was specified in the request, this request needs to specify a "
                f"ZUMO-API-VERSION of '2.0.0' or '3.0.0'. {VERSION_HELP}"
            )
    elif has_v1_markers(request):
        generation = "v1"
    else:
        generation = sync_settings.DEFAULT_GENERATION
        if generation is None:
            raise UnsupportedVersion(
                "No API version was specified in the request, this request needs to specify a "
                f"ZUMO-API-VERSION of '2.0.0' or '3.0.0'. {VERSION_HELP}"
            )
    if generation not in enabled:
        raise UnsupportedVersion(f"This server does not serve {generation} clients (enabled: {', '.join(enabled)}).")
    return ADAPTERS[generation](request, version)


def _plain_name(lowered: str) -> str:
    return {"createdat": "createdAt", "updatedat": "updatedAt"}.get(lowered, lowered)
