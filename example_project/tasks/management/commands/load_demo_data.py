"""``load_demo_data``: field-inspection demo rows for the example project.

Ids are derived from ``--seed``, so running the command again adds only what is missing;
``--reset`` removes every task, note and inspection first (for good, not soft).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from example_project.tasks.management.demo import get_or_create_inspector
from example_project.tasks.models import Inspection, Note, Task

DEMO_NAMESPACE = uuid.UUID("5f1c1e0a-3c1b-4d0e-9a55-0d3e6f5a7b21")
TASK_COUNT = 50
DELETED_COUNT = 4

ACTIONS = ["Inspect", "Clear debris from", "Photograph", "Check outfall of", "Measure flow at", "Survey", "Flush"]
ASSETS = [
    "culvert C-{n}",
    "manhole MH-{n}",
    "storm drain SD-{n}",
    "gully G-{n}",
    "headwall HW-{n}",
    "pumping station PS-{n}",
    "soakaway SA-{n}",
]
ROADS = [
    "Mill Road",
    "Station Street",
    "Church Lane",
    "Riverside Drive",
    "Quarry Hill",
    "Old Forge Way",
    "Meadow Close",
    "Bridge End",
]
NOTES = [
    "Access via the field gate; key in the depot lock box.",
    "Grille partly blocked with leaves, cleared by hand.",
    "Water standing about 10 cm at the inlet.",
    "Resident reported flooding after heavy rain last week.",
    "Cracked cover; cone placed, replacement ordered.",
    "Traffic management needed: narrow verge, blind bend.",
    "Photographed both ends; uploaded to the asset record.",
    "Tree roots visible at the joint, CCTV survey recommended.",
]
REMARKS = {
    "good": "No defects found.",
    "worn": "Surface wear on the invert, monitor next year.",
    "cracked": "Longitudinal crack at the crown, about 40 cm.",
    "blocked": "Silt and debris filling a third of the bore.",
}


def demo_id(seed: int, kind: str, n: int) -> str:
    """A fixed id per demo row, so a second run finds the rows of the first."""
    return uuid.uuid5(DEMO_NAMESPACE, f"{seed}:{kind}:{n}").hex


class Command(BaseCommand):
    help = "Load demo tasks, notes and inspections (idempotent; --reset to wipe and reload)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=2024, help="Seed for the demo content and ids.")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Permanently delete ALL tasks, notes and inspections before loading.",
        )

    @transaction.atomic
    def handle(self, *args: Any, seed: int, reset: bool, **options: Any) -> None:
        if reset:
            Note.all_objects.all().hard_delete()
            Task.all_objects.all().hard_delete()
            Inspection.all_objects.all().hard_delete()
            self.stdout.write("Removed all tasks, notes and inspections.")
        rng = random.Random(seed)
        today = timezone.now().replace(hour=17, minute=0, second=0, microsecond=0)
        tasks, notes, deleted = self.build_tasks(rng, seed, today)
        inspections = self.build_inspections(rng, seed, today)

        created_tasks = self.create_missing(Task, tasks)
        created_notes = self.create_missing(Note, notes)
        created_inspections = self.create_missing(Inspection, inspections)
        # Soft-delete only rows made now: a row a user restored stays restored.
        newly = {t.pk for t in created_tasks}
        to_delete = [pk for pk in deleted if pk in newly]
        Note.objects.filter(task_id__in=to_delete).delete()
        Task.objects.filter(pk__in=to_delete).delete()

        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: created {len(created_tasks)} tasks, {len(created_notes)} notes and "
                f"{len(created_inspections)} inspections "
                f"({len(tasks) - len(created_tasks)} tasks were already there)."
            )
        )

    def build_tasks(self, rng: random.Random, seed: int, today: dt.datetime) -> tuple[list, list, list]:
        tasks, notes = [], []
        for n in range(TASK_COUNT):
            asset = rng.choice(ASSETS).format(n=rng.randint(1, 40))
            text = f"{rng.choice(ACTIONS)} {asset} on {rng.choice(ROADS)}"
            due = today + dt.timedelta(days=rng.randint(-10, 30))
            task = Task(
                id=demo_id(seed, "task", n),
                text=text,
                priority=rng.choice([0, 0, 1, 1, 1, 2, 2, 3]),
                due_date=due,
                complete=due < today and rng.random() < 0.7,
            )
            tasks.append(task)
            if rng.random() < 0.3:
                for m in range(rng.randint(1, 3)):
                    notes.append(Note(id=demo_id(seed, f"note-{n}", m), task_id=task.id, body=rng.choice(NOTES)))
        deleted = [t.pk for t in rng.sample(tasks, DELETED_COUNT)]
        return tasks, notes, deleted

    def build_inspections(self, rng: random.Random, seed: int, today: dt.datetime) -> list:
        inspector = get_or_create_inspector()
        rows = []
        for n in range(6):
            condition = rng.choice(list(REMARKS))
            rows.append(
                Inspection(
                    id=demo_id(seed, "inspection", n),
                    owner=inspector,
                    site=rng.choice(ROADS),
                    pipe_id=f"P-{rng.randint(100, 999)}",
                    condition=condition,
                    remarks=REMARKS[condition],
                    inspected_at=today - dt.timedelta(days=rng.randint(0, 20), hours=rng.randint(1, 8)),
                )
            )
        return rows

    def create_missing(self, model: Any, rows: list) -> list:
        existing = set(model.all_objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True))
        return model.objects.bulk_create([r for r in rows if r.pk not in existing])
