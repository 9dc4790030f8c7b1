"""Database settings for the stress tests: a file-based SQLite test database.

Several connections must see one database, so an on-disk SQLite file stands in for the
default in-memory test database. Transactions stay DEFERRED (Django's default) unless
``STRESS_SQLITE_MODE=IMMEDIATE``; a deferred writer that read first can deadlock on the lock
upgrade and then fails after the busy timeout, which the report counts as a writer error.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:":
            # The live server would share the in-memory connection across threads.
            name = db["NAME"] = "/tmp/offline_sync_stress.sqlite3"
        db.setdefault("TEST", {})["NAME"] = name + ".test"
        options = db.setdefault("OPTIONS", {})
        options.setdefault("timeout", 5)
        mode = os.environ.get("STRESS_SQLITE_MODE")
        if mode:
            options["transaction_mode"] = mode
