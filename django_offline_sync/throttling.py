"""The client address that the package's limits count against (``docs/deployment.rst``).

DRF's ``BaseThrottle.get_ident`` reads ``X-Forwarded-For`` when ``NUM_PROXIES`` is ``None``
(its default), whole: a client that writes a new header on every request is a new address
every time. The login throttles and the change-event streams per caller count against
``client_address`` instead, which reads the header only where ``NUM_PROXIES`` says how many
proxies stand in front of the site, and ``REMOTE_ADDR`` otherwise.
"""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

__all__ = ["client_address"]


def client_address(request: Any) -> str:
    """The client's address: ``REMOTE_ADDR``, or with ``NUM_PROXIES`` set, DRF's reading of
    ``X-Forwarded-For`` (the address the nearest proxy saw)."""
    if api_settings.NUM_PROXIES is None:
        return str(request.META.get("REMOTE_ADDR") or "")
    return str(BaseThrottle().get_ident(request) or "")
