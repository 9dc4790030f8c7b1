"""The database settings of the example site and the test suite, read from ``DATABASE_URL``.

dj-database-url parses the URL; this adds what each backend needs for concurrent sync
traffic, so the site and the tests configure a backend the same way.
"""

from __future__ import annotations

from typing import Any

import dj_database_url
from dj_database_url import DBConfig


def database_from_env(default_url: str, **kwargs: Any) -> DBConfig:
    """The settings of ``DATABASE_URL``, or of ``default_url`` when it is not set."""
    return database_from_url(dj_database_url.config(default=default_url, **kwargs))


def database_from_url(url: str | DBConfig, **kwargs: Any) -> DBConfig:
    """The settings of exactly ``url`` (a URL, or settings already parsed), ``DATABASE_URL`` aside."""
    config = dj_database_url.parse(url, **kwargs) if isinstance(url, str) else url
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3" and config.get("NAME") not in (None, "", ":memory:"):
        # Concurrent requests on one SQLite file: WAL lets readers run beside the writer, and
        # BEGIN IMMEDIATE takes the write lock up front, so a write never fails mid-transaction
        # on a lock upgrade ("database is locked"); writers queue for up to `timeout` seconds.
        # synchronous=FULL: a commit is on disk before the 2xx goes out. A device deletes its
        # queued operation on the 2xx, so a commit lost to a power cut would be lost data
        # (NORMAL, faster in WAL mode, can lose the last commits). The package's engine queues
        # writers of every process on a lock file rather than in SQLite's sleeping busy handler.
        config["ENGINE"] = "django_offline_sync.backends.sqlite3"
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        }
    elif engine == "django.db.backends.mysql":
        # PyMySQL stands in for mysqlclient where that does not build. Neither ships types (the
        # stubs are the separate types-mysqlclient/types-PyMySQL) and only whether MySQLdb
        # imports and install_as_MySQLdb() are used here, so the imports are left untyped.
        try:
            import MySQLdb  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            import pymysql  # type: ignore[import-untyped]

            pymysql.install_as_MySQLdb()
        config.setdefault("OPTIONS", {})["charset"] = "utf8mb4"
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"}
    return config


def replicas_from_env(urls: str, **kwargs: Any) -> dict[str, DBConfig]:
    """``{"replica1": …, "replica2": …}`` from URLs separated by spaces or commas ("" gives {}).

    Each replica is a test mirror of ``default``: the test runner points it at the test
    primary rather than creating a database on a read-only server.
    """
    replicas: dict[str, DBConfig] = {}
    for index, url in enumerate(urls.replace(",", " ").split(), start=1):
        config = dj_database_url.parse(url, **kwargs)
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise ValueError(f"REPLICA_DATABASE_URL: replica {index} is not a PostgreSQL URL ({config['ENGINE']})")
        config["TEST"] = {"MIRROR": "default"}
        replicas[f"replica{index}"] = config
    return replicas
