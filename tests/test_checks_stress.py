"""offline_sync.E020 and E021: configurations where gap-free pulls cannot hold on MySQL/MariaDB."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core import checks as django_checks

from django_offline_sync import checks


class FakeCursor:
    def __init__(self, engines: dict[str, str], default: str) -> None:
        self.engines, self.default, self.last = engines, default, ""

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def execute(self, sql: str, params: Any = None) -> None:
        self.last = sql

    def fetchall(self) -> list[tuple[str, str]]:
        return list(self.engines.items())

    def fetchone(self) -> tuple[str]:
        return (self.default,)


class FakeMySQL:
    vendor = "mysql"

    def __init__(self, engines: dict[str, str], default: str = "InnoDB") -> None:
        self.engines, self.default = engines, default

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.engines, self.default)


def ids(errors: list) -> list[str]:
    return [e.id for e in errors]


def test_e020_myisam_clock_table_is_refused(monkeypatch):
    monkeypatch.setattr(checks, "connections", {"legacy": FakeMySQL({"offline_sync_clock": "MyISAM"})})
    errors = checks.check_mysql_engines(databases=["legacy"])
    assert ids(errors) == ["offline_sync.E020"]
    assert "offline_sync_clock" in errors[0].msg and "MyISAM" in errors[0].msg


def test_e020_tables_not_yet_created_take_the_default_engine(monkeypatch):
    monkeypatch.setattr(checks, "connections", {"legacy": FakeMySQL({}, default="MyISAM")})
    errors = checks.check_mysql_engines(databases=["legacy"])
    assert errors and set(ids(errors)) == {"offline_sync.E020"}
    assert any("tasks_task" in e.msg for e in errors)


def test_e020_innodb_passes_and_needs_a_database_to_run(monkeypatch):
    monkeypatch.setattr(checks, "connections", {"legacy": FakeMySQL({"offline_sync_clock": "InnoDB"})})
    assert checks.check_mysql_engines(databases=["legacy"]) == []
    assert checks.check_mysql_engines(databases=None) == []
    assert checks.check_mysql_engines in django_checks.registry.registry.get_checks(include_deployment_checks=False)


def test_e021_read_uncommitted_is_refused(monkeypatch):
    monkeypatch.setitem(
        settings.DATABASES,
        "legacy",
        {"ENGINE": "django.db.backends.mysql", "NAME": "x", "OPTIONS": {"isolation_level": "read uncommitted"}},
    )
    assert ids(checks.check_mysql_isolation()) == ["offline_sync.E021"]


@pytest.mark.parametrize("level", [None, "read committed", "repeatable read", "serializable"])
def test_e021_other_isolation_levels_pass(monkeypatch, level):
    options = {} if level is None else {"isolation_level": level}
    monkeypatch.setitem(
        settings.DATABASES, "legacy", {"ENGINE": "django.db.backends.mysql", "NAME": "x", "OPTIONS": options}
    )
    assert checks.check_mysql_isolation() == []


@pytest.mark.django_db
def test_e020_on_the_real_database_when_it_is_mysql():
    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip("needs MySQL/MariaDB (DATABASE_URL=mysql://…)")
    assert checks.check_mysql_engines(databases=["default"]) == []


class FakeColumnsCursor(FakeCursor):
    """information_schema.COLUMNS rows (table, column, collation) and @@collation_database."""

    def __init__(self, columns: list[tuple[str, str, str | None]], default: str) -> None:
        self.columns, self.default = columns, default

    def fetchall(self) -> list[tuple[str, str, str | None]]:  # type: ignore[override]
        return self.columns


class FakeMySQLColumns(FakeMySQL):
    def __init__(self, columns: list[tuple[str, str, str | None]], default: str = "utf8mb4_bin") -> None:
        self.columns, self.default = columns, default

    def cursor(self) -> FakeColumnsCursor:  # type: ignore[override]
        return FakeColumnsCursor(self.columns, self.default)


def test_e022_an_id_column_that_folds_case_or_emoji_is_refused(monkeypatch):
    # MariaDB's default utf8mb4_general_ci: "ABCx1" was a 409 with the row "abcX1", "id😁" one
    # with "id😀", and GET /tables/Task/ABCX1 answered the row "abcX1".
    columns = [("tasks_task", "id", "utf8mb4_general_ci"), ("tasks_note", "id", "utf8mb4_bin")]
    monkeypatch.setattr(checks, "connections", {"legacy": FakeMySQLColumns(columns)})
    errors = checks.check_mysql_id_collation(databases=["legacy"])
    assert ids(errors) == ["offline_sync.E022"]
    assert "tasks_task.id" in errors[0].msg and "utf8mb4_general_ci" in errors[0].msg


def test_e022_tables_not_yet_created_take_the_database_collation(monkeypatch):
    monkeypatch.setattr(checks, "connections", {"legacy": FakeMySQLColumns([], default="utf8mb4_unicode_ci")})
    errors = checks.check_mysql_id_collation(databases=["legacy"])
    assert errors and set(ids(errors)) == {"offline_sync.E022"}
    assert any("tasks_task.id" in e.msg for e in errors)


@pytest.mark.parametrize("collation", ["utf8mb4_bin", "utf8mb4_nopad_bin", "binary"])
def test_e022_binary_collations_pass(monkeypatch, collation):
    monkeypatch.setattr(checks, "connections", {"legacy": FakeMySQLColumns([], default=collation)})
    assert checks.check_mysql_id_collation(databases=["legacy"]) == []
    assert checks.check_mysql_id_collation(databases=None) == []


@pytest.mark.django_db
def test_e022_on_the_real_database_when_it_is_mysql():
    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip("needs MySQL/MariaDB (DATABASE_URL=mysql://…)")
    assert checks.check_mysql_id_collation(databases=["default"]) == []
