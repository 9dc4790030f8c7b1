"""Site-issued sign-in tokens: HS256 JWTs (PyJWT) naming a Django user.

The token is what the clients call ``authenticationToken`` and send back in ``X-ZUMO-AUTH``
(v1/v2) or ``Authorization: Bearer`` (v3). Claims: ``iss``/``aud`` (``AUTH["ISSUER"]``/
``AUTH["AUDIENCE"]``), ``sub`` (the user's primary key), ``iat``/``nbf``/``exp``, ``jti`` (for
sign-out), ``idp`` (the provider that signed the user in) and ``sah``, a digest of the user's
password hash, so that changing a password signs out every device, as it ends Django sessions.

Keys rotate through ``AUTH["SIGNING_KEYS"]`` (newest first signs; all verify, chosen by the
``kid`` header), or, when that is empty, through Django's own ``SECRET_KEY`` and
``SECRET_KEY_FALLBACKS`` (a key derived from each; the raw secret never signs a token).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, router
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.debug import sensitive_variables

from ..exceptions import InactiveUser, InvalidToken, TokenExpired, TokenRevoked, UnknownUser
from ..settings import AuthSettings, SigningKey, get_settings

__all__ = ["IssuedToken", "decode_token", "issue_token", "user_for_claims", "user_id"]

ALGORITHM: Final = "HS256"
_REQUIRED: Final = ["iss", "aud", "sub", "iat", "exp", "jti"]
_SAH_SALT: Final = "django_offline_sync.auth.session"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    user_id: str
    provider: str
    expires_at: dt.datetime

    def login_body(self) -> dict[str, Any]:
        """The answer every client's login reads: ``{"authenticationToken", "user": {"userId"}}``."""
        return {"authenticationToken": self.token, "user": {"userId": self.user_id}}


def _derived(secret: str) -> str:
    return salted_hmac("django_offline_sync.auth.signing", "key", secret=secret, algorithm="sha256").hexdigest()


def signing_keys(config: AuthSettings | None = None) -> tuple[SigningKey, ...]:
    """The configured keys, or keys derived from ``SECRET_KEY`` and its fallbacks; first signs."""
    config = config or get_settings().AUTH
    if config.SIGNING_KEYS:
        return config.SIGNING_KEYS
    return _derived_keys(_secrets())


def _secrets() -> tuple[str, ...]:
    """``SECRET_KEY`` and its fallbacks, newest first."""
    return (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))


@lru_cache(maxsize=8)
def _derived_keys(secrets: tuple[str, ...]) -> tuple[SigningKey, ...]:
    """The keys derived from ``secrets``, once per set of secrets (two HMACs each, on every
    signed-in request before)."""
    # The kid names the derived key by a digest prefix, so a rotated SECRET_KEY gets a new kid.
    derived = [_derived(secret) for secret in secrets]
    return tuple(SigningKey(f"sk-{key[:8]}", key) for key in derived)


def user_id(user: AbstractBaseUser) -> str:
    """The ``userId`` the clients see: the user's primary key as a string."""
    return str(user.pk)


def _session_digest(user: AbstractBaseUser, secret: str | None = None) -> str:
    """A digest of the stored password hash (as Django's session auth hash), keyed by ``secret``."""
    return salted_hmac(_SAH_SALT, user.password, secret=secret, algorithm="sha256").hexdigest()[:22]


def _session_digest_matches(user: AbstractBaseUser, digest: Any) -> bool:
    return isinstance(digest, str) and any(
        constant_time_compare(digest, _session_digest(user, secret)) for secret in _secrets()
    )


def issue_token(user: AbstractBaseUser, provider: str, *, now: dt.datetime | None = None) -> IssuedToken:
    config = get_settings().AUTH
    key = signing_keys(config)[0]
    issued = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    expires = issued + dt.timedelta(seconds=config.TOKEN_LIFETIME)
    claims = {
        "iss": config.ISSUER,
        "aud": config.AUDIENCE,
        "sub": str(user.pk),
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": uuid.uuid4().hex,
        "idp": provider,
        "sah": _session_digest(user),
    }
    token = jwt.encode(claims, key.key, algorithm=ALGORITHM, headers={"kid": key.kid})
    return IssuedToken(token, user_id(user), provider, expires)


@sensitive_variables("token", "key", "keys", "verified")
def decode_token(token: str, *, allow_expired_for: int = 0) -> dict[str, Any]:
    """The claims of a token this site issued; raises ``InvalidToken`` or ``TokenExpired``.

    ``allow_expired_for``: seconds past ``exp`` still accepted (``/.auth/refresh``).
    """
    config = get_settings().AUTH
    keys = signing_keys(config)
    if len(keys) == 1:
        # The common case, one key: verify with it straight away, and read the header from
        # the verified token (PyJWT decodes every segment again for get_unverified_header).
        # Anything that fails goes the way below, which says why.
        try:
            verified = jwt.api_jwt.decode_complete(
                token, keys[0].key, algorithms=[ALGORITHM], audience=config.AUDIENCE, issuer=config.ISSUER,
                leeway=config.LEEWAY + allow_expired_for, options={"require": _REQUIRED},
            )  # fmt: skip
        except jwt.InvalidTokenError:
            pass
        else:
            if verified["header"].get("kid") == keys[0].kid:
                payload: dict[str, Any] = verified["payload"]
                return payload
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise InvalidToken("The sign-in token is not a JWT.") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"The sign-in token is not signed with {ALGORITHM}.")
    kid = header.get("kid")
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        raise InvalidToken("The sign-in token was signed with a key this site does not have (retired or foreign).")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            audience=config.AUDIENCE,
            issuer=config.ISSUER,
            leeway=config.LEEWAY + allow_expired_for,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("The sign-in token's signature does not match.") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("The sign-in token was issued for another audience.") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("The sign-in token was issued by another issuer.") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("The sign-in token is not valid yet (check the device clock).") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"The sign-in token lacks the {exc.claim!r} claim.") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("The sign-in token is malformed.") from None
    return claims


def user_for_claims(claims: dict[str, Any]) -> AbstractBaseUser:
    """The active user the claims name, unless the token was signed out or the password changed."""
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=claims["sub"])
    except (model.DoesNotExist, ValueError, TypeError):
        raise UnknownUser() from None
    if not getattr(user, "is_active", True):
        raise InactiveUser()
    if not _session_digest_matches(user, claims.get("sah")):
        raise TokenRevoked("The password changed since this token was issued; sign in again.")
    if _signed_out(str(claims["jti"])):
        raise TokenRevoked("This token was signed out; sign in again.")
    return user


def _signed_out(jti: str) -> bool:
    """Whether the token ``jti`` was signed out: one primary-key lookup on every signed-in
    request. Written as SQL rather than ``RevokedToken.objects.filter(…).exists()``: building
    that query was about a tenth of a signed-in page's CPU, for a statement that never changes
    (``bench/auth.py --profile``)."""
    from .models import RevokedToken

    alias = router.db_for_read(RevokedToken)
    connection = connections[alias]
    quote = connection.ops.quote_name
    jti_column = str(RevokedToken._meta.get_field("jti").column)
    sql = f"SELECT 1 FROM {quote(RevokedToken._meta.db_table)} WHERE {quote(jti_column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [jti])
        return cursor.fetchone() is not None


def revoke(claims: dict[str, Any]) -> None:
    """Sign a token out until it expires, and forget tokens already past expiry."""
    from .models import RevokedToken

    now = dt.datetime.now(dt.UTC)
    expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    RevokedToken.objects.filter(expires_at__lt=now - dt.timedelta(seconds=get_settings().AUTH.REFRESH_GRACE)).delete()
    RevokedToken.objects.update_or_create(jti=str(claims["jti"]), defaults={"expires_at": expires})
