"""The DRF authentication class for the tokens the clients send back.

v1/v2 clients send ``X-ZUMO-AUTH: <authenticationToken>`` on every request once signed in;
v3 (Datasync) clients send ``Authorization: Bearer <token>`` from the app's token provider, and
App Service deployments also let them use ``X-ZUMO-AUTH``. Both carry a token from
``tokens.issue_token``. A request with neither is anonymous (other authentication classes may
still sign it in); a request with a token that fails is 401 with a body that says why
(``errorCode`` ``invalid_token``, ``token_expired``, ``token_revoked``, ``unknown_user``,
``inactive_user``), in the caller's generation shape on the table endpoints.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.views.decorators.debug import sensitive_variables
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ..exceptions import InvalidToken
from .tokens import decode_token, user_for_claims

__all__ = ["ZumoTokenAuthentication", "token_from_request"]

ZUMO_AUTH_HEADER = "X-ZUMO-AUTH"


def token_from_request(request: Any) -> str | None:
    """The sign-in token of ``request`` (``X-ZUMO-AUTH``, else ``Authorization: Bearer``)."""
    headers = request.headers
    value: str | None = headers.get(ZUMO_AUTH_HEADER)
    if value is not None:
        value = value.strip()
        if not value:
            raise InvalidToken(f"The {ZUMO_AUTH_HEADER} header is empty.")
        return value
    authorization: str = headers.get("Authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    credentials = credentials.strip()
    if not credentials or " " in credentials:
        raise InvalidToken("The Authorization header must be 'Bearer <token>'.")
    return credentials


class ZumoTokenAuthentication(BaseAuthentication):
    """``X-ZUMO-AUTH`` / ``Authorization: Bearer`` with a site-issued sign-in token."""

    @sensitive_variables("token")
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, dict[str, Any]] | None:
        token = token_from_request(request)
        if token is None:
            return None
        claims = decode_token(token)
        return user_for_claims(claims), claims

    def authenticate_header(self, request: Request) -> str:
        # A 401 needs a WWW-Authenticate challenge, else DRF turns it into a 403.
        return 'Bearer realm="api"'
