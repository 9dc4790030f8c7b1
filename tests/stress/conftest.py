"""Database settings for the stress tests: a file-based SQLite test database.

Several connections must see one database, so an on-disk SQLite file stands in for the
default in-memory test database, with a busy timeout long enough for queued writers.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:":
            name = "/tmp/offline_sync_stress.sqlite3"
        db.setdefault("TEST", {})["NAME"] = name + ".test"
        db.setdefault("OPTIONS", {}).setdefault("timeout", 60)
