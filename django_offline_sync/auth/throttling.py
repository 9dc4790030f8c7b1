"""Brute-force protection for the login endpoints (DRF throttles, Django's cache).

Two limits, both at ``AUTH["LOGIN_RATE"]``: per client address (one attacker, many accounts;
``X-Forwarded-For`` is read only with DRF's ``NUM_PROXIES`` set) and per username (many
addresses, one account). Only sign-in attempts count: a GET of the
server-directed flow or ``/.auth/me`` does not.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from django.contrib.auth import get_user_model
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from ..serializers import read_json
from ..settings import get_settings
from ..throttling import client_address
from ..wire import UNSTORABLE_TEXT

__all__ = ["BODY_LIMIT", "LoginAddressThrottle", "LoginUsernameThrottle"]

#: The largest sign-in body, in bytes (the views refuse a larger one with 413).
BODY_LIMIT: Final = 65_536


class _LoginThrottle(SimpleRateThrottle):
    scope = "offline_sync_login"

    def get_rate(self) -> str:
        return get_settings().AUTH.LOGIN_RATE

    def allow_request(self, request: Request, view: Any) -> bool:
        # The rate is read per request so override_settings and reloads apply.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class LoginAddressThrottle(_LoginThrottle):
    def get_cache_key(self, request: Request, view: Any) -> str:
        return f"offline_sync_login:addr:{client_address(request)}"


class LoginUsernameThrottle(_LoginThrottle):
    def get_cache_key(self, request: Request, view: Any) -> str | None:
        try:  # the view reports a bad body (too large, malformed, too deep); here it has no username
            data = read_json(request, limit=BODY_LIMIT)
        except APIException:
            return None
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username:
            return None
        account = _account(username)
        if account is not None:
            return f"offline_sync_login:account:{account}"
        # Hashed: the cache backend (e.g. Redis) need not hold usernames, and any length fits a key.
        # surrogatepass: a lone surrogate (the view refuses it with a 400) still counts.
        digest = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
        return f"offline_sync_login:user:{digest}"


def _account(username: str) -> str | None:
    """The primary key of the user ``username`` names, as the database compares it, or ``None``.

    Looked up as ``ModelBackend`` does (``get_by_natural_key``): on MariaDB/MySQL, whose
    collations ignore trailing spaces (and, by default, case and accents), ``"alice "`` and
    ``"alíce"`` sign in as ``alice``, and each spelling would otherwise be a limit of its own.
    """
    if UNSTORABLE_TEXT.search(username):
        return None  # the view refuses it with a 400; PostgreSQL could not even compare it
    model = get_user_model()
    try:
        user = model._default_manager.get_by_natural_key(username)
    except (model.DoesNotExist, model.MultipleObjectsReturned):
        return None
    return hashlib.sha256(str(user.pk).encode()).hexdigest()
