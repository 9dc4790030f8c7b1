"""``import_sync_table``: copy a table from a running Azure Mobile Apps or Datasync server.

    python manage.py import_sync_table --from https://old.azurewebsites.net --table TodoItem \\
        --into tasks.Task --generation v2 --header "X-ZUMO-AUTH: …"

Rows keep their id, createdAt, updatedAt, deleted and the version the old server issued, so
devices switch the URL and carry on: their queued writes still match, their delta tokens
still hold. Run it again to resume an interrupted import (or to check: an import that is up to
date writes nothing); ``--since-last-import`` catches up with what changed on the old server
since. ``docs/importing.rst`` walks through a cut-over.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_offline_sync.client.errors import InvalidURL
from django_offline_sync.client.transport import HttpTransport
from django_offline_sync.importer import DEFAULT_OVERLAP, PAGE_SIZE, ImportFailed, ImportReport, TableImporter
from django_offline_sync.models import SyncModel


class Command(BaseCommand):
    help = (
        "Import every row of a table (tombstones included) from a running Azure Mobile Apps (v2) or Datasync "
        "(v3) server, keeping ids, timestamps and versions, so devices can switch to this site without a resync."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, metavar="URL",
                            help="The old server's base URL (the tables are under URL/tables/).")
        parser.add_argument("--table", required=True, help="The table's name on the old server.")
        parser.add_argument("--into", metavar="APP_LABEL.MODEL",
                            help="The SyncModel to import into (default: the one model named like the table).")
        parser.add_argument("--generation", choices=["v2", "v3"], default="v2",
                            help="The protocol the old server speaks: v2 Azure Mobile Apps (default), v3 Datasync.")
        parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                            help="A header sent with every request (authentication, e.g. X-ZUMO-AUTH); repeatable.")
        parser.add_argument("--since-last-import", action="store_true",
                            help="Catch up: read only what changed since the last finished import (minus --overlap).")
        parser.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP.total_seconds(), metavar="SECONDS",
                            help="How far before the last import's newest row a catch-up starts reading "
                                 f"(default {int(DEFAULT_OVERLAP.total_seconds())}).")
        parser.add_argument("--restart", action="store_true",
                            help="Forget the progress of an earlier import and read every row again.")
        parser.add_argument("--page-size", type=int, default=PAGE_SIZE, help=f"Rows per request (default {PAGE_SIZE}).")
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds per request (default 60).")
        parser.add_argument("--database", default=None, help="The database to write to (default: the model's router).")

    def handle(self, *args: Any, **options: Any) -> None:
        model = self._model(options["into"], options["table"])
        headers = self._headers(options["header"])
        if options["page_size"] < 1:
            raise CommandError("--page-size must be at least 1.")
        if options["overlap"] < 0:
            raise CommandError("--overlap must not be negative.")
        try:
            transport = HttpTransport(
                options["source"], options["generation"], headers=headers, timeout=options["timeout"]
            )
        except (InvalidURL, ValueError) as exc:
            raise CommandError(f"--from: {exc}") from exc
        verbosity = int(options["verbosity"])

        def progress(report: ImportReport) -> None:
            if verbosity < 1:
                return
            of = f"/{report.total}" if report.total is not None else ""
            self.stdout.write(
                f"  page {report.pages}: {report.received}{of} row(s) read, {report.inserted} inserted, "
                f"{report.updated} updated, {report.unchanged} up to date; newest updatedAt {report.token}"
            )

        with transport:
            try:
                importer = TableImporter(
                    model,
                    transport,
                    options["table"],
                    page_size=options["page_size"],
                    since_last_import=options["since_last_import"],
                    overlap=dt.timedelta(seconds=options["overlap"]),
                    restart=options["restart"],
                    progress=progress,
                    using=options["database"],
                )
                if verbosity >= 1:
                    mode = "catching up with" if options["since_last_import"] else "importing"
                    self.stdout.write(f"{model._meta.label}: {mode} {importer.source} ({options['generation']})")
                report = importer.run()
            except ImportFailed as exc:
                raise CommandError(str(exc)) from exc
        if report.resumed_from and verbosity >= 1:
            self.stdout.write(f"  started at updatedAt {report.resumed_from} (rows from there on were read again)")
        style = self.style.WARNING
        for index, line in enumerate(report.lines()):
            if index == 0:
                if verbosity >= 1:
                    self.stdout.write(self.style.SUCCESS(f"{model._meta.label}: {line}"))
            else:
                self.stderr.write(style(line))
        if verbosity >= 1:
            self.stdout.write(
                f"Newest updatedAt imported: {report.token or '-'}; this table's stamps continue after it."
            )

    @staticmethod
    def _model(label: str | None, table: str) -> type[SyncModel]:
        if label:
            try:
                model = apps.get_model(label)
            except (LookupError, ValueError) as exc:
                raise CommandError(f"--into {label!r}: no such model (write app_label.ModelName).") from exc
            if not issubclass(model, SyncModel):
                raise CommandError(f"--into {label!r} is not a SyncModel.")
            return model
        named = [
            m for m in apps.get_models()
            if issubclass(m, SyncModel) and m.__name__.lower() == table.lower() and not m._meta.proxy
        ]
        if len(named) == 1:
            return named[0]
        found = ", ".join(sorted(m._meta.label for m in named)) or "none"
        raise CommandError(f"Which model does table {table!r} go into? Name it with --into app_label.Model "
                           f"(SyncModels named {table!r}: {found}).")

    @staticmethod
    def _headers(values: list[str]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for value in values:
            name, sep, text = value.partition(":")
            if not sep or not name.strip() or any(c in name for c in " \t\r\n") or "\n" in text or "\r" in text:
                raise CommandError(f"--header {value!r}: write it as NAME:VALUE, e.g. --header 'X-ZUMO-AUTH: token'.")
            headers[name.strip()] = text.strip()
        return headers
