"""The Python offline client: a local SQLite store that syncs with a django-offline-sync server.

It imports nothing from Django, so it runs on a device that has only httpx. Start with
``SyncClient``; see ``docs/client.rst`` for a complete offline round trip.
"""

from __future__ import annotations

from .conflicts import Conflict, ConflictHandler, Resolution, cancel, client_wins, server_wins
from .errors import (
    AuthenticationRequired,
    ConflictError,
    InvalidTableName,
    InvalidURL,
    ItemNotFound,
    OperationRefused,
    PendingOperationsError,
    PushIncomplete,
    ServerError,
    ServerFailure,
    StoreError,
    SyncClientError,
    TransportError,
    UnaddressableItem,
    UnexpectedResponse,
    UnknownTable,
)
from .store import Credentials, LocalStore, PendingOperation
from .sync import PullResult, PushResult, Synchronizer
from .tables import OnlineTable, SyncClient, SyncTable
from .transport import HttpTransport
from .watch import Watcher

__all__ = [
    "AuthenticationRequired",
    "Conflict",
    "ConflictError",
    "ConflictHandler",
    "Credentials",
    "HttpTransport",
    "InvalidTableName",
    "InvalidURL",
    "ItemNotFound",
    "LocalStore",
    "OnlineTable",
    "OperationRefused",
    "PendingOperation",
    "PendingOperationsError",
    "PullResult",
    "PushIncomplete",
    "PushResult",
    "Resolution",
    "ServerError",
    "ServerFailure",
    "StoreError",
    "SyncClient",
    "SyncClientError",
    "SyncTable",
    "Synchronizer",
    "TransportError",
    "UnaddressableItem",
    "UnexpectedResponse",
    "UnknownTable",
    "Watcher",
    "cancel",
    "client_wins",
    "server_wins",
]
