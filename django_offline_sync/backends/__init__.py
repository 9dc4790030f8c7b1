"""Database backends (``ENGINE`` values) for sync sites, and what the library asks of a
connection's driver."""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["client_cursor", "several_statements_per_message"]


def several_statements_per_message(connection: Any) -> bool:
    """Whether ``connection`` can send several statements in one message to the database:
    PostgreSQL through psycopg 3 with client-side binding, Django's default (the simple query
    protocol; a statement bound by the server is a prepared statement, which holds one
    command, and Django on psycopg2 is another driver). Each cursor must still be psycopg's
    ``ClientCursor`` (``client_cursor``)."""
    if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("server_side_binding") is True:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3  # (imports the driver)

    return bool(is_psycopg3)


def client_cursor(driver_cursor: Any) -> bool:
    """Whether a driver's cursor (``cursor.cursor`` of Django's) is psycopg 3's
    ``ClientCursor``; ask only where ``several_statements_per_message`` holds."""
    return isinstance(driver_cursor, _client_cursor_class())


@cache
def _client_cursor_class() -> type:
    from psycopg import ClientCursor  # (the driver is imported only where it is in use)

    return ClientCursor
