"""Client generations: which one sent a request, and everything that differs between them.

v1 is Azure Mobile Services (``__``-prefixed system columns, no version header), v2 is Azure
Mobile Apps (``ZUMO-API-VERSION: 2.0.0``), v3 is Datasync (``3.0.0``). The table endpoints are
generation-agnostic; what differs lives here and only here (``docs/protocol.rst`` §1.3, §2,
§3.3-§3.4, §5-§8, §12):

* ``ZumoVersioning`` is a DRF versioning scheme: it detects the generation and DRF sets
  ``request.version`` to ``"v1"``, ``"v2"`` or ``"v3"``.
* ``Generation`` is a stateless policy, one instance per generation (``policy_for``): names,
  entity and list shapes, page sizes, where the next-page link goes, the body-version
  precondition, replace over a tombstone, status codes and error bodies.

No other module compares generation names.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from django.core.exceptions import ImproperlyConfigured
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.versioning import BaseVersioning
from rest_framework.views import APIView

from .concurrency import Precondition, parse_version_value
from .exceptions import (
    EntityConflict,
    InvalidQueryParameter,
    ItemGone,
    ItemNotFound,
    MixedGeneration,
    ODataError,
    PreconditionFailed,
    UniqueConflict,
    UnsupportedVersion,
)
from .query.options import include_deleted_option, query_param
from .query.pull import pull_boundary
from .settings import GenerationName, get_settings
from .wire import SYSTEM_WIRE_NAMES, V1_SYSTEM_WIRE_NAMES

if TYPE_CHECKING:
    from .query.options import ODataQuery

__all__ = ["Generation", "V1Generation", "V2Generation", "V3Generation", "ZumoVersioning", "policy_for"]

VERSION_PARAM: Final = "zumo-api-version"
_V2: Final = re.compile(r"^2\.0\.\d+$")
_V3: Final = re.compile(r"^3\.0(\.\d+)?$")
# v1 system-column names in a query: the strongest v1 signal after X-ZUMO-APPLICATION.
_V1_NAMES: Final = re.compile(r"(?<![A-Za-z0-9_])__(createdat|updatedat|version|deleted)\b", re.IGNORECASE)
_V1_QUERY_OPTIONS: Final = ("$filter", "$orderby", "$select")
#: ``ZUMO/{major}.{minor} (lang=…; …)``: the ``X-ZUMO-VERSION`` (and ``User-Agent``) of the
#: Azure Mobile Services and Mobile Apps SDKs (§1.2); v3 clients send ``Datasync/…`` instead.
_ZUMO_SDK: Final = re.compile(r"^\s*ZUMO/(\d+)\.\d+(.*)$", re.IGNORECASE | re.DOTALL)
_STRING_LITERAL: Final = re.compile(r"'(?:[^']|'')*'")
_VERSION_HELP: Final = (
    "For more information and supported clients see: http://go.microsoft.com/fwlink/?LinkID=690568#2.0.0"
)
#: v2/v3 wire names of the system columns other than ``id``.
_SYSTEM_COLUMNS: Final = frozenset(wire for name, wire in SYSTEM_WIRE_NAMES.items() if name != "id")
#: v2/v3 wire name → v1 wire name, for the system columns.
_TO_V1: Final = {SYSTEM_WIRE_NAMES[name]: V1_SYSTEM_WIRE_NAMES[name] for name in SYSTEM_WIRE_NAMES if name != "id"}
#: A system property as v1 queries may spell it, lower-cased without ``__`` → its v2/v3 name.
_SYSTEM_PROPERTIES: Final = {wire.lower(): wire for wire in _SYSTEM_COLUMNS}

#: A row on the wire: column name → JSON value.
Item = dict[str, Any]


def _v1_name_in(text: str | None) -> re.Match[str] | None:
    """A v1 system-column name used as a property (not inside a string literal)."""
    if text is None or "__" not in text:
        # Every v1 name starts with "__", and blanking string literals never makes one: no
        # match, without two regular expressions over every request's absent or plain options.
        return None
    return _V1_NAMES.search(_STRING_LITERAL.sub("''", text))


class Generation:
    """The policy of one client generation. Stateless: one shared instance each."""

    name: ClassVar[GenerationName]
    #: Model field name → the system columns' wire names in request and response bodies.
    system_names: ClassVar[Mapping[str, str]] = SYSTEM_WIRE_NAMES
    #: Status for an id request that addresses a soft-deleted row.
    deleted_status: ClassVar[int] = status.HTTP_404_NOT_FOUND
    #: Status of a successful undelete (``POST /tables/{table}/{id}``).
    undelete_status: ClassVar[int] = status.HTTP_200_OK
    #: Whether the v1/v2 pull's ``$skip`` is applied past the boundary stamp (§4.4).
    skips_past_pull_boundary: ClassVar[bool] = True
    #: Whether ``__systemproperties`` (a v1 option) is a 400 rather than ignored (§2.4).
    refuses_system_properties: ClassVar[bool] = True
    #: The method this generation's clients update a row with (a batch ``update`` does the same).
    update_method: ClassVar[str] = "PATCH"

    # -- requests ---------------------------------------------------------------------------
    def validate_request(self, request: Request) -> None:
        """Raise 400 for what this generation's clients never send (mixed dialects)."""
        for option in _V1_QUERY_OPTIONS:
            found = _v1_name_in(query_param(request.GET, option))
            if found:
                plain = _SYSTEM_PROPERTIES[found.group(1).lower()]
                raise MixedGeneration(
                    f"{option} uses the v1 name {found.group(0)!r}, but the request declares "
                    f"ZUMO-API-VERSION {requested_version(request)}; spell it {plain!r}."
                )
        if self.refuses_system_properties and query_param(request.GET, "__systemproperties") is not None:
            raise MixedGeneration(
                f"__systemproperties is a v1 option; a ZUMO-API-VERSION {requested_version(request)} client receives "
                "every system property."
            )

    def include_deleted(self, request: Request) -> bool:
        """``__includeDeleted`` (any case, as every generation's servers read it) as a boolean."""
        return include_deleted_option(request.GET)

    def body_precondition(self, system: Mapping[str, Any]) -> Precondition | None:
        """The expected version a write body carries, for generations that honour one."""
        return None

    # -- paging -----------------------------------------------------------------------------
    def page_size(self, top: int | None) -> int:
        """Rows in one page for ``$top`` (``None``: absent); 400 above the generation's maximum.

        v1/v2: ``$top`` itself, ``PAGE_SIZE`` when absent, as the v1 runtime and the v2 Node
        server serve it. v1 has no next link, and the v2 JS, Android and iOS clients ignore the
        ``Link`` header, so a page cut short of ``$top`` would silently lose rows (§3.3).
        """
        settings = get_settings()
        _check_top(top, settings.MAX_TOP)
        return settings.PAGE_SIZE if top is None else top

    def pull_boundary(self, query: ODataQuery) -> dt.datetime | None:
        """``T`` when this list request is a v1/v2 pull page (``updatedAt ge T`` with tombstones)."""
        if not self.skips_past_pull_boundary or not query.include_deleted:
            return None
        return pull_boundary(query.filter_node)

    def list_response(
        self, request: Request, items: list[Item], count: int | None, next_query: str | None
    ) -> Response:
        """The list answer: a bare array, or ``{results, count}`` with ``$inlinecount``.

        The next page's link goes into a ``Link`` header in the form the .NET client parses
        (no angle brackets, unquoted ``rel``; §3.4).
        """
        response = Response(items if count is None else {"results": items, "count": count})
        if next_query is not None and get_settings().LINK_HEADER:
            response["Link"] = f"{request.build_absolute_uri(request.path)}?{next_query}; rel=next"
        return response

    # -- entities ---------------------------------------------------------------------------
    def renders_as_is(self, select: Iterable[str] | None) -> bool:
        """Whether ``render`` returns v2/v3 wire rows unchanged (so the database may write them)."""
        return select is None

    def render(self, request: Request, items: list[Item], select: Iterable[str] | None = None) -> list[Item]:
        """v2/v3-named wire dicts as this generation's entities, cut to ``$select`` if given."""
        if select is None:
            return items
        wanted = frozenset(select)
        return [{k: v for k, v in item.items() if k in wanted} for item in items]

    # -- outcomes ---------------------------------------------------------------------------
    def conflict(
        self, request: Request, item: Item, etag: str | None, *, if_match_sent: bool, duplicate: bool = False
    ) -> EntityConflict:
        """The conflict carrying the server's row ``item`` (v2/v3 names) in this generation's shape.

        A duplicate insert is 409 in every generation (§5); a version mismatch is 412 when the
        expected version came from ``If-Match``, else 409 (§6.2).
        """
        entity = self._conflict_entity(request, item)
        return (PreconditionFailed if if_match_sent and not duplicate else UniqueConflict)(entity, etag)

    def _conflict_entity(self, request: Request, item: Item) -> Item:
        return self.render(request, [item])[0]

    def deleted_error(self) -> APIException:
        return ItemNotFound()

    def undeletes_on_replace(
        self, request: Request, *, replace: bool, precondition: Precondition | None, sent_deleted: Any
    ) -> bool:
        """A write addressed a tombstone: True to undelete it, False to write it as deleted.

        Raises the generation's "deleted" error when the write is refused (the default).
        """
        raise self.deleted_error()

    def error_body(self, status_code: int, message: str, extra: Mapping[str, Any]) -> Any:
        return {"message": message, "error": message, **extra}


class V1Generation(Generation):
    """Azure Mobile Services: ``__`` names, system columns only on request (§2.4)."""

    name = "v1"
    system_names = V1_SYSTEM_WIRE_NAMES
    _KNOWN_OPTIONS: ClassVar = frozenset({"$filter", "$orderby", "$skip", "$top", "$select", "$inlinecount", "$count"})
    _KNOWN_PRIVATE: ClassVar = frozenset({"__includedeleted", "__systemproperties", "__cursor"})

    def validate_request(self, request: Request) -> None:
        for key in request.GET:
            if (key.startswith("$") and key not in self._KNOWN_OPTIONS) or (
                key.startswith("__") and key.lower() not in self._KNOWN_PRIVATE
            ):
                # The v1 runtime's rule (§2.4): those prefixes are reserved.
                raise InvalidQueryParameter(f"Custom query parameter names must not start with $ or __ ({key!r}).")
        self._requested(request)

    def _requested(self, request: Request) -> frozenset[str]:
        """The system columns ``__systemproperties`` asks for (v2/v3 spelling)."""
        raw = query_param(request.GET, "__systemproperties")
        if raw is None:
            return frozenset()
        wanted: set[str] = set()
        for part in raw.split(","):
            name = part.strip().removeprefix("__").lower()
            if not name:
                continue
            if name == "*":
                if len([p for p in raw.split(",") if p.strip()]) > 1:
                    raise InvalidQueryParameter(
                        f"The value {raw!r} of __systemproperties is not valid: '*' must stand alone "
                        "(use * or a list of __createdAt, __updatedAt, __version, __deleted)."
                    )
                wanted.update(_SYSTEM_PROPERTIES.values())
            elif name in _SYSTEM_PROPERTIES:
                wanted.add(_SYSTEM_PROPERTIES[name])
            else:
                raise InvalidQueryParameter(
                    f"The value {part.strip()!r} is not a supported system property "
                    "(use __createdAt, __updatedAt, __version, __deleted or *)."
                )
        return frozenset(wanted)

    def renders_as_is(self, select: Iterable[str] | None) -> bool:
        return False  # v1 renames the system columns and shows them on request only

    def render(self, request: Request, items: list[Item], select: Iterable[str] | None = None) -> list[Item]:
        """System columns only where ``__systemproperties`` or ``$select`` names them, as ``__name``."""
        selected = frozenset(select) if select is not None else None
        shown = self._requested(request) | (selected & _SYSTEM_COLUMNS if selected is not None else frozenset())

        def keep(key: str) -> bool:
            if key in _SYSTEM_COLUMNS:
                return key in shown
            return selected is None or key in selected

        return [{_TO_V1.get(key, key): value for key, value in item.items() if keep(key)} for item in items]

    def conflict(
        self, request: Request, item: Item, etag: str | None, *, if_match_sent: bool, duplicate: bool = False
    ) -> EntityConflict:
        entity = self._conflict_entity(request, item)
        # v1 answers every version mismatch with 412, a duplicate insert with 409.
        return (UniqueConflict if duplicate else PreconditionFailed)(entity, etag)

    def _conflict_entity(self, request: Request, item: Item) -> Item:
        """The whole row with every system property, whatever the request asked for: the v1
        runtime re-reads the row for its error body, and apps retry with its ``__version``
        (§11b)."""
        return {_TO_V1.get(key, key): value for key, value in item.items()}

    def error_body(self, status_code: int, message: str, extra: Mapping[str, Any]) -> Any:
        return {"code": status_code, "error": f"Error: {message}", **extra}


class V2Generation(Generation):
    """Azure Mobile Apps, ``ZUMO-API-VERSION: 2.0.x``."""

    name = "v2"
    # v2 clients may still send it (the .NET client keeps the option); both v2 servers ignore it (§2.4).
    refuses_system_properties = False

    def body_precondition(self, system: Mapping[str, Any]) -> Precondition | None:
        """v2 servers take a version in the body as the concurrency token (§6.2); 409 on mismatch,
        as for a version this server never issued (another backend's: no row has it)."""
        sent = system.get("version")
        if isinstance(sent, str) and sent:
            return parse_version_value(sent, source="The body version")
        return None


class V3Generation(Generation):
    """Datasync, ``ZUMO-API-VERSION: 3.0.x`` (or a CTK client that sends no version)."""

    name = "v3"
    deleted_status = status.HTTP_410_GONE
    update_method = "PUT"  # Datasync clients replace
    skips_past_pull_boundary = False  # v3 clients page with nextLink, never with ge + $skip

    def page_size(self, top: int | None) -> int:
        settings = get_settings()
        _check_top(top, settings.V3_MAX_TOP)
        return settings.V3_PAGE_SIZE if top is None else min(top, settings.V3_PAGE_SIZE)

    def list_response(
        self, request: Request, items: list[Item], count: int | None, next_query: str | None
    ) -> Response:
        next_link = None if next_query is None else self._next_link(request, next_query)
        return Response({"items": items, "count": count, "nextLink": next_link})

    @staticmethod
    def _next_link(request: Request, query_string: str) -> str:
        """``nextLink`` in the form the calling client can follow (§3.4): what it asks for in
        ``X-ZUMO-Options``, else ``NEXT_LINK_FORMAT``, whose default ``"auto"`` chooses by
        client family (``_client_next_link``)."""
        options = request.headers.get("X-ZUMO-Options", "")
        if "nextlink=path" in options.replace(" ", "").lower():
            return request.path + "?" + query_string
        style = get_settings().NEXT_LINK_FORMAT
        if style == "auto":
            style = _client_next_link(request)
        if style == "path":
            return request.path + "?" + query_string
        if style == "absolute":
            return request.build_absolute_uri(request.path) + "?" + query_string
        return query_string

    def deleted_error(self) -> APIException:
        return ItemGone()

    def undeletes_on_replace(
        self, request: Request, *, replace: bool, precondition: Precondition | None, sent_deleted: Any
    ) -> bool:
        """PUT over a tombstone (§9(c)): with ``__includedeleted`` the body's ``deleted`` decides;
        an unconditional PUT that does not send ``deleted: true`` undeletes (the CTK client's
        client-wins turns a conflicting insert into exactly this PUT)."""
        if replace:
            if self.include_deleted(request):
                return sent_deleted is False
            if precondition is None and sent_deleted is not True:
                return True
        raise self.deleted_error()

    def error_body(self, status_code: int, message: str, extra: Mapping[str, Any]) -> Any:
        return {"title": message, "status": status_code, **extra}


V1: Final = V1Generation()
V2: Final = V2Generation()
V3: Final = V3Generation()
_POLICIES: Final[Mapping[str, Generation]] = {"v1": V1, "v2": V2, "v3": V3}


def policy_for(version: str | None) -> Generation:
    """The policy of ``request.version``; v2's before a generation was chosen (e.g. for the
    400 that refuses an unsupported version)."""
    if version is None:
        return V2
    try:
        return _POLICIES[version]
    except KeyError:
        raise ImproperlyConfigured(f"request.version is {version!r}, not a client generation.") from None


#: ``Datasync/{major}…`` in a v3 client's ``User-Agent``/``X-ZUMO-VERSION`` (after an app's prefix).
_DATASYNC_AGENT: Final = re.compile(r"(?:^|\s)Datasync/(\d+)", re.IGNORECASE)
#: The first Community Toolkit client version (8.0.0); Microsoft.Datasync.Client is 4.x-6.x.
_CTK_FIRST_MAJOR: Final = 8


def _major(digits: str) -> int:
    """A client's major version from a header's digits. Past nine digits it is only "large":
    ``int()`` refuses more than 4300 digits, and no client's major needs more than a few."""
    digits = digits.lstrip("0")
    return int(digits or "0") if len(digits) <= 9 else 10**9


def _client_next_link(request: Request) -> Literal["query", "absolute"]:
    """The ``nextLink`` form the calling v3 client follows, from its user agent (§3.4).

    * The TypeScript client (``Datasync/5.0.0-alpha.1 core-rest-pipeline/…``; in a browser the
      agent goes in ``x-ms-useragent``) calls ``new URL(nextLink)``: absolute.
    * Microsoft.Datasync.Client 4.x-6.x (``Datasync/6.0.x (lang=Managed; …)``) calls
      ``new Uri(nextLink)``, absolute only (its later versions send ``X-ZUMO-Options:
      nextLink=path``, honoured before this).
    * The Community Toolkit client (``Datasync/8.x`` and later) appends it to the table's path
      as a query string; so does any other client (the server's previous default).
    """
    agents = [request.headers.get(h, "") for h in ("User-Agent", "X-ZUMO-VERSION", "X-MS-UserAgent")]
    if any("core-rest-pipeline/" in agent.lower() for agent in agents):
        return "absolute"
    for agent in agents:
        match = _DATASYNC_AGENT.search(agent)
        if match is not None:
            return "absolute" if _major(match.group(1)) < _CTK_FIRST_MAJOR else "query"
    return "query"


def _check_top(top: int | None, maximum: int) -> None:
    if top is None:
        return
    if top < 0:
        raise ODataError("$top must not be negative", option="$top", position=0, expected="a non-negative integer")
    if top > maximum:
        raise ODataError(
            f"You cannot request more than {maximum} records", option="$top", position=0, expected=f"at most {maximum}"
        )


# -- detection -------------------------------------------------------------------------------


def requested_version(request: Request) -> str | None:
    """``ZUMO-API-VERSION``: the query parameter wins over the header (.NET and AMA order)."""
    value = query_param(request.GET, VERSION_PARAM)
    if value is None:
        value = request.headers.get("ZUMO-API-VERSION")
    return value.strip() if value is not None else None


def _has_v1_markers(request: Request) -> bool:
    if "X-ZUMO-APPLICATION" in request.headers:
        return True
    if query_param(request.GET, "__systemproperties") is not None:
        return True
    return any(_v1_name_in(query_param(request.GET, option)) for option in _V1_QUERY_OPTIONS)


def _sdk_generation(request: Request) -> GenerationName | None:
    """The generation an Azure Mobile SDK names in ``X-ZUMO-VERSION`` (else ``User-Agent``).

    ``ZUMO/1.x`` is a v1 SDK and ``ZUMO/2.x`` or later a v2 SDK (JS 2.x, .NET 2.x-4.x, Android
    and iOS 3.x), except the v1 iOS SDK 2.x, which sends ``ZUMO/2.x (lang=objective-c; …)``
    (§1.3). None for anything else, ``Datasync/…`` included.
    """
    for header in ("X-ZUMO-VERSION", "User-Agent"):
        match = _ZUMO_SDK.match(request.headers.get(header, ""))
        if match is not None:
            major, rest = _major(match.group(1)), match.group(2).lower()
            if major <= 1 or (major == 2 and "lang=objective-c" in rest):
                return "v1"
            return "v2"
    return None


def detect(request: Request) -> GenerationName:
    """The generation of ``request``; 400 for an unknown or disabled one (§1.3, §12)."""
    settings = get_settings()
    version = requested_version(request)
    generation: GenerationName | None
    if version is not None:
        if _V2.match(version):
            generation = "v2"
        elif _V3.match(version):
            generation = "v3"
        else:
            raise UnsupportedVersion(
                "An invalid API version was specified in the request, this request needs to specify a "
                f"ZUMO-API-VERSION of '2.0.0' or '3.0.0'. {_VERSION_HELP}"
            )
    elif _has_v1_markers(request):
        generation = "v1"
    elif (sdk := _sdk_generation(request)) is not None:
        generation = sdk
    else:
        generation = settings.DEFAULT_GENERATION
        if generation is None:
            raise UnsupportedVersion(
                "No API version was specified in the request, this request needs to specify a "
                f"ZUMO-API-VERSION of '2.0.0' or '3.0.0'. {_VERSION_HELP}"
            )
    if generation not in settings.ENABLED_GENERATIONS:
        enabled = ", ".join(settings.ENABLED_GENERATIONS)
        raise UnsupportedVersion(f"This server does not serve {generation} clients (enabled: {enabled}).")
    return generation


def settle_version(view: APIView) -> None:
    """Give the view's request its generation if an error came before DRF asked for it.

    DRF negotiates the media type before it determines the version, so a 406 (or a bad format
    suffix) is raised while ``request.version`` is still None, and its body would take v2's
    shape whatever the caller speaks. A view's ``handle_exception`` calls this first. When the
    version itself is what is wrong, the request keeps None: the 400 that says so is in v2's
    shape, as before a generation was chosen (``policy_for``).
    """
    request = getattr(view, "request", None)
    if request is None or getattr(request, "version", None) is not None:
        return
    with suppress(UnsupportedVersion):
        request.version = view.determine_version(request, *view.args, **view.kwargs)[0]


class ZumoVersioning(BaseVersioning):
    """DRF versioning by ``ZUMO-API-VERSION`` (query parameter or header) and v1 markers.

    ``request.version`` becomes ``"v1"``, ``"v2"`` or ``"v3"``; ``policy_for`` gives its policy.
    ``SyncViewSet.determine_version`` uses it directly rather than through
    ``versioning_class``, so that schema generators, which know only URL, namespace and
    Accept-header versioning, describe the tables once for every generation.
    """

    def determine_version(self, request: Request, *args: Any, **kwargs: Any) -> GenerationName:
        return detect(request)
