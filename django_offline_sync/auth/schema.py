"""drf-spectacular: the tables' security schemes for ``ZumoTokenAuthentication`` (loaded when installed)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ZumoTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "django_offline_sync.auth.authentication.ZumoTokenAuthentication"
    name = ["zumoAuth", "bearerAuth"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "apiKey", "in": "header", "name": "X-ZUMO-AUTH"},
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        ]
