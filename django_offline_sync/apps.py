"""Django application config: registers the system checks, the migrate handlers, the change-event
notifier, the ledger's request hooks (and the OpenAPI extension when drf-spectacular is installed).

``post_migrate`` stamps rows that predate a table's adoption of ``SyncModel``; ``pre_migrate``
refuses a migration that would change a synced table's primary key type (``adoption``).
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OfflineSyncConfig(AppConfig):
    name = "django_offline_sync"
    label = "offline_sync"
    verbose_name = _("Offline sync")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate, pre_migrate

        from . import checks  # noqa: F401  (registers the checks)
        from .adoption import refuse_key_changes, stamp_after_migrate
        from .ledger import discard_pending, flush_pending

        try:
            import drf_spectacular  # noqa: F401
        except ImportError:
            pass
        else:
            from . import openapi  # noqa: F401  (registers the drf-spectacular extension)

        connection_created.connect(_register_sqlite_functions, dispatch_uid="offline_sync_sqlite_functions")
        # Sent once per installed app; ``sender=self`` runs each handler once per migrate.
        pre_migrate.connect(refuse_key_changes, sender=self, dispatch_uid="offline_sync_refuse_key_changes")
        post_migrate.connect(stamp_after_migrate, sender=self, dispatch_uid="offline_sync_stamp_after_migrate")

        from .events import notify_committed
        from .signals import sync_committed

        # On PostgreSQL, tell every process's change-event subscribers (docs/events.rst).
        sync_committed.connect(notify_committed, dispatch_uid="offline_sync_notify_committed")
        # The ledger's entries of refusals inside a transaction, written once it has ended.
        request_started.connect(discard_pending, dispatch_uid="offline_sync_ledger_discard")
        request_finished.connect(flush_pending, dispatch_uid="offline_sync_ledger_flush")


def _register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """SQLite has no base64: give it ``encode_version`` for rows written in SQL (``wire_sql``)."""
    if connection.vendor == "sqlite":
        from .wire import encode_version
        from .wire_sql import SQLITE_VERSION_FUNCTION

        connection.connection.create_function(SQLITE_VERSION_FUNCTION, 1, encode_version, deterministic=True)
