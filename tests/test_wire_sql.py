"""List pages format timestamps (and versions) in SQL; they must equal the Python rendering."""

import datetime as dt

import pytest
from django.db import connection
from django.db.models import QuerySet

from django_offline_sync.serializers import Representer
from example_project.tasks.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.mark.parametrize(
    "due",
    [
        None,
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),  # no fraction (stored without one on SQLite)
        dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ],
)
def test_sql_formatted_page_equals_python_rendering(v2, due):
    task = TaskFactory(due_date=due, priority=-3)
    # A negative version too, written around the stamping update() on purpose.
    QuerySet.update(Task.all_objects.filter(pk=task.pk), version=-(2**62))
    listed = v2.get("/tables/Task").json()[0]
    single = v2.get(f"/tables/Task/{task.id}").json()
    assert listed == single
    representer = Representer(Task)
    select, converters = representer.select_plan(connection.vendor)
    row = Task.all_objects.filter(pk=task.pk).values_list(*select).get()
    assert representer.from_values(row, converters) == representer.from_instance(Task.all_objects.get(pk=task.pk))
