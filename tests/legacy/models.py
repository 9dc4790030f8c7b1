"""``Asset``: an existing table with an integer primary key that became a SyncModel.

Migration 0001 is the table as it was; 0002 adds the system fields and stamps the rows
already there. The integer ``id`` is kept by overriding SyncModel's string ``id``.
"""

from __future__ import annotations

from django.db import models

from django_offline_sync.models import SyncModel


class Asset(SyncModel):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100)
    serial = models.CharField(max_length=50, blank=True, default="")

    class Meta(SyncModel.Meta):
        app_label = "legacy"

    def __str__(self) -> str:
        return self.name
