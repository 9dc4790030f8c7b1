"""A throwaway primary and streaming replica (``tests/pgcluster.py``) under the whole session.

Run alone: ``pytest -m replica tests/replica``. The session's ``default`` database is the
throwaway primary (whatever ``DATABASE_URL`` says), and ``replica1`` its hot standby, which the
test database reaches by replication. Without PostgreSQL's server binaries every test here is
skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import pgcluster


@pytest.hookimpl(trylast=True)  # after -m has deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The session's default database is the throwaway primary: other tests must not share it.
    here = [item for item in items if item.path.is_relative_to(__file__.rsplit("/", 1)[0])]
    if here and len(here) != len(items):
        skip = pytest.mark.skip(reason="replica tests run in their own session: pytest -m replica tests/replica")
        for item in here:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    reason = pgcluster.unavailable_reason()
    if reason and os.environ.get("REQUIRE_PG_CLUSTER"):  # CI: a skip would hide a broken set-up
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    cluster = pgcluster.Cluster.start(replicas=1)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, pg_cluster: pgcluster.Cluster
) -> None:
    from django.conf import settings
    from django.db import connections

    from example_project.database import database_from_url

    db = settings.DATABASES["default"]  # Django's connections share this dict
    # database_from_url, not database_from_env: DATABASE_URL (CI sets it for the other runs)
    # must not win over the throwaway primary.
    db.update(database_from_url(pg_cluster.primary.url("offline_sync")))
    db["OPTIONS"] = {}
    db["TEST"] = {"CHARSET": None, "COLLATION": None, "MIGRATE": True, "MIRROR": None, "NAME": None}
    if hasattr(connections._connections, "default"):  # a wrapper made before the switch
        connections["default"].close()
        del connections["default"]


@pytest.fixture(scope="session")
def replica_alias(django_db_setup: None, pg_cluster: pgcluster.Cluster) -> Iterator[str]:
    """``replica1``: the standby, on the test database (which it received by replication)."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    settings.DATABASES["replica1"] = {
        **default,
        "PORT": pg_cluster.replicas[0].port,
        "TEST": {**default["TEST"], "MIRROR": "default"},  # never created, flushed or migrated
    }
    pg_cluster.wait_replayed()
    try:
        yield "replica1"
    finally:
        from django.db import connections

        connections.close_all()
        del settings.DATABASES["replica1"]
