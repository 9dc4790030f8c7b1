"""Settings for django-offline-sync, read from the ``OFFLINE_SYNC`` dict.

``get_settings()`` returns one typed, validated ``SyncSettings`` object, built on first use
and rebuilt when Django's ``setting_changed`` signal names ``OFFLINE_SYNC`` (so
``override_settings`` works in tests). A project overrides only the keys it cares about::

    OFFLINE_SYNC = {
        "DEFAULT_GENERATION": "v3",
        "ENABLED_GENERATIONS": ["v1", "v2", "v3"],
        "PAGE_SIZE": 50,
        "MAX_TOP": 1000,
        "STAMPING": "clock",
    }

Every key, its type and its meaning is a field of ``SyncSettings`` below. ``validate()``
reports what is wrong with a configuration; the system checks (``checks.py``) show those
problems at start-up, and reading invalid settings at run time raises
``ImproperlyConfigured`` instead of silently falling back to a default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

__all__ = [
    "GENERATIONS",
    "SETTING_NAME",
    "AuthSettings",
    "GenerationName",
    "OIDCProvider",
    "SettingProblem",
    "SigningKey",
    "SyncSettings",
    "get_settings",
    "sync_settings",
    "validate",
]

SETTING_NAME: Final = "OFFLINE_SYNC"

GenerationName = Literal["v1", "v2", "v3"]
NextLinkFormat = Literal["auto", "query", "path", "absolute"]
StampingMode = Literal["clock", "now"]
GENERATIONS: Final[tuple[GenerationName, ...]] = get_args(GenerationName)

#: Shortest HMAC key accepted for signing sign-in tokens (RFC 7518 §3.2: at least the hash size).
MIN_KEY_BYTES: Final = 32
#: Provider names the login URLs reserve for themselves.
RESERVED_PROVIDERS: Final = frozenset({"custom", "done", "me", "refresh", "logout", "iframereceiver"})
_PROVIDER_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")

#: Old names still accepted, with a warning (``offline_sync.W003``).
RENAMED: Final[Mapping[str, str]] = {"MAX_PAGE_SIZE": "MAX_TOP"}


@dataclass(frozen=True)
class SigningKey:
    """One key that signs or verifies sign-in tokens; ``kid`` names it in the token header."""

    kid: str
    key: str = dataclasses.field(repr=False)


@dataclass(frozen=True)
class OIDCProvider:
    """An OpenID Connect provider the site accepts (``OFFLINE_SYNC["AUTH"]["PROVIDERS"]``)."""

    #: The name in the login URLs (``/.auth/login/{name}``), lower case.
    name: str
    #: The provider's issuer (``iss``); discovery is read from ``{issuer}/.well-known/openid-configuration``.
    issuer: str
    client_id: str
    client_secret: str = dataclasses.field(default="", repr=False)
    #: Accepted ``aud`` values of its tokens; empty: the client id alone.
    audiences: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    #: Discovery document URL when it is not under the issuer.
    discovery_url: str = ""
    #: Create a Django user on a first sign-in; ``None``: ``AUTH["CREATE_USERS"]``.
    create_users: bool | None = None

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        return self.audiences or (self.client_id,)

    @property
    def discovery(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class AuthSettings:
    """``OFFLINE_SYNC["AUTH"]``: sign-in tokens and login endpoints (``django_offline_sync.auth``)."""

    #: Keys that sign tokens (HS256), newest first: the first signs, every one verifies.
    #: Empty: a key derived from ``SECRET_KEY`` signs, and keys derived from
    #: ``SECRET_KEY_FALLBACKS`` verify, so Django's own key rotation rotates tokens too.
    SIGNING_KEYS: tuple[SigningKey, ...] = ()
    #: ``iss`` and ``aud`` of the tokens the site issues (and requires).
    ISSUER: str = "django-offline-sync"
    AUDIENCE: str = "django-offline-sync"
    #: Seconds a token is valid.
    TOKEN_LIFETIME: int = 86_400
    #: Seconds after expiry during which ``/.auth/refresh`` still renews a token (App Service: 72 h).
    REFRESH_GRACE: int = 259_200
    #: Clock skew tolerated when checking ``exp``/``nbf``/``iat``, in seconds.
    LEEWAY: int = 30
    #: ``POST /.auth/login/custom`` with a Django username and password.
    CUSTOM_LOGIN: bool = True
    #: Sign-in attempts per client address and per username (``POST /.auth/login/…``), DRF rate syntax.
    LOGIN_RATE: str = "10/min"
    #: Create a Django user on a provider's first sign-in of an unknown subject.
    CREATE_USERS: bool = False
    PROVIDERS: tuple[OIDCProvider, ...] = ()

    def provider(self, name: str) -> OIDCProvider | None:
        return next((p for p in self.PROVIDERS if p.name == name), None)


@dataclass(frozen=True)
class SyncSettings:
    """The ``OFFLINE_SYNC`` settings, each with its default."""

    #: Generation of a request that names none (no ZUMO-API-VERSION and no v1 marker);
    #: ``None`` answers such requests with the v2 servers' "No API version" 400.
    DEFAULT_GENERATION: GenerationName | None = "v3"
    #: Generations the server answers; a request of another one gets 400.
    ENABLED_GENERATIONS: tuple[GenerationName, ...] = GENERATIONS
    #: v1/v2 paging: page size when ``$top`` is absent (a ``$top`` is served whole, §3.3).
    PAGE_SIZE: int = 50
    #: v1/v2: the largest ``$top`` accepted (above it: 400, ``docs/protocol.rst`` §3.3). Was
    #: ``MAX_PAGE_SIZE``, still read (warning ``W003``) while ``MAX_TOP`` is not set.
    MAX_TOP: int = 1000
    #: v3 paging: the largest page the server returns.
    V3_PAGE_SIZE: int = 100
    #: v3: the largest ``$top`` accepted.
    V3_MAX_TOP: int = 128000
    #: Soft delete for every ``SyncViewSet`` unless the view sets ``soft_delete``.
    SOFT_DELETE: bool = True
    #: Longest ``$filter`` accepted, in characters (above it: 400). This and the next three
    #: guard against abusive ``$filter``/``$orderby`` expressions.
    MAX_FILTER_LENGTH: int = 4096
    #: Deepest nesting of a ``$filter`` expression accepted (above it: 400).
    MAX_FILTER_DEPTH: int = 32
    #: Most syntax-tree nodes a ``$filter`` may have (above it: 400).
    MAX_FILTER_NODES: int = 512
    #: Longest string (characters, worst case) a ``$filter``/``$orderby`` may build with
    #: ``concat``/``replace``: nested ``replace`` calls multiply lengths inside the database.
    MAX_FILTER_STRING: int = 65536
    #: Most character comparisons (worst case) the string searches of one ``$filter`` or
    #: ``$orderby`` may make on one row: the sum over ``contains``/``substringof``/``indexof``
    #: and the ``find`` of ``replace`` of the searched string's worst-case length times the
    #: sought one's. A database cannot stop a statement inside one row's searches, so
    #: ``QUERY_TIMEOUT_MS`` does not bound them. 2**28 is about 0.1 s of PostgreSQL's ``strpos``.
    MAX_FILTER_SEARCH: int = 2**28
    #: Longest a statement reading a list page or its count may run, in milliseconds; it is
    #: stopped and answered 503 ``query_timeout``. 0: no limit; at most 2147483647. Also the
    #: limit of a changelist page of the admin's ``SyncModelAdmin`` (``query_timeout_ms``).
    QUERY_TIMEOUT_MS: int = 10_000
    #: List statements each process keeps compiled, one per query shape (``query.shapes``): an
    #: LRU, so a client sending endless distinct shapes evicts old ones and never grows it.
    #: An entry is the SQL text and its parameter plan (a few kilobytes). 0: no cache.
    QUERY_CACHE_SIZE: int = 256
    #: Largest JSON request body accepted by the table endpoints, in bytes.
    MAX_BODY_BYTES: int = 1_048_576
    #: v3 ``nextLink`` form when the client does not ask for one (``X-ZUMO-Options``): ``"auto"``
    #: chooses per client family from its user agent (absolute for the TypeScript and
    #: Microsoft.Datasync.Client clients, a query string for the others; ``docs/protocol.rst``
    #: §3.4); ``"query"``, ``"path"`` or ``"absolute"`` is used for every client.
    NEXT_LINK_FORMAT: NextLinkFormat = "auto"
    #: Salt for the signed keyset cursor in next links (signed with ``SECRET_KEY``).
    CURSOR_SALT: str = "django_offline_sync.cursor"
    #: Seconds a paging cursor stays valid; an older one is 400 ``invalid_cursor`` (restart the pull).
    CURSOR_MAX_AGE: int = 86_400
    #: ``$count``/``$inlinecount``: on PostgreSQL, answer the planner's estimate instead of
    #: counting when it expects more rows than this (counting a large table reads all of it).
    #: 0, the default, always counts exactly.
    COUNT_ESTIMATE_ABOVE: int = 0
    #: How ``updated_at``/``version`` are stamped: ``"clock"`` (per-table clock row locked
    #: until commit, gap-free) or ``"now"`` (wall clock at save; can miss late commits).
    STAMPING: StampingMode = "clock"
    #: Send ``Link: …; rel=next`` to v1/v2 clients when a page is full.
    LINK_HEADER: bool = True
    #: ``POST /tables/$batch`` (an extension, ``docs/batch.rst``): most operations in one batch
    #: (above it: 400 ``too_many_operations``).
    BATCH_MAX_OPERATIONS: int = 100
    #: Largest batch body in bytes (above it: 413). Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    #: (2.5 MB by default) caps it too.
    BATCH_MAX_BODY_BYTES: int = 2_097_152
    #: Seconds a committed batch's results are kept for replaying a retry of it.
    BATCH_RECORD_TTL: int = 7 * 86_400
    #: ``GET /tables/$events`` (an extension, ``docs/events.rst``), and on PostgreSQL a
    #: ``pg_notify`` after each committed write.
    EVENTS: bool = True
    #: On PostgreSQL with ``STAMPING = "clock"``: the change event is queued by the statement
    #: that takes the write's stamp, in the write's transaction (no statement of its own; but
    #: should PostgreSQL's notification queue ever fill, because a listening session stopped
    #: reading, the writes' commits fail with it). ``False``: a statement after each commit
    #: sends it, and a failure there is logged, never raised (``docs/events.rst``).
    EVENTS_NOTIFY_IN_WRITE: bool = True
    #: How often each process reads the subscribed tables' clocks, in milliseconds (on
    #: PostgreSQL LISTEN/NOTIFY is immediate; the poll catches writes made outside the endpoints).
    EVENTS_POLL_MS: int = 1000
    #: At most one event per table and subscriber in this many milliseconds.
    EVENTS_COALESCE_MS: int = 250
    #: Seconds between keep-alive comments on an idle stream.
    EVENTS_KEEPALIVE_SECONDS: int = 15
    #: Most change-event streams one caller (a signed-in user, else a client address as DRF's
    #: throttles tell it, ``NUM_PROXIES``) may hold open at once in one process; above: 429
    #: ``too_many_streams``. Each stream holds memory until the client closes it.
    EVENTS_MAX_STREAMS_PER_CALLER: int = 16
    #: Database aliases of streaming replicas that serve the sync tables' reads (pulls and
    #: reads by id) through ``django_offline_sync.replicas.ReplicaRouter``; empty: the primary.
    READ_DATABASES: tuple[str, ...] = ()
    #: How long ``manage.py purge_tombstones`` keeps soft-deleted rows (a ``timedelta`` or
    #: seconds). ``None``, the default: tombstones are kept for ever. Keep it longer than
    #: the longest time a device stays offline (``docs/fleet.rst``).
    TOMBSTONE_RETENTION: dt.timedelta | None = None
    #: How long ``manage.py purge_rejections`` keeps the entries of the conflict and
    #: rejection ledger (a ``timedelta`` or seconds). ``None``, the default: for ever.
    REJECTION_RETENTION: dt.timedelta | None = None
    #: Record every write refused after its body was understood (409, 412, and 400, 403 or
    #: 404 on a write) in the ledger (``SyncRejection``, shown in the admin).
    RECORD_REJECTIONS: bool = True
    #: Sign-in (``django_offline_sync.auth``): a dict of ``AuthSettings`` keys.
    AUTH: AuthSettings = AuthSettings()


DEFAULTS: Final = SyncSettings()
_FIELDS: Final = {f.name: f for f in dataclasses.fields(SyncSettings)}


@dataclass(frozen=True)
class SettingProblem:
    """One thing wrong with ``OFFLINE_SYNC``; ``checks.py`` turns it into a check message."""

    id: str  # offline_sync.E00x / W00x
    message: str
    hint: str | None = None
    error: bool = True


_MAX_TIMEOUT_MS: Final = 2**31 - 1
#: Keys holding a retention: ``None``, a ``timedelta`` or whole seconds (stored as a timedelta).
_DURATIONS: Final = ("TOMBSTONE_RETENTION", "REJECTION_RETENTION")


def _as_duration(value: int | dt.timedelta) -> dt.timedelta:
    return value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=value)

_LIMITS: Final = (
    "MAX_FILTER_LENGTH", "MAX_FILTER_DEPTH", "MAX_FILTER_NODES", "MAX_FILTER_STRING", "MAX_FILTER_SEARCH",
    "MAX_BODY_BYTES", "CURSOR_MAX_AGE"
)
_LIMITS_BATCH: Final = (
    "BATCH_MAX_OPERATIONS", "BATCH_MAX_BODY_BYTES", "BATCH_RECORD_TTL",
    "EVENTS_POLL_MS", "EVENTS_COALESCE_MS", "EVENTS_KEEPALIVE_SECONDS", "EVENTS_MAX_STREAMS_PER_CALLER",
)


def _value_problem(key: str, value: Any) -> tuple[str, str] | None:
    """(check id, why) when ``value`` cannot be ``OFFLINE_SYNC[key]``; None when it fits.

    A value of the wrong Python type is ``E002``; a value of the right type outside what the
    key allows has the key's own id (stable since 0.1).
    """
    default = getattr(DEFAULTS, key)
    if key in _DURATIONS:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, dt.timedelta)):
            return "offline_sync.E002", "must be None, a datetime.timedelta or a number of seconds"
        try:
            if _as_duration(value) >= dt.timedelta(seconds=1):
                return None
        except OverflowError:
            return "offline_sync.E009", "is longer than a datetime.timedelta can hold"
        return "offline_sync.E009", "must be None (keep for ever) or at least one second"
    if key == "DEFAULT_GENERATION":
        if value is None or value in GENERATIONS:
            return None
        return "offline_sync.E004", f"must be one of {list(GENERATIONS)} or None"
    if key == "ENABLED_GENERATIONS":
        if not isinstance(value, (list, tuple)):
            return "offline_sync.E002", "must be a list"
        if value and all(g in GENERATIONS for g in value):
            return None
        return "offline_sync.E003", f"must be a non-empty subset of {list(GENERATIONS)}"
    if key == "READ_DATABASES":
        if isinstance(value, (list, tuple)) and all(isinstance(a, str) and a for a in value):
            return None
        return "offline_sync.E002", "must be a list of database aliases"
    if key in ("NEXT_LINK_FORMAT", "STAMPING"):
        allowed = get_args(NextLinkFormat if key == "NEXT_LINK_FORMAT" else StampingMode)
        if not isinstance(value, str):
            return "offline_sync.E002", "must be a string"
        if value in allowed:
            return None
        check_id = "offline_sync.E007" if key == "NEXT_LINK_FORMAT" else "offline_sync.E008"
        return check_id, f"must be one of {list(allowed)}"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else ("offline_sync.E002", "must be True or False")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return "offline_sync.E002", "must be an integer"
        if key == "COUNT_ESTIMATE_ABOVE":  # 0: always count exactly
            return None if value >= 0 else ("offline_sync.E006", "must be 0 (always exact) or more")
        if key == "QUERY_CACHE_SIZE":  # 0: no cache
            return None if value >= 0 else ("offline_sync.E006", "must be 0 (no cache) or more")
        if key == "QUERY_TIMEOUT_MS":  # 0 turns the limit off; PostgreSQL takes at most an int4
            if 0 <= value <= _MAX_TIMEOUT_MS:
                return None
            return "offline_sync.E006", f"must be between 0 (no limit) and {_MAX_TIMEOUT_MS}"
        if value >= 1:
            return None
        limit = key in _LIMITS or key in _LIMITS_BATCH
        return ("offline_sync.E006" if limit else "offline_sync.E005"), "must be at least 1"
    return None if isinstance(value, type(default)) else ("offline_sync.E002", f"must be a {type(default).__name__}")


_AUTH_FIELDS: Final = {f.name: f for f in dataclasses.fields(AuthSettings)}
_PROVIDER_FIELDS: Final = {f.name: f for f in dataclasses.fields(OIDCProvider)}
_RATE: Final = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def _auth_problem(message: str, check_id: str = "offline_sync.E050", hint: str | None = None) -> SettingProblem:
    return SettingProblem(check_id, f"{SETTING_NAME}['AUTH']{message}", hint)


def _string_tuple(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _signing_keys(raw: Any, problems: list[SettingProblem]) -> tuple[SigningKey, ...]:
    hint = f'A list of {{"kid": "2026-01", "key": "<at least {MIN_KEY_BYTES} random bytes>"}}, newest first.'
    if not isinstance(raw, (list, tuple)):
        problems.append(_auth_problem("['SIGNING_KEYS'] must be a list.", "offline_sync.E051", hint))
        return ()
    keys: list[SigningKey] = []
    for index, entry in enumerate(raw):
        where = f"['SIGNING_KEYS'][{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {"kid", "key"}:
            problems.append(
                _auth_problem(f"{where} must be a dict with exactly 'kid' and 'key'.", "offline_sync.E051", hint)
            )
            continue
        kid, key = entry["kid"], entry["key"]
        if not isinstance(kid, str) or not kid:
            problems.append(_auth_problem(f"{where}['kid'] must be a non-empty string.", "offline_sync.E051", hint))
        elif not isinstance(key, str) or len(key.encode()) < MIN_KEY_BYTES:
            # The key itself is never quoted in the message: check output ends up in logs.
            problems.append(
                _auth_problem(
                    f"{where}['key'] (kid {kid!r}) must be a string of at least {MIN_KEY_BYTES} bytes.",
                    "offline_sync.E051",
                    hint,
                )
            )
        elif any(k.kid == kid for k in keys):
            problems.append(_auth_problem(f"{where}: the kid {kid!r} is used twice.", "offline_sync.E051", hint))
        else:
            keys.append(SigningKey(kid, key))
    return tuple(keys)


def _providers(raw: Any, problems: list[SettingProblem]) -> tuple[OIDCProvider, ...]:
    hint = 'A dict {"name": {"issuer": "https://…", "client_id": "…", "client_secret": "…"}}.'
    if not isinstance(raw, Mapping):
        problems.append(
            _auth_problem("['PROVIDERS'] must be a dict of provider name → settings.", "offline_sync.E052", hint)
        )
        return ()
    providers: list[OIDCProvider] = []
    for name, config in raw.items():
        where = f"['PROVIDERS'][{name!r}]"
        if not isinstance(name, str) or not _PROVIDER_NAME.match(name) or name in RESERVED_PROVIDERS:
            problems.append(
                _auth_problem(
                    f"{where}: a provider name is lower-case letters, digits, '-' and '_', and not one of "
                    f"{sorted(RESERVED_PROVIDERS)}.",
                    "offline_sync.E052",
                )
            )
            continue
        if not isinstance(config, Mapping):
            problems.append(_auth_problem(f"{where} must be a dict.", "offline_sync.E052", hint))
            continue
        values: dict[str, Any] = {"name": name}
        bad = False
        for key, value in config.items():
            field = _PROVIDER_FIELDS.get(key) if key != "name" else None
            if field is None:
                problems.append(
                    _auth_problem(
                        f"{where}: unknown key {key!r}.",
                        "offline_sync.E052",
                        f"Known keys: {', '.join(sorted(set(_PROVIDER_FIELDS) - {'name'}))}.",
                    )
                )
                bad = True
            elif key in ("audiences", "scopes"):
                strings = _string_tuple(value)
                if strings is None:
                    problems.append(_auth_problem(f"{where}[{key!r}] must be a list of strings.", "offline_sync.E052"))
                    bad = True
                else:
                    values[key] = strings
            elif key == "create_users":
                if value is not None and not isinstance(value, bool):
                    problems.append(
                        _auth_problem(f"{where}['create_users'] must be True, False or None.", "offline_sync.E052")
                    )
                    bad = True
                else:
                    values[key] = value
            elif not isinstance(value, str):
                problems.append(_auth_problem(f"{where}[{key!r}] must be a string.", "offline_sync.E052"))
                bad = True
            else:
                values[key] = value
        for required in ("issuer", "client_id"):
            if not values.get(required):
                problems.append(_auth_problem(f"{where} needs {required!r}.", "offline_sync.E052", hint))
                bad = True
        for url_key in ("issuer", "discovery_url"):
            url = values.get(url_key, "")
            if url and not url.startswith(("https://", "http://")):
                problems.append(_auth_problem(f"{where}[{url_key!r}] must be an http(s) URL.", "offline_sync.E052"))
                bad = True
        if not bad:
            providers.append(OIDCProvider(**values))
    return tuple(providers)


def _auth_settings(raw: Any) -> tuple[AuthSettings, list[SettingProblem]]:
    """``AuthSettings`` from ``OFFLINE_SYNC["AUTH"]`` and what is wrong with it (E050-E052, W050)."""
    problems: list[SettingProblem] = []
    default = AuthSettings()
    if not isinstance(raw, Mapping):
        problems.append(_auth_problem(" must be a dict.", hint="Set AUTH to a dict of the keys in the README."))
        return default, problems
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _AUTH_FIELDS:
            problems.append(
                SettingProblem(
                    "offline_sync.W050",
                    f"Unknown {SETTING_NAME}['AUTH'] key {key!r}.",
                    f"Known keys: {', '.join(sorted(_AUTH_FIELDS))}.",
                    error=False,
                )
            )
            continue
        if key == "SIGNING_KEYS":
            values[key] = _signing_keys(value, problems)
            continue
        if key == "PROVIDERS":
            values[key] = _providers(value, problems)
            continue
        current = getattr(default, key)
        if isinstance(current, bool):
            ok = isinstance(value, bool)
            why = "must be True or False"
        elif isinstance(current, int):
            minimum = 0 if key in ("LEEWAY", "REFRESH_GRACE") else 1
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
            why = f"must be an integer of at least {minimum}"
        elif key == "LOGIN_RATE":
            ok = isinstance(value, str) and bool(_RATE.match(value))
            why = "must be a DRF rate such as '10/min'"
        else:
            ok = isinstance(value, str) and bool(value)
            why = "must be a non-empty string"
        if ok:
            values[key] = value
        else:
            problems.append(_auth_problem(f"[{key!r}] {why} (got {value!r}).", hint=f"The default is {current!r}."))
    return dataclasses.replace(default, **values), problems


def validate(raw: object) -> tuple[SyncSettings, list[SettingProblem]]:
    """Build ``SyncSettings`` from a raw ``OFFLINE_SYNC`` value and list what is wrong with it.

    Invalid values are left at their defaults in the returned object; the problems say
    which. Never raises.
    """
    problems: list[SettingProblem] = []
    if raw is None:
        return DEFAULTS, problems
    if not isinstance(raw, Mapping):
        problems.append(
            SettingProblem(
                "offline_sync.E001",
                f"{SETTING_NAME} must be a dict.",
                "Set OFFLINE_SYNC = {...} with the keys listed in the settings reference (docs/settings.rst).",
            )
        )
        return DEFAULTS, problems
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = RENAMED.get(key, key)
        if name != key:
            problems.append(
                SettingProblem(
                    "offline_sync.W003",
                    f"{SETTING_NAME}[{key!r}] is now called {name!r}.",
                    f"Rename the key; {key!r} is still read while {name!r} is not set.",
                    error=False,
                )
            )
            if name in raw:
                continue
        if name not in _FIELDS:
            problems.append(
                SettingProblem(
                    "offline_sync.W001",
                    f"Unknown {SETTING_NAME} key {key!r}.",
                    f"Known keys: {', '.join(sorted(_FIELDS))}.",
                    error=False,
                )
            )
            continue
        if name == "AUTH":
            values[name], auth_problems = _auth_settings(value)
            problems.extend(auth_problems)
            continue
        problem = _value_problem(name, value)
        if problem is not None:
            check_id, why = problem
            message = f"{SETTING_NAME}[{key!r}] {why} (got {value!r})."
            problems.append(SettingProblem(check_id, message, f"The default is {getattr(DEFAULTS, name)!r}."))
            continue
        if name in ("ENABLED_GENERATIONS", "READ_DATABASES"):
            value = tuple(value)
        elif name in _DURATIONS and value is not None:
            value = _as_duration(value)
        values[name] = value
    result = dataclasses.replace(DEFAULTS, **values)
    if result.DEFAULT_GENERATION is not None and result.DEFAULT_GENERATION not in result.ENABLED_GENERATIONS:
        problems.append(
            SettingProblem(
                "offline_sync.E004",
                f"{SETTING_NAME}['DEFAULT_GENERATION'] must be one of the enabled generations "
                f"{list(result.ENABLED_GENERATIONS)}.",
            )
        )
    for size_key, max_key in (("PAGE_SIZE", "MAX_TOP"), ("V3_PAGE_SIZE", "V3_MAX_TOP")):
        if getattr(result, max_key) < getattr(result, size_key):
            problems.append(
                SettingProblem("offline_sync.E005", f"{SETTING_NAME}[{size_key!r}] must be at most {max_key}.")
            )
    if result.STAMPING == "now":
        problems.append(
            SettingProblem(
                "offline_sync.W002",
                f"{SETTING_NAME}['STAMPING'] is 'now': a write that commits late can be missed by incremental pulls.",
                "Use the default 'clock' unless you measured that you need the write throughput.",
                error=False,
            )
        )
    return result, problems


_current: SyncSettings | None = None


def get_settings() -> SyncSettings:
    """The current, validated settings; ``ImproperlyConfigured`` if ``OFFLINE_SYNC`` has errors."""
    global _current
    if _current is None:
        loaded, problems = validate(getattr(settings, SETTING_NAME, None))
        errors = [p for p in problems if p.error]
        if errors:
            raise ImproperlyConfigured("; ".join(f"{p.message} [{p.id}]" for p in errors))
        _current = loaded
    return _current


class _SettingsProxy:
    """``sync_settings.PAGE_SIZE``: attribute access to ``get_settings()``, kept for brevity."""

    def __getattr__(self, name: str) -> Any:
        if name not in _FIELDS:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {name!r}")
        return getattr(get_settings(), name)


sync_settings: Final = _SettingsProxy()


def _reload(*, setting: str, **kwargs: Any) -> None:
    global _current
    if setting == SETTING_NAME:
        _current = None


setting_changed.connect(_reload)
