"""A project's own DRF exception handler, as a site would configure it."""

from __future__ import annotations

from rest_framework.views import exception_handler


def tagged_handler(exc, context):
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"project": "handled", "kind": type(exc).__name__}
    return response
