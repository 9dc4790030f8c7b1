"""Every exception django-offline-sync raises.

Client mistakes are DRF ``APIException`` subclasses with a status, a default message and a
short snake_case code; the generation adapters render them in each client's error shape.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException


class InvalidId(ValueError):
    """A client-supplied id breaks the id rules (PROTOCOL.md §2.2)."""


class ODataError(APIException):
    """A malformed or disallowed OData query option.

    ``option`` names the query option (``$filter``…), ``position`` the 0-based character
    offset in its value where the problem was found (or ``None``), ``expected`` what the
    parser expected there.
    """

    status_code = status.HTTP_400_BAD_REQUEST
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
        super().__init__(detail=f"{message}{where}", code=self.default_code)

    def as_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "position": self.position,
            "expected": self.expected,
        }


class UnsupportedVersion(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("An invalid API version was specified in the request.")
    default_code = "unsupported_version"


class BadRequest(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The request is invalid.")
    default_code = "bad_request"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "payload_too_large"


class ItemNotFound(APIException):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = _("The item does not exist.")
    default_code = "not_found"


class ItemGone(APIException):
    """A soft-deleted row addressed by a v3 client (410, PROTOCOL.md §6.3)."""

    status_code = status.HTTP_410_GONE
    default_detail = _("The item has been deleted.")
    default_code = "gone"


class Conflict(APIException):
    """409/412 carrying the current server entity (already serialized) and its ETag."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The item has been modified on the server.")
    default_code = "conflict"

    def __init__(self, entity: dict[str, Any] | None, etag: str | None, status_code: int = 409) -> None:
        self.entity = entity
        self.etag = etag
        self.status_code = status_code
        code = "precondition_failed" if status_code == 412 else "conflict"
        super().__init__(code=code)


class PreconditionRequired(APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = _("This table requires an If-Match header on updates and deletes.")
    default_code = "precondition_required"


class InvalidCursor(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("The paging cursor is invalid or has been tampered with.")
    default_code = "invalid_cursor"
