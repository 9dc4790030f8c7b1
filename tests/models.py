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
