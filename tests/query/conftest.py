"""Shared fixtures for the OData tests: a small dataset with one row per interesting case."""

import datetime as dt
import decimal
import uuid

import pytest
from django.db.models import QuerySet

from django_offline_sync.query import FieldMap
from tests.models import Item

UTC = dt.UTC

ROWS = {
    "a": dict(name="Apple", label="Fruit", count=3, price=decimal.Decimal("1.5"), ratio=0.5, flag=True,
              when=dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), day=dt.date(2024, 1, 2), ref=uuid.UUID(int=1)),
    "b": dict(name="banana", label=None, count=None, price=None, ratio=None, flag=False, when=None, day=None, ref=None),
    "c": dict(name="", label="", count=10, price=decimal.Decimal("2"), ratio=-2.5, flag=False,
              when=dt.datetime(2023, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), day=dt.date(2023, 12, 31),
              ref=uuid.UUID(int=2)),
    "d": dict(name="O'Brien Émile", label="fruit", count=-7, price=decimal.Decimal("-0.25"), ratio=2.5, flag=True,
              when=dt.datetime(2024, 6, 30, 12, 0, tzinfo=UTC), day=dt.date(2024, 6, 30), ref=None),
    "e": dict(name="  pad  ", label="Ab", count=0, price=decimal.Decimal("0"), ratio=0.0, flag=False,
              when=dt.datetime(2024, 1, 2, 3, 4, 5, 679000, tzinfo=UTC), day=dt.date(2024, 1, 3), ref=None),
}


@pytest.fixture
def field_map():
    return FieldMap.for_model(Item)


@pytest.fixture
def items(db):
    """The five rows of ``ROWS``, keyed by id."""
    Item.objects.bulk_create([Item(id=key, **values) for key, values in ROWS.items()])
    return {item.id: item for item in Item.all_objects.all()}


def set_updated_at(pk, when, **extra):
    """Force system fields (bypassing the stamping that save() and update() do)."""
    QuerySet(Item).filter(pk=pk).update(updated_at=when, **extra)
