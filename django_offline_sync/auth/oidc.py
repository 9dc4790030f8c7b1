"""OpenID Connect providers: discovery, token validation against the provider's JWKS, the
authorization code flow, and the link from a provider's subject to a Django user.

JOSE is PyJWT's (``PyJWKClient`` fetches and caches the JWKS, refetching on an unknown ``kid``);
the authorization code flow's messages (RFC 6749 grant URI and token request, RFC 7636 S256
challenge) are Authlib's, sent with httpx. (Authlib's own httpx client is not used: it
deprecates plain httpx for a fork.) What is checked on every provider token: signature by a key of the provider's
JWKS with an algorithm it announces (never ``none`` or HMAC), ``iss`` equal to the configured
issuer, ``aud`` one of the provider's accepted audiences, ``exp``/``iat`` with ``LEEWAY``, a
``sub``, and in the server-directed flow the ``nonce``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import httpx
import jwt
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..exceptions import InactiveUser, ProviderTokenRejected, ProviderUnavailable, SignInRefused
from ..settings import OIDCProvider, get_settings

__all__ = ["ProviderClaims", "authorization_url", "exchange_code", "identity_from_token", "user_for_identity"]

#: Asymmetric algorithms only: an HMAC "signature" keyed with a public key is a classic forgery.
_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_DISCOVERY_TTL: Final = 3600.0
_TIMEOUT: Final = httpx.Timeout(10.0)

_lock = threading.Lock()
_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_clients: dict[str, jwt.PyJWKClient] = {}


@dataclass(frozen=True)
class ProviderClaims:
    """Who the provider says signed in: its issuer, ``sub``, and the other claims."""

    provider: str
    issuer: str
    subject: str
    claims: dict[str, Any]


def discovery(provider: OIDCProvider) -> dict[str, Any]:
    """The provider's discovery document (cached for an hour per URL)."""
    url = provider.discovery
    now = time.monotonic()
    with _lock:
        cached = _discovery_cache.get(url)
    if cached is not None and now - cached[0] < _DISCOVERY_TTL:
        return cached[1]
    try:
        response = httpx.get(url, timeout=_TIMEOUT, follow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"The discovery document of {provider.name!r} could not be read ({exc}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
        raise ProviderUnavailable(f"The discovery document of {provider.name!r} has no jwks_uri.")
    # OpenID Connect Discovery §4.3: the document's issuer must be the one configured.
    if document.get("issuer") != provider.issuer:
        raise ProviderUnavailable(
            f"The discovery document of {provider.name!r} names the issuer {document.get('issuer')!r}, "
            f"not the configured {provider.issuer!r}."
        )
    with _lock:
        _discovery_cache[url] = (now, document)
    return document


def _jwks_client(uri: str) -> jwt.PyJWKClient:
    with _lock:
        client = _jwks_clients.get(uri)
        if client is None:
            client = _jwks_clients[uri] = jwt.PyJWKClient(uri, cache_keys=True, lifespan=300, timeout=10)
        return client


def _algorithms(document: dict[str, Any]) -> list[str]:
    announced = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    return [alg for alg in announced if alg in _ALGORITHMS] or ["RS256"]


def validate_jwt(provider: OIDCProvider, token: str, *, nonce: str | None = None) -> ProviderClaims:
    """A provider-issued JWT (id_token, or a JWT access token), fully checked."""
    document = discovery(provider)
    try:
        key = _jwks_client(document["jwks_uri"]).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise ProviderUnavailable(f"The signing keys of {provider.name!r} could not be read.") from None
    except (jwt.PyJWKClientError, jwt.InvalidTokenError):
        raise ProviderTokenRejected(f"The token is not signed by a key of the provider {provider.name!r}.") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=_algorithms(document),
            audience=list(provider.accepted_audiences),
            issuer=provider.issuer,
            leeway=get_settings().AUTH.LEEWAY,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise ProviderTokenRejected(f"The {provider.name!r} token has expired.") from None
    except jwt.InvalidAudienceError:
        raise ProviderTokenRejected(f"The {provider.name!r} token was issued for another audience.") from None
    except jwt.InvalidIssuerError:
        raise ProviderTokenRejected(f"The token was not issued by {provider.name!r} ({provider.issuer}).") from None
    except jwt.InvalidSignatureError:
        raise ProviderTokenRejected(f"The {provider.name!r} token's signature does not match.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise ProviderTokenRejected(f"The {provider.name!r} token lacks the {exc.claim!r} claim.") from None
    except jwt.InvalidTokenError as exc:
        raise ProviderTokenRejected(f"The {provider.name!r} token is not valid ({exc}).") from None
    if nonce is not None and claims.get("nonce") != nonce:
        raise ProviderTokenRejected(f"The {provider.name!r} id_token does not carry this sign-in's nonce.")
    return ProviderClaims(provider.name, provider.issuer, str(claims["sub"]), claims)


def _userinfo(provider: OIDCProvider, access_token: str) -> ProviderClaims:
    """An opaque access token, checked by the provider itself at its userinfo endpoint."""
    endpoint = discovery(provider).get("userinfo_endpoint")
    if not isinstance(endpoint, str):
        raise ProviderTokenRejected(f"{provider.name!r} has no userinfo endpoint; send an id_token instead.")
    try:
        response = httpx.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=_TIMEOUT)
    except httpx.HTTPError:
        raise ProviderUnavailable(f"The userinfo endpoint of {provider.name!r} could not be reached.") from None
    if response.status_code in (400, 401, 403):
        raise ProviderTokenRejected(f"{provider.name!r} did not accept the access_token.")
    try:
        response.raise_for_status()
        claims = response.json()
    except (httpx.HTTPError, ValueError):
        raise ProviderUnavailable(
            f"The userinfo endpoint of {provider.name!r} answered {response.status_code}."
        ) from None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise ProviderUnavailable(f"The userinfo answer of {provider.name!r} has no sub.")
    return ProviderClaims(provider.name, provider.issuer, claims["sub"], claims)


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def identity_from_token(
    provider: OIDCProvider, kind: str, token: str, *, redirect_uri: str, code_verifier: str | None = None
) -> ProviderClaims:
    """Client-directed login: who ``token`` (``id_token``, ``access_token`` or ``authorization_code``) names."""
    if kind == "id_token":
        return validate_jwt(provider, token)
    if kind == "access_token":
        # A JWT access token is validated like an id_token (its audience must be accepted);
        # an opaque one only the provider can check.
        return validate_jwt(provider, token) if _looks_like_jwt(token) else _userinfo(provider, token)
    return exchange_code(provider, token, redirect_uri=redirect_uri, code_verifier=code_verifier)


def authorization_url(provider: OIDCProvider, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
    endpoint = discovery(provider).get("authorization_endpoint")
    if not isinstance(endpoint, str):
        raise ProviderUnavailable(f"The discovery document of {provider.name!r} has no authorization_endpoint.")
    url: str = prepare_grant_uri(
        endpoint,
        provider.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=list(provider.scopes),
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(code_verifier),
        code_challenge_method="S256",
    )
    return url


def exchange_code(
    provider: OIDCProvider, code: str, *, redirect_uri: str, code_verifier: str | None = None, nonce: str | None = None
) -> ProviderClaims:
    """The authorization code flow's last step: the code for tokens, then the id_token checked."""
    endpoint = discovery(provider).get("token_endpoint")
    if not isinstance(endpoint, str):
        raise ProviderUnavailable(f"The discovery document of {provider.name!r} has no token_endpoint.")
    body = prepare_token_request(
        "authorization_code",
        redirect_uri=redirect_uri,
        code=code,
        code_verifier=code_verifier,
        # A public client (no secret) names itself in the body; a confidential one authenticates
        # with HTTP Basic (client_secret_basic, every provider's default).
        client_id=None if provider.client_secret else provider.client_id,
    )
    auth = (provider.client_id, provider.client_secret) if provider.client_secret else None
    try:
        response = httpx.post(
            endpoint,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            auth=auth,
            timeout=_TIMEOUT,
        )
    except httpx.HTTPError:
        raise ProviderUnavailable(f"The token endpoint of {provider.name!r} could not be reached.") from None
    try:
        tokens = response.json()
    except ValueError:
        tokens = None
    if not isinstance(tokens, dict):
        raise ProviderUnavailable(
            f"The token endpoint of {provider.name!r} answered {response.status_code} without JSON."
        )
    if response.status_code != 200:
        reason = tokens.get("error_description") or tokens.get("error") or response.status_code
        raise ProviderTokenRejected(f"{provider.name!r} refused the authorization code ({reason}).")
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise ProviderTokenRejected(f"{provider.name!r} returned no id_token; is 'openid' among its scopes?")
    return validate_jwt(provider, id_token, nonce=nonce)


def _new_username(identity: ProviderClaims) -> str:
    model = get_user_model()
    field = model._meta.get_field(model.USERNAME_FIELD)
    limit = getattr(field, "max_length", None) or 150
    base = f"{identity.provider}:{identity.subject}"
    return base[:limit]


def user_for_identity(identity: ProviderClaims) -> AbstractBaseUser:
    """The Django user linked to the provider's subject, created on first sign-in if allowed."""
    from .models import ProviderIdentity

    config = get_settings().AUTH
    provider = config.provider(identity.provider)
    link = ProviderIdentity.objects.select_related("user").filter(issuer=identity.issuer, subject=identity.subject)
    found = link.first()
    if found is None:
        allowed = provider.create_users if provider is not None and provider.create_users is not None else None
        if not (config.CREATE_USERS if allowed is None else allowed):
            raise SignInRefused(f"This {identity.provider!r} identity has no account on this site.")
        model = get_user_model()
        try:
            with transaction.atomic():
                user = model._default_manager.create_user(**{model.USERNAME_FIELD: _new_username(identity)})
                for claim, attribute in (
                    ("email", "email"),
                    ("given_name", "first_name"),
                    ("family_name", "last_name"),
                ):
                    value = identity.claims.get(claim)
                    if isinstance(value, str) and hasattr(user, attribute):
                        max_length = getattr(model._meta.get_field(attribute), "max_length", None) or len(value)
                        setattr(user, attribute, value[:max_length])
                user.save()
                found = ProviderIdentity.objects.create(
                    user=user, provider=identity.provider, issuer=identity.issuer, subject=identity.subject
                )
        except IntegrityError:
            # A concurrent first sign-in of the same subject won: use its link.
            found = link.first()
            if found is None:
                raise
    user = found.user
    if not user.is_active:
        raise InactiveUser("This account is inactive.")
    ProviderIdentity.objects.filter(pk=found.pk).update(last_login=timezone.now())
    return user
