"""``manage.py purge_rejections``: remove conflict and rejection ledger entries past the retention."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_offline_sync.ledger import purge_rejections
from django_offline_sync.retention import command_age


class Command(BaseCommand):
    help = (
        "Remove entries of the conflict and rejection ledger older than OFFLINE_SYNC['REJECTION_RETENTION'] "
        "or --older-than, resolved or not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="90d, 12h, 30m, 3600 (seconds)… Default: OFFLINE_SYNC['REJECTION_RETENTION'].",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be removed; change nothing.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Entries deleted per transaction.")

    def handle(self, *args: Any, older_than: str | None, dry_run: bool, batch_size: int, **options: Any) -> None:
        age = command_age(older_than, "REJECTION_RETENTION", "Ledger")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        count = purge_rejections(age, dry_run=dry_run, batch_size=batch_size)
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(f"{verb} {count} ledger {'entry' if count == 1 else 'entries'} older than {age}.")
