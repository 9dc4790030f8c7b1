"""``manage.py purge_tombstones``: remove soft-deleted rows older than the retention.

Safe to run from cron while devices sync: short batched transactions, and each table's
resync horizon is recorded before its tombstones go (``django_offline_sync.retention``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_offline_sync.retention import DEFAULT_BATCH_SIZE, command_age, find_models, purge_tombstones, sync_models
from django_offline_sync.wire import format_timestamp


class Command(BaseCommand):
    help = (
        "Remove tombstones (soft-deleted rows) older than OFFLINE_SYNC['TOMBSTONE_RETENTION'] or "
        "--older-than, and record each table's resync horizon. Prints counts per table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="Age of the oldest tombstone kept: 90d, 12h, 30m, 3600 (seconds)… "
            "Default: OFFLINE_SYNC['TOMBSTONE_RETENTION'].",
        )
        parser.add_argument(
            "--table",
            action="append",
            default=[],
            metavar="TABLE",
            help="Only this synced table (app_label.Model, model name or database table); repeatable.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be purged; change nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Rows deleted per transaction."
        )

    def handle(
        self, *args: Any, older_than: str | None, table: list[str], dry_run: bool, batch_size: int, **options: Any
    ) -> None:
        age = command_age(older_than, "TOMBSTONE_RETENTION", "Tombstone")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            models = find_models(table) if table else sync_models()
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        total = 0
        for model in models:
            report = purge_tombstones(model, age, dry_run=dry_run, batch_size=batch_size)
            total += report.purged
            verb = "would purge" if dry_run else "purged"
            line = f"{report.label} ({report.table}): {verb} {report.purged} tombstone(s)"
            if report.kept_referenced:
                line += f", kept {report.kept_referenced} still referenced by other rows"
            if report.horizon is not None:
                line += f"; horizon {format_timestamp(report.horizon)}"
            self.stdout.write(line)
        self.stdout.write(f"{'Would purge' if dry_run else 'Purged'} {total} tombstone(s) older than {age}.")
