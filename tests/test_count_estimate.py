"""``COUNT_ESTIMATE_ABOVE``: PostgreSQL's planner estimate for large counts, exact otherwise."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from django_offline_sync.settings import validate
from example_project.tasks.models import Task

pytestmark = pytest.mark.django_db


def _make(n: int) -> None:
    Task.objects.bulk_create([Task(text=f"t{i}") for i in range(n)])


def test_counts_are_exact_by_default(v2, v3):
    _make(30)
    assert v3.get("/tables/Task?$count=true&$top=1").json()["count"] == 30
    assert v2.get("/tables/Task?$inlinecount=allpages&$top=1").json()["count"] == 30


@override_settings(OFFLINE_SYNC={"COUNT_ESTIMATE_ABOVE": 1_000_000})
def test_below_the_threshold_the_count_is_exact(v3):
    _make(30)
    assert v3.get("/tables/Task?$count=true").json()["count"] == 30


@pytest.mark.requires_postgres
@override_settings(OFFLINE_SYNC={"COUNT_ESTIMATE_ABOVE": 100})
def test_above_the_threshold_postgresql_answers_the_planner_estimate(v3):
    _make(5000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Task._meta.db_table}")
    Task.objects.filter(pk__in=list(Task.objects.values_list("pk", flat=True)[:7])).hard_delete()
    body = v3.get("/tables/Task?$count=true&$top=1").json()
    # The estimate comes from the statistics ANALYZE took (5000 rows), not from a scan that
    # would see the 7 rows deleted since.
    assert body["count"] == 5000
    kept = Task.objects.values_list("text", flat=True).first()
    exact = v3.get(f"/tables/Task?$count=true&$top=1&$filter=text eq '{kept}'").json()["count"]
    assert exact == 1  # a selective filter: the planner expects few rows, so it is counted


@override_settings(OFFLINE_SYNC={"COUNT_ESTIMATE_ABOVE": 10})
def test_other_backends_count_exactly_whatever_the_threshold(v3):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL estimates")
    _make(30)
    assert v3.get("/tables/Task?$count=true").json()["count"] == 30


@pytest.mark.parametrize("value, ok", [(0, True), (5, True), (-1, False), ("10", False)])
def test_the_setting_is_validated(value, ok):
    _, problems = validate({"COUNT_ESTIMATE_ABOVE": value})
    assert (problems == []) is ok
