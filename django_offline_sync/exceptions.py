"""Every exception the table endpoints raise, one class per failure, each with a stable ``code``.

Client mistakes are DRF ``APIException`` subclasses: a status, a default message and a
snake_case ``default_code`` that never changes between releases, so a client (or a project's
``EXCEPTION_HANDLER``) can branch on it. ``exception_handler`` renders them in the calling
generation's error body (``docs/protocol.rst`` §8). The 400s share the base ``BadRequest``.

``EntityConflict`` (409/412) is not an error body: the protocol answers a conflict with the
server's current entity, which the view renders itself.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from .wire import InvalidId

logger = logging.getLogger("django_offline_sync")

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "BodyNotAllowed",
    "BodyNotObject",
    "ConstraintViolation",
    "EmptyBody",
    "EntityConflict",
    "IdMismatch",
    "IdNotAccepted",
    "IdUnavailable",
    "InactiveUser",
    "InvalidBodyId",
    "InvalidCredentials",
    "InvalidCursor",
    "InvalidId",
    "InvalidPrecondition",
    "InvalidQueryParameter",
    "InvalidToken",
    "ItemGone",
    "ItemNotFound",
    "MalformedBody",
    "MixedGeneration",
    "ODataError",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ProviderTokenRejected",
    "ProviderUnavailable",
    "QueryTimeout",
    "ReadConflict",
    "SchemaNotMigrated",
    "SignInRefused",
    "TokenExpired",
    "TokenRevoked",
    "UniqueConflict",
    "UnknownFields",
    "UnknownProvider",
    "UnknownUser",
    "UnsupportedVersion",
    "exception_handler",
]


class BadRequest(APIException):
    """Base of every 400 the table endpoints answer."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The request is invalid.")
    default_code = "bad_request"


class ODataError(BadRequest):
    """A malformed or disallowed OData query option.

    ``option`` names the query option (``$filter``…), ``position`` the 0-based character
    offset in its value where the problem was found (or ``None``), ``expected`` what the
    parser expected there.
    """

    default_detail = _("Invalid OData query.")
    default_code = "invalid_query"

    def __init__(
        self,
        message: str,
        *,
        option: str | None = None,
        position: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.option = option
        self.position = position
        self.expected = expected
        where = ""
        if option is not None:
            where = f" in {option}"
            if position is not None:
                where += f" at position {position}"
        super().__init__(detail=f"{message}{where}")

    def as_dict(self) -> dict[str, Any]:
        return {"option": self.option, "position": self.position, "expected": self.expected}


class UnsupportedVersion(BadRequest):
    """No, an unknown or a disabled ``ZUMO-API-VERSION`` (§1.3)."""

    default_detail = _("An invalid API version was specified in the request.")
    default_code = "unsupported_version"


class MixedGeneration(BadRequest):
    """A request that mixes two generations' dialects (e.g. ``__updatedAt`` with 3.0.0)."""

    default_detail = _("The request mixes the dialects of two client generations.")
    default_code = "mixed_generation"


class InvalidQueryParameter(BadRequest):
    """A query parameter the generation reserves or does not accept (§2.4, v1 ``$``/``__``)."""

    default_detail = _("The request has an invalid query parameter.")
    default_code = "invalid_parameter"


class MalformedBody(BadRequest):
    default_detail = _("The request body is not valid JSON.")
    default_code = "malformed_body"


class BodyNotObject(BadRequest):
    default_detail = _("The request body must be a JSON object.")
    default_code = "body_not_object"


class EmptyBody(BadRequest):
    default_detail = _("The request body is empty; send a JSON object.")
    default_code = "empty_body"


class BodyNotAllowed(BadRequest):
    default_detail = _("This request must not have a body.")
    default_code = "body_not_allowed"


class UnknownFields(BadRequest):
    default_detail = _("The request body has fields this table does not have.")
    default_code = "unknown_field"


class InvalidBodyId(BadRequest):
    """An id that breaks the id rules (§2.2)."""

    default_detail = _("The id is invalid.")
    default_code = "invalid_id"


class IdMismatch(BadRequest):
    default_detail = _("The id in the body does not match the id in the URL.")
    default_code = "id_mismatch"


class IdNotAccepted(BadRequest):
    """An id sent for a table whose ids the server assigns (integer keys)."""

    default_detail = _("This table assigns ids itself; do not send an id.")
    default_code = "id_not_accepted"


class IdUnavailable(BadRequest):
    """An insert whose id belongs to a row outside the caller's data view (never revealed)."""

    default_detail = _("An item with this id cannot be created.")
    default_code = "id_unavailable"


class ConstraintViolation(BadRequest):
    default_detail = _("The item violates a database constraint.")
    default_code = "constraint_violation"


class InvalidPrecondition(BadRequest):
    """A malformed ``If-Match`` header or body version (§6.2): not one quoted strong ETag of
    base64 text. A well-formed version this server did not issue is a conflict instead."""

    default_detail = _("The precondition is not a well-formed version.")
    default_code = "invalid_precondition"


class InvalidCursor(BadRequest):
    default_detail = _("The paging cursor is invalid or has been tampered with.")
    default_code = "invalid_cursor"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "payload_too_large"


class QueryTimeout(APIException):
    """A list or count query stopped after ``QUERY_TIMEOUT_MS`` (503): the server is not broken,
    the query is too expensive for it right now."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The query took too long and was stopped.")
    default_code = "query_timeout"

    def __init__(self, timeout_ms: int | None = None) -> None:
        detail = None
        if timeout_ms is not None:
            detail = (
                f"The query ran longer than {timeout_ms} ms and was stopped; "
                "narrow $filter or $orderby, or try again later."
            )
        super().__init__(detail=detail)


class SchemaNotMigrated(APIException):
    """The table (or one of its columns) is missing from the database: ``migrate`` has not run.

    A deployment problem rather than a bad request, and usually a passing one (new code
    served before its migration ran), so 503: clients retry later. The operator reads the
    database's own error in the log (``django_offline_sync``); the body names the fix.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The server's database is not migrated for this table; run `python manage.py migrate`.")
    default_code = "not_migrated"


#: How each backend reports a missing table or column: SQLite's messages, PostgreSQL's
#: SQLSTATEs (undefined_table, undefined_column), MySQL/MariaDB's error numbers.
_SQLITE_MISSING = ("no such table", "no such column", "has no column named")
_POSTGRES_MISSING = frozenset({"42P01", "42703"})
_MYSQL_MISSING = frozenset({1146, 1054})


def is_missing_schema(exc: BaseException) -> bool:
    """Whether a database error says a table or column does not exist."""
    if not isinstance(exc, DatabaseError):
        return False
    if exc.args and isinstance(exc.args[0], int):  # MySQL drivers: (errno, message)
        return exc.args[0] in _MYSQL_MISSING
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if sqlstate is not None:
        return sqlstate in _POSTGRES_MISSING
    text = str(exc)
    return any(phrase in text for phrase in _SQLITE_MISSING)


class ReadConflict(APIException):
    """A list or count read the database cancelled for a conflicting change (503, retry).

    On a PostgreSQL streaming replica: replaying the primary's WAL needed what the read held
    (a row version vacuum removed, a table lock) for longer than ``max_standby_streaming_delay``
    ("canceling statement due to conflict with recovery", SQLSTATE 40001). The same read a
    moment later succeeds, so the answer says to retry, with ``Retry-After``
    (``docs/scaling.rst``).
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The read conflicted with a concurrent change on the database and was cancelled; retry.")
    default_code = "read_conflict"
    wait = 1  # seconds; DRF's handler sends it as Retry-After


class ItemNotFound(APIException):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = _("The item does not exist.")
    default_code = "not_found"


class ItemGone(APIException):
    """A soft-deleted row addressed by a v3 client (410, §6.3)."""

    status_code = status.HTTP_410_GONE
    default_detail = _("The item has been deleted.")
    default_code = "gone"


class EntityConflict(APIException):
    """A write refused because of the row's current state; carries the current entity.

    Raised inside the write's transaction (which it rolls back). The view answers it with
    the entity as the body and its ``ETag``, never through the exception handler, because
    every client reads the server's copy from that body (§9).
    """

    status_code: int = status.HTTP_409_CONFLICT
    default_detail = _("The item has been modified on the server.")
    default_code = "conflict"

    def __init__(self, entity: dict[str, Any], etag: str | None) -> None:
        self.entity = entity
        self.etag = etag
        super().__init__()


class UniqueConflict(EntityConflict):
    """409: an insert of an existing id, or a v2 body version that no longer matches."""


class PreconditionFailed(EntityConflict):
    """412: the ``If-Match`` version no longer matches."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"


# -- sign-in (django_offline_sync.auth) ------------------------------------------------------
# Every 401 says what was wrong with the credentials, never echoing them: an app tells "sign in
# again" (expired, revoked) from "this build is misconfigured" (bad signature, wrong audience).


class AuthenticationError(AuthenticationFailed):
    """Base of the sign-in 401s."""

    default_detail = _("The sign-in token is not valid.")
    default_code = "authentication_failed"


class InvalidToken(AuthenticationError):
    """Not a token this site issued: malformed, bad signature, unknown key, wrong issuer or audience."""

    default_detail = _("The sign-in token is not valid.")
    default_code = "invalid_token"


class TokenExpired(AuthenticationError):
    default_detail = _("The sign-in token has expired; sign in again or refresh it.")
    default_code = "token_expired"


class TokenRevoked(AuthenticationError):
    """The token was signed out (``/.auth/logout``) or the user's password changed since it was issued."""

    default_detail = _("The sign-in token has been revoked; sign in again.")
    default_code = "token_revoked"


class UnknownUser(AuthenticationError):
    default_detail = _("The user this token names no longer exists.")
    default_code = "unknown_user"


class InactiveUser(AuthenticationError):
    default_detail = _("The user this token names is inactive.")
    default_code = "inactive_user"


class InvalidCredentials(AuthenticationError):
    """A custom login whose username and password do not match an active user."""

    default_detail = _("The username or password is incorrect.")
    default_code = "invalid_credentials"


class ProviderTokenRejected(AuthenticationError):
    """A provider token (``access_token``/``id_token``/``authorization_code``) that did not validate."""

    default_detail = _("The identity provider's token was not accepted.")
    default_code = "provider_token_rejected"


class SignInRefused(PermissionDenied):
    """A valid provider identity with no Django user, on a site that does not create users (403)."""

    default_detail = _("This identity has no account on this site.")
    default_code = "sign_in_refused"


class UnknownProvider(APIException):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = _("No such sign-in provider.")
    default_code = "unknown_provider"


class ProviderUnavailable(APIException):
    """The identity provider could not be reached or answered nonsense (502)."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = _("The identity provider could not be reached.")
    default_code = "provider_unavailable"


# -- rendering -------------------------------------------------------------------------------


def describe(exc: APIException) -> tuple[str, dict[str, Any]]:
    """A one-line message and structured details for any DRF exception."""
    extra: dict[str, Any] = {"errorCode": exc.default_code}
    if isinstance(exc, ODataError):
        extra.update({k: v for k, v in exc.as_dict().items() if v is not None})
        return str(exc.detail), extra
    detail = exc.detail
    if isinstance(exc, ValidationError) and isinstance(detail, dict):
        errors = {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
        extra["errorCode"] = "invalid_item"
        extra["errors"] = errors
        parts = [f"{field}: {' '.join(messages)}" for field, messages in errors.items()]
        return "Invalid item. " + "; ".join(parts), extra
    if isinstance(detail, list):
        return " ".join(str(d) for d in detail), extra
    return str(detail), extra


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """A DRF exception handler that renders errors in the calling generation's body shape.

    ``SyncViewSet`` uses it unless the project set its own ``REST_FRAMEWORK
    ["EXCEPTION_HANDLER"]``; a project handler can call it to keep the protocol's bodies.
    DRF's own handler runs first (headers such as ``WWW-Authenticate`` and ``Retry-After``,
    ``Http404``/``PermissionDenied`` mapping); only the body is replaced, and only for a view
    that has a ``generation`` (a ``SyncViewSet``): other views keep DRF's body.
    """
    # Imported here: rest_framework.views imports the authentication classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if is_missing_schema(exc) and getattr(context.get("view"), "generation", None) is not None:
        logger.error("A table of %s is not migrated", type(context["view"]).__name__, exc_info=exc)
        exc = SchemaNotMigrated()
    response = drf_exception_handler(exc, context)
    generation = getattr(context.get("view"), "generation", None)
    if response is None or generation is None:
        return response
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied()
    elif not isinstance(exc, APIException):  # pragma: no cover - DRF answers only the three
        return response
    message, extra = describe(exc)
    response.data = generation.error_body(response.status_code, message, extra)
    return response
