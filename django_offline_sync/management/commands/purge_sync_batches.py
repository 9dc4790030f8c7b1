"""``manage.py purge_sync_batches``: delete batch records older than ``BATCH_RECORD_TTL``.

A batch's record (``SyncBatch``) only serves to answer a retry of that batch. Each user's
expired records are deleted by that user's next batch; this command removes everyone's,
including users who never batch again. Run it daily (cron, a scheduler).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from django_offline_sync.models import SyncBatch
from django_offline_sync.settings import get_settings


class Command(BaseCommand):
    help = "Delete the records of committed batches older than OFFLINE_SYNC['BATCH_RECORD_TTL']."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="the database holding the records")
        parser.add_argument(
            "--older-than", type=int, metavar="SECONDS", help="instead of BATCH_RECORD_TTL (at least 1)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        age = options["older_than"] or get_settings().BATCH_RECORD_TTL
        if age < 1:
            self.stderr.write("--older-than must be at least 1 second.")
            raise SystemExit(2)
        cutoff = timezone.now() - dt.timedelta(seconds=age)
        deleted, _ = SyncBatch.objects.using(options["database"]).filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} batch record(s) older than {age} s.")
