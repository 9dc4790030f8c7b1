"""Test-only SyncModels (label ``tests``, no migrations)."""

from django.db import models

from django_offline_sync.models import SyncModel


class Item(SyncModel):
    """A table with one column of every type the OData translator handles."""

    name = models.CharField(max_length=200, blank=True, default="")
    count = models.IntegerField(null=True, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    ratio = models.FloatField(null=True, blank=True)
    flag = models.BooleanField(default=False)
    when = models.DateTimeField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    ref = models.UUIDField(null=True, blank=True)
    # A nullable string, so the OData tests can check null semantics of string functions.
    label = models.CharField(max_length=100, null=True, blank=True)

    class Meta(SyncModel.Meta):
        app_label = "tests"


_codes = iter(range(1, 1_000_000))


def next_code() -> str:
    """A callable default that differs on every call, like ``uuid4`` or ``timezone.now``."""
    return f"code-{next(_codes)}"


class Coded(SyncModel):
    """A callable default and a unique column: what a PUT fills in, and a constraint on update."""

    name = models.CharField(max_length=100, blank=True, default="")
    code = models.CharField(max_length=50, default=next_code)
    tags = models.JSONField(default=list, blank=True)
    slug = models.CharField(max_length=50, unique=True, null=True, blank=True)

    class Meta(SyncModel.Meta):
        app_label = "tests"


class Ledger(SyncModel):
    """Decimals wider than a double holds (30 digits): they must reach the wire exactly."""

    amount = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)

    class Meta(SyncModel.Meta):
        app_label = "tests"


class Arrival(SyncModel):
    """Where ``import_sync_table`` tests put the example Task table of a live site: ``complete``
    is missing (an unknown column of the old server) and ``source`` is new (a missing one)."""

    text = models.CharField(max_length=500, blank=True, default="")
    priority = models.IntegerField(default=0)
    due_date = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=20, default="old")

    class Meta(SyncModel.Meta):
        app_label = "tests"


class Numbered(SyncModel):
    """A target whose ``text`` is a number, so a Task's text does not fit it."""

    text = models.IntegerField(null=True, blank=True)

    class Meta(SyncModel.Meta):
        app_label = "tests"
