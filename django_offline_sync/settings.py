"""Settings for django-offline-sync, read from the ``OFFLINE_SYNC`` dict.

Every value is looked up at the moment of use through ``sync_settings``, which
refreshes in place on Django's ``setting_changed`` signal (so ``override_settings``
works in tests). A project overrides only the keys it cares about::

    OFFLINE_SYNC = {
        "DEFAULT_GENERATION": "v3",
        "ENABLED_GENERATIONS": ["v1", "v2", "v3"],
        "PAGE_SIZE": 50,
        "MAX_PAGE_SIZE": 1000,
        "STAMPING": "clock",
    }
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

SETTING_NAME = "OFFLINE_SYNC"

GENERATIONS = ("v1", "v2", "v3")

DEFAULTS: dict[str, Any] = {
    # Generation used for a request that names none (no ZUMO-API-VERSION and no v1 marker);
    # None answers such requests with the v2 servers' "No API version was specified" 400.
    "DEFAULT_GENERATION": "v3",
    # Generations the server answers; a request of another one gets 400.
    "ENABLED_GENERATIONS": ["v1", "v2", "v3"],
    # v1/v2 paging: default $top and the largest $top accepted (above it: 400, PROTOCOL.md §3.3).
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 1000,
    # v3 paging: page size the server returns at most, and the largest $top accepted.
    "V3_PAGE_SIZE": 100,
    "V3_MAX_TOP": 128000,
    # Soft delete for every SyncViewSet unless the view sets ``soft_delete``.
    "SOFT_DELETE": True,
    # Guards against abusive $filter expressions (each breach gives 400).
    "MAX_FILTER_LENGTH": 4096,
    "MAX_FILTER_DEPTH": 32,
    "MAX_FILTER_NODES": 512,
    # Largest JSON request body accepted by the table endpoints, in bytes.
    "MAX_BODY_BYTES": 1_048_576,
    # v3 nextLink form when the client does not ask for one: "query", "path" or "absolute".
    "NEXT_LINK_FORMAT": "query",
    # Salt for the signed keyset cursor carried in v3 nextLinks (signed with SECRET_KEY).
    "CURSOR_SALT": "django_offline_sync.cursor",
    # How updated_at/version are stamped: "clock" (per-table clock row locked until commit,
    # gap-free, see README) or "now" (wall clock at save; faster, can miss late commits).
    "STAMPING": "clock",
    # Send a `Link: …; rel=next` header to v1/v2 clients when a page is full.
    "LINK_HEADER": True,
}

# Expected types, used by checks.py to report a mistyped key.
TYPES: dict[str, type | tuple[type, ...]] = {
    "DEFAULT_GENERATION": (str, type(None)),
    "ENABLED_GENERATIONS": (list, tuple),
    "PAGE_SIZE": int,
    "MAX_PAGE_SIZE": int,
    "V3_PAGE_SIZE": int,
    "V3_MAX_TOP": int,
    "SOFT_DELETE": bool,
    "MAX_FILTER_LENGTH": int,
    "MAX_FILTER_DEPTH": int,
    "MAX_FILTER_NODES": int,
    "MAX_BODY_BYTES": int,
    "NEXT_LINK_FORMAT": str,
    "CURSOR_SALT": str,
    "STAMPING": str,
    "LINK_HEADER": bool,
}


class SyncSettings:
    """Attribute access to ``OFFLINE_SYNC`` with defaults, cached until settings change."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTING_NAME, None) or {}
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid OFFLINE_SYNC setting: {name!r}")
        if self._cached is None:
            self._cached = {**self.defaults, **self.user_settings}
        return self._cached[name]

    def reload(self) -> None:
        self._cached = None


sync_settings = SyncSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        sync_settings.reload()


setting_changed.connect(_reload)
