"""Django application config: registers the system checks and nothing else."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OfflineSyncConfig(AppConfig):
    name = "django_offline_sync"
    label = "offline_sync"
    verbose_name = _("Offline sync")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
