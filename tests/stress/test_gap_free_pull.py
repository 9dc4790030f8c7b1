"""Gap-free incremental pull under concurrent writers, for every client generation's algorithm.

Eight ORM writers (some in long transactions that sleep before commit) race devices that pull
over HTTP as the v1/v2 .NET, v2 JS/Android and v3 CTK clients do, and get killed mid-pull.
Run with ``pytest -m stress tests/stress -s`` to see the per-device report.
"""

from __future__ import annotations

import os

import pytest
from django.test import override_settings

from . import harness

pytestmark = [pytest.mark.stress, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("STRESS_SECONDS", "25"))
TABLE = "/tables/Task"
POSITIONAL = "/positional/tables/Task"  # boundary_skip off: plain positional $skip
V1_V2 = ["v1-net", "v2-net", "v2-js", "v2-android"]


@pytest.fixture(autouse=True)
def stress_urls():
    with override_settings(ROOT_URLCONF="tests.stress.urls"):
        yield


def assert_no_miss(result: harness.RunResult, names: list[str]) -> None:
    for p in result.pullers:
        if p.name not in names:
            continue
        assert p.stats.truncated == 0, p.name
        assert p.stats.stale_after_pull == 0, (p.name, p.stats.stale_examples)
        assert result.final_misses(p.name) == 0, (p.name, result.final[p.name])


def test_clock_stamping_no_device_misses_a_row(live_server):
    """Every client algorithm on the shipped endpoint."""
    devices = [("v3-ctk-a", "v3-ctk", TABLE), ("v3-ctk-b", "v3-ctk", TABLE)]
    devices += [(f"{a}", a, TABLE) for a in V1_V2]
    result = harness.run(live_server.url, mode="clock", pullers=devices, seconds=SECONDS)
    print("\n" + result.report())
    assert result.operations > 200, "the writers barely ran; the test would prove nothing"
    assert sum(p.stats.killed for p in result.pullers) > 0
    assert sum(w.long_transactions for w in result.writers) > 10
    assert_no_miss(result, [d[0] for d in devices])


def test_v1_v2_positional_skip_under_concurrent_updates(live_server):
    """v1/v2 algorithms against both endpoints under one workload: measure, and hold ours to zero.

    On ``/positional/tables/Task`` a ``$skip=1`` past the boundary row jumps over a newer row
    when the boundary row is updated in between; that count is reported, not asserted.
    """
    devices = [(f"{a}@table", a, TABLE) for a in V1_V2] + [(f"{a}@positional", a, POSITIONAL) for a in V1_V2]
    result = harness.run(live_server.url, mode="clock", pullers=devices, seconds=SECONDS, kill_rate=0.0)
    print("\n" + result.report())
    assert_no_miss(result, [d[0] for d in devices if d[2] == TABLE])


def test_now_stamping_misses_rows(live_server):
    """The naive scheme (wall clock at save) loses late commits: the test is known to bite.

    Not on SQLite: it serializes writers, so a long transaction blocks every other commit
    until its own; "now" then loses a row only when two queued writers get the lock out of
    stamp order with a pull in between, which a bounded run does not reliably meet.
    """
    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers; see docs/gap-free-pull.rst")

    def seen_a_miss(pullers: list[harness.Puller]) -> bool:
        return any(p.stats.stale_after_pull for p in pullers)

    devices = [("v3-ctk", "v3-ctk", TABLE), ("v2-net", "v2-net", TABLE), ("v2-js", "v2-js", TABLE)]
    with override_settings(OFFLINE_SYNC={"STAMPING": "now"}):
        result = harness.run(
            live_server.url, mode="now", pullers=devices, seconds=max(SECONDS, 40.0), until=seen_a_miss
        )
    print("\n" + result.report())
    missed = sum(p.stats.stale_after_pull + result.final_misses(p.name) for p in result.pullers)
    assert missed > 0
