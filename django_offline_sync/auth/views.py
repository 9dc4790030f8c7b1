"""The login endpoints the Azure Mobile Apps / Mobile Services clients call (``docs/auth.rst``).

* ``POST /.auth/login/{provider}`` with ``{"access_token"|"id_token"|"authorization_code": …}``
  (client-directed; ``/login/{provider}`` for v1) and ``POST /.auth/login/custom`` with
  ``{"username", "password"}`` answer ``{"authenticationToken": …, "user": {"userId": …}}``.
* ``POST /.auth/login`` with ``{"authenticationToken": …}`` checks a token the app kept and
  answers the same (the JavaScript client's ``login(token)``).
* ``GET /.auth/login/{provider}?session_mode=token`` (server-directed) runs the provider's
  authorization code flow with state, nonce and PKCE, and ends at
  ``/.auth/login/done#token=<url-encoded JSON of the same shape>`` (``#error=<message>`` on failure).
* ``GET /.auth/me``, ``GET|POST /.auth/refresh``, ``GET|POST /.auth/logout``.

Errors are the caller's generation's error body with a stable ``errorCode``. Tokens are never
logged: they travel only in bodies, headers and URL fragments (which never reach a server).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from typing import Any, Final
from urllib.parse import quote

from django.contrib.auth import authenticate
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..exceptions import BadRequest, BodyNotObject, InvalidCredentials, InvalidToken, UnknownProvider, exception_handler
from ..generations import Generation, detect, policy_for
from ..serializers import read_json
from ..settings import OIDCProvider, get_settings
from . import oidc
from .authentication import ZumoTokenAuthentication, token_from_request
from .throttling import BODY_LIMIT, LoginAddressThrottle, LoginUsernameThrottle
from .tokens import IssuedToken, decode_token, issue_token, revoke, user_for_claims, user_id

__all__ = [
    "CustomLoginView",
    "LoginDoneView",
    "LogoutView",
    "MeView",
    "ProviderCallbackView",
    "ProviderLoginView",
    "RefreshView",
    "TokenLoginView",
]

_FLOW_COOKIE: Final = "offline_sync_login"
_FLOW_SALT: Final = "django_offline_sync.auth.flow"
_FLOW_MAX_AGE: Final = 600
_TOKEN_KINDS: Final = ("access_token", "id_token", "authorization_code")
#: Body members that are tokens or codes: a JWT, an OAuth 2.0 token, code or PKCE verifier is
#: printable ASCII (RFC 6749 appendix A, RFC 7636), and only ASCII can go in an HTTP header.
_TOKEN_MEMBERS: Final = frozenset({"authenticationToken", *_TOKEN_KINDS, "code_verifier"})
#: A lone UTF-16 surrogate (``json.loads`` makes one of ``\ud800``): no password hasher,
#: database driver or cache key can encode it.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class InvalidSignInRequest(BadRequest):
    default_detail = _("The sign-in request is invalid.")
    default_code = "invalid_sign_in_request"


class _AuthView(APIView):
    """Shared by the endpoints: JSON in and out, errors in the caller's generation shape."""

    authentication_classes = [ZumoTokenAuthentication]
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    throttle_classes: list[Any] = []
    # Not in the OpenAPI schema: these are the Azure clients' fixed endpoints, documented in
    # docs/auth.rst, not a table (and the schema must not depend on which providers are set).
    schema = None

    @property
    def generation(self) -> Generation:
        """The caller's generation for error bodies; v2's when the request does not tell."""
        try:
            return policy_for(detect(self.request))
        except APIException:
            return policy_for(None)

    def get_exception_handler(self) -> Any:
        return exception_handler

    def get_authenticate_header(self, request: Request) -> str:
        # Every sign-in failure is a 401 with a challenge (DRF answers 403 without one).
        return ZumoTokenAuthentication().authenticate_header(request)

    def _body(self, request: Request) -> dict[str, Any]:
        body = read_json(request, limit=BODY_LIMIT)
        if not isinstance(body, dict):
            raise BodyNotObject()
        for name in ("username", "password", *_TOKEN_MEMBERS):
            value = body.get(name)
            if isinstance(value, str):
                _check_text(name, value)
        return body

    def _signed_in(self, request: Request, *, allow_expired_for: int = 0) -> dict[str, Any]:
        """The claims of the caller's valid token (401 when there is none)."""
        token = token_from_request(request)
        if token is None:
            raise InvalidToken("Send the sign-in token in X-ZUMO-AUTH or Authorization: Bearer.")
        claims = decode_token(token, allow_expired_for=allow_expired_for)
        user_for_claims(claims)
        return claims


def _check_text(name: str, value: str) -> None:
    """400 for a sign-in value no account, provider or database can match (``docs/auth.rst``).

    The value itself is never echoed: it may be a password or a token.
    """
    if name in _TOKEN_MEMBERS:
        if not (value.isascii() and value.isprintable()):
            raise InvalidSignInRequest(f"{name} must be printable ASCII, as every token and code is.")
    elif _SURROGATE.search(value):
        raise InvalidSignInRequest(f"{name} must be valid Unicode text: it holds a lone surrogate.")
    elif name == "username" and "\x00" in value:
        # A password may hold one (it is only hashed); no username can (PostgreSQL text cannot).
        raise InvalidSignInRequest("username must not hold a NUL character.")


def _provider(name: str) -> OIDCProvider:
    provider = get_settings().AUTH.provider(name.lower())
    if provider is None:
        raise UnknownProvider(f"No sign-in provider is called {name!r} on this site.")
    return provider


def _callback_uri(request: HttpRequest, provider: OIDCProvider) -> str:
    return request.build_absolute_uri(reverse("offline_sync_auth:callback", kwargs={"provider": provider.name}))


class TokenLoginView(_AuthView):
    """``POST /.auth/login`` ``{"authenticationToken"}``: a kept token, checked and echoed."""

    authentication_classes: list[Any] = []
    throttle_classes = [LoginAddressThrottle]

    @sensitive_variables("token")
    def post(self, request: Request) -> Response:
        token = self._body(request).get("authenticationToken")
        if not isinstance(token, str) or not token:
            raise InvalidSignInRequest('Send {"authenticationToken": "…"}.')
        claims = decode_token(token)
        user = user_for_claims(claims)
        return Response({"authenticationToken": token, "user": {"userId": user_id(user)}})


class CustomLoginView(_AuthView):
    """``POST /.auth/login/custom`` ``{"username", "password"}`` through Django's auth backends."""

    authentication_classes: list[Any] = []
    throttle_classes = [LoginAddressThrottle, LoginUsernameThrottle]

    # Kept out of error reports' tracebacks, should anything below fail.
    @sensitive_variables("body", "password")
    def post(self, request: Request) -> Response:
        if not get_settings().AUTH.CUSTOM_LOGIN:
            raise UnknownProvider("Username and password sign-in is turned off on this site.")
        body = self._body(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
            raise InvalidSignInRequest('Send {"username": "…", "password": "…"} as strings.')
        # Django's backends (and their signals, e.g. django-axes) decide; an inactive user fails too.
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            raise InvalidCredentials()
        return Response(issue_token(user, "custom").login_body())


class ProviderLoginView(_AuthView):
    """``/.auth/login/{provider}``: POST client-directed, GET server-directed."""

    authentication_classes: list[Any] = []
    throttle_classes = [LoginAddressThrottle]

    @sensitive_variables("body", "verifier")
    def post(self, request: Request, provider: str) -> Response:
        config = _provider(provider)
        body = self._body(request)
        sent = [kind for kind in _TOKEN_KINDS if kind in body]
        if len(sent) != 1 or not isinstance(body[sent[0]], str) or not body[sent[0]]:
            raise InvalidSignInRequest(
                'Send exactly one of {"access_token": …}, {"id_token": …} or {"authorization_code": …} as a string.'
            )
        kind = sent[0]
        verifier = body.get("code_verifier") if kind == "authorization_code" else None
        if verifier is not None and not isinstance(verifier, str):
            raise InvalidSignInRequest("code_verifier must be a string.")
        identity = oidc.identity_from_token(
            config, kind, body[kind], redirect_uri=_callback_uri(request, config), code_verifier=verifier
        )
        user = oidc.user_for_identity(identity)
        return Response(issue_token(user, config.name).login_body())

    def get(self, request: Request, provider: str) -> HttpResponseBase:
        done = _done_path(request)
        try:
            config = _provider(provider)
            state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
            url = oidc.authorization_url(
                config, redirect_uri=_callback_uri(request, config), state=state, nonce=nonce, code_verifier=verifier
            )
        except APIException as exc:
            return _done_redirect(done, error=str(exc.detail))
        response = HttpResponseRedirect(url)
        flow = {"p": config.name, "s": state, "n": nonce, "v": verifier, "d": done}
        response.set_cookie(
            _FLOW_COOKIE,
            signing.dumps(flow, salt=_FLOW_SALT, compress=True),
            max_age=_FLOW_MAX_AGE,
            path="/",
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",  # sent on the provider's top-level redirect back, not on cross-site posts
        )
        return response


def _done_path(request: Request) -> str:
    """``/login/done`` for a v1 client (it started at ``/login/…``), else ``/.auth/login/done``."""
    name = "v1_done" if request.resolver_match and request.resolver_match.url_name == "v1_provider" else "done"
    return reverse(f"offline_sync_auth:{name}")


def _done_redirect(done: str, *, token: IssuedToken | None = None, error: str | None = None) -> HttpResponseRedirect:
    if token is not None:
        fragment = "token=" + quote(json.dumps(token.login_body(), separators=(",", ":")), safe="")
    else:
        fragment = "error=" + quote(error or "Sign-in failed.", safe="")
    response = HttpResponseRedirect(f"{done}#{fragment}")
    response.delete_cookie(_FLOW_COOKIE, path="/")
    response["Cache-Control"] = "no-store"
    return response


class ProviderCallbackView(_AuthView):
    """``/.auth/login/{provider}/callback``: where the provider sends the browser back with a code."""

    authentication_classes: list[Any] = []

    def get(self, request: Request, provider: str) -> HttpResponseBase:
        try:
            flow = signing.loads(request.COOKIES.get(_FLOW_COOKIE, ""), salt=_FLOW_SALT, max_age=_FLOW_MAX_AGE)
        except signing.BadSignature:
            return _done_redirect(
                reverse("offline_sync_auth:done"), error="The sign-in took too long or was not started here; try again."
            )
        done = flow["d"]
        if request.GET.get("error"):
            reason = request.GET.get("error_description") or request.GET["error"]
            return _done_redirect(done, error=f"The identity provider refused the sign-in: {reason}")
        if flow["p"] != provider or not secrets.compare_digest(str(request.GET.get("state", "")), flow["s"]):
            return _done_redirect(done, error="The sign-in's state does not match; try again.")
        code = request.GET.get("code")
        if not code:
            return _done_redirect(done, error="The identity provider sent no authorization code.")
        try:
            config = _provider(provider)
            identity = oidc.exchange_code(
                config, code, redirect_uri=_callback_uri(request, config), code_verifier=flow["v"], nonce=flow["n"]
            )
            user = oidc.user_for_identity(identity)
        except APIException as exc:
            return _done_redirect(done, error=str(exc.detail))
        return _done_redirect(done, token=issue_token(user, config.name))


_DONE_PAGE: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="referrer" content="no-referrer"></head>
<body><p>{title}. You can close this window.</p></body></html>
"""


class LoginDoneView(_AuthView):
    """``/.auth/login/done``: the page the clients watch for; the result is in the URL fragment."""

    authentication_classes: list[Any] = []

    def get(self, request: Request) -> HttpResponse:
        response = HttpResponse(_DONE_PAGE.format(title=escape("Sign-in finished")))
        response["Cache-Control"] = "no-store"
        return response


class MeView(_AuthView):
    """``GET /.auth/me``: App Service's list of one identity for the caller's token."""

    def get(self, request: Request) -> Response:
        claims = self._signed_in(request)
        user = user_for_claims(claims)
        user_claims = [{"typ": "sub", "val": user_id(user)}, {"typ": "name", "val": user.get_username()}]
        email = getattr(user, "email", "")
        if email:
            user_claims.append({"typ": "email", "val": email})
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        return Response(
            [
                {
                    "provider_name": claims.get("idp", ""),
                    "user_id": user_id(user),
                    "user_claims": user_claims,
                    "expires_on": expires.isoformat().replace("+00:00", "Z"),
                }
            ]
        )


class RefreshView(_AuthView):
    """``/.auth/refresh``: a new token for a valid one, or one expired less than ``REFRESH_GRACE`` ago."""

    authentication_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        claims = self._signed_in(request, allow_expired_for=get_settings().AUTH.REFRESH_GRACE)
        user = user_for_claims(claims)
        return Response(issue_token(user, str(claims.get("idp", ""))).login_body())

    post = get


class LogoutView(_AuthView):
    """``/.auth/logout``: the caller's token stops working now (other devices stay signed in)."""

    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        token = token_from_request(request)
        if token is not None:
            revoke(decode_token(token, allow_expired_for=get_settings().AUTH.REFRESH_GRACE))
        return Response(status=204)

    get = post
