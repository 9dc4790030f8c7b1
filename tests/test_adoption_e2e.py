"""Adopting django-offline-sync on an existing site, end to end, as a user would.

A throwaway site is made with ``django-admin startproject`` and ``startapp`` in a temporary
directory. Its app has a model with Django's integer primary key; the table is migrated and
filled *before* the package is adopted. Then the site is adopted by following
``docs/existing-models.rst`` only: its model code block replaces the model, and its commands
(``makemigrations``, ``migrate``) run as they are, each as a subprocess. The site is served
by ``runserver`` on a free port and the Python client pulls every old row over HTTP.

On SQLite always; on PostgreSQL when ``DATABASE_URL`` points at one (a database of its own,
created and dropped here).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from django_offline_sync.client import SyncClient

ROOT = Path(__file__).resolve().parent.parent
ROWS = 130  # more than a v3 page (100), so the pull pages

pytestmark = pytest.mark.e2e


def _docs_page() -> Path:
    """``existing-models.rst`` wherever the docs tree keeps it."""
    found = sorted(ROOT.joinpath("docs").rglob("existing-models.rst"))
    assert found, "docs/…/existing-models.rst is missing"
    return found[0]


def _code_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ``.. code-block:: <language>`` directives of a reStructuredText page."""
    blocks = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        indent = len(line) - len(line.lstrip())
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


def docs_model_code() -> str:
    return next(block for block in _code_blocks(_docs_page().read_text(), "python") if "(SyncModel)" in block)


def docs_commands() -> list[list[str]]:
    commands = []
    for block in _code_blocks(_docs_page().read_text(), "console"):
        commands += [line.split() for line in block.splitlines() if line.startswith("python manage.py")]
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the databases --------------------------------------------------------------------------------


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Iterator[str]:
    """The site's DATABASES['default'] as Python source."""
    if request.param == "sqlite":
        yield repr({"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "site.sqlite3")})
        return
    url = _postgres_url()
    if url is None:
        pytest.skip("DATABASE_URL is not a PostgreSQL URL; the PostgreSQL adoption runs in CI's PostgreSQL step")
    import psycopg

    parts = urlsplit(url)
    name = f"os_adopt_e2e_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = f"{parts.scheme}://{parts.netloc}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield repr(
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "USER": parts.username or "postgres",
                "PASSWORD": parts.password or "",
                "HOST": parts.hostname or "127.0.0.1",
                "PORT": str(parts.port or 5432),
            }
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the site ---------------------------------------------------------------------------------------


class Site:
    """A project made by ``django-admin startproject``, driven through its ``manage.py``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
        # The site first, then this checkout: the package under test, not another installed copy.
        self.env["PYTHONPATH"] = os.pathsep.join([str(path), str(ROOT)])

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, *args], cwd=self.path, env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and done.returncode:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, check=check)

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.path / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def migrations(self) -> list[str]:
        return sorted(p.name for p in (self.path / "inventory" / "migrations").glob("0*.py"))

    @contextmanager
    def serve(self) -> Iterator[str]:
        """``runserver`` on a free port until the block ends; its log goes to ``runserver.log``."""
        port = free_port()
        log_path = self.path / "runserver.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                cwd=self.path,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, f"runserver exited: {log_path.read_text()}"
                try:
                    httpx.get(f"{url}/tables/Asset", headers={"ZUMO-API-VERSION": "3.0.0"}, timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "runserver did not answer within 60 s"
                    time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


BEFORE = """\
from django.db import models


class Asset(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
"""

VIEWS = """\
from django_offline_sync.viewsets import SyncViewSet

from .models import Asset


class AssetViewSet(SyncViewSet):
    model = Asset
"""

URLS = """\
from django.contrib import admin
from django.urls import include, path

from django_offline_sync.routers import SyncRouter
from inventory.views import AssetViewSet

router = SyncRouter()
router.register("Asset", AssetViewSet, basename="asset")
urlpatterns = [path("admin/", admin.site.urls), path("tables/", include(router.urls))]
"""


def _migrated_site(tmp_path, database, models: str) -> Site:
    """A startproject site with the app ``inventory`` holding ``models``, migrated on ``database``."""
    site = Site(tmp_path / "site")
    site.path.mkdir()
    site.run("-m", "django", "startproject", "mysite", str(site.path))
    site.manage("startapp", "inventory")
    settings = "mysite/settings.py"
    site.edit(settings, "'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'inventory',")
    with (site.path / settings).open("a") as file:
        file.write(f"\nDATABASES = {{'default': {database}}}\n")
    (site.path / "inventory" / "models.py").write_text(models)
    site.manage("makemigrations", "inventory")
    site.manage("migrate")
    return site


@pytest.fixture
def existing_site(tmp_path, database) -> Site:
    """A startproject site whose ``inventory.Asset`` table (integer key) holds ``ROWS`` rows."""
    site = _migrated_site(tmp_path, database, BEFORE)
    site.manage(
        "shell",
        "-c",
        "from inventory.models import Asset\n"
        f"Asset.objects.bulk_create(Asset(name=f'asset {{i:03}}') for i in range({ROWS}))",
    )
    return site


def adopt(site: Site, model_code: str) -> None:
    site.edit(
        "mysite/settings.py", "'inventory',", "'inventory',\n    'rest_framework',\n    'django_offline_sync',"
    )
    (site.path / "inventory" / "models.py").write_text(model_code)
    (site.path / "inventory" / "views.py").write_text(VIEWS)
    (site.path / "mysite" / "urls.py").write_text(URLS)


def test_the_docs_give_commands_and_a_model_to_follow():
    assert docs_commands() == [["python", "manage.py", "makemigrations"], ["python", "manage.py", "migrate"]]
    assert "class Asset(SyncModel):" in docs_model_code()
    assert "id = models.BigAutoField(primary_key=True)" in docs_model_code()


def test_an_existing_site_adopted_by_the_docs_serves_every_old_row(existing_site):
    site = existing_site
    adopt(site, docs_model_code())
    before = site.migrations()
    outputs = [site.run(*command[1:]).stdout for command in docs_commands()]
    (added,) = sorted(set(site.migrations()) - set(before))
    migration = (site.path / "inventory" / "migrations" / added).read_text()
    # created_at, updated_at, version, deleted and imported_version (docs/importing.rst)
    assert migration.count("migrations.AddField(") == 5 and "migrations.AddIndex(" in migration
    assert migration.count("CharField") == 1 and "name='imported_version'" in migration  # the key stayed an integer
    assert f"Stamped {ROWS} existing row(s) of inventory.Asset for sync." in outputs[-1]
    check = site.manage("check", "--database", "default")
    assert "offline_sync" not in check.stdout + check.stderr

    with site.serve() as url:
        for generation in ("v3", "v2"):
            with SyncClient(url, site.path / f"device-{generation}.db", generation=generation) as client:
                pulled = client.pull("Asset")
                rows = client.table("Asset").query()
                # Each row once, though v2 pulls with ``ge`` and reads each page's boundary row again (§4.1).
                assert pulled.received == ROWS
                assert sorted(int(row["id"]) for row in rows) == list(range(1, ROWS + 1))
                assert {row["name"] for row in rows} == {f"asset {i:03}" for i in range(ROWS)}
                assert all(row["updatedAt"] and row["version"] for row in rows)
                # Incremental: nothing new (the boundary row v2 reads again is not counted).
                assert client.pull("Asset").received == 0
                # The ids the wire sent find their rows again.
                found = client.online_table("Asset").query("id eq '7' or id in ('8', '9')")
                assert sorted(row["id"] for row in found) == ["7", "8", "9"]


def test_forgetting_the_integer_id_stops_makemigrations_and_migrate(existing_site):
    site = existing_site
    code = docs_model_code()
    forgetful = re.sub(r"\n\s*id = models\.BigAutoField\(primary_key=True\).*", "", code)
    assert forgetful != code
    adopt(site, forgetful)
    before = site.migrations()

    made = site.manage("makemigrations", check=False)
    assert made.returncode != 0
    assert "offline_sync.E011" in made.stderr
    assert "inventory.Asset's primary key would change from 'id' (integer, BigAutoField)" in made.stderr
    assert "id = models.BigAutoField(primary_key=True)" in made.stderr
    assert site.migrations() == before  # nothing written

    # Written anyway (checks skipped): migrate refuses to apply it and the table is untouched.
    site.manage("makemigrations", "--skip-checks")
    refused = site.manage("migrate", "--skip-checks", check=False)
    assert refused.returncode != 0
    assert "changes the primary key of a synced table" in refused.stderr
    plan = site.manage("showmigrations", "inventory").stdout
    assert "[ ] 0002" in plan

    # A fresh database (a new deployment, a test run) replays the migration: no ids to rewrite.
    fresh = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(site.path / "fresh.db")}
    (site.path / "mysite" / "settings_fresh.py").write_text(
        f"from .settings import *  # noqa: F403\nDATABASES = {{'default': {fresh!r}}}\n"
    )
    site.manage("migrate", "--skip-checks", "--settings", "mysite.settings_fresh")

    # A deliberate conversion silences the check, and then both commands let it through.
    with (site.path / "mysite" / "settings.py").open("a") as file:
        file.write('\nSILENCED_SYSTEM_CHECKS = ["offline_sync.E011"]\n')
    site.manage("migrate")


def test_rows_loaded_around_the_orm_are_reported_and_stamped_by_migrate(existing_site):
    site = existing_site
    adopt(site, docs_model_code())
    site.manage("makemigrations")
    site.manage("migrate")
    site.manage(
        "shell",
        "-c",
        "from django.db import connection\n"
        "with connection.cursor() as c: c.execute(\"INSERT INTO inventory_asset (name, version, deleted) "
        "VALUES ('raw', 0, false)\")",
    )
    check = site.manage("check", "--database", "default")
    assert "offline_sync.W012" in check.stderr + check.stdout
    assert "1 row(s) of inventory.Asset on database 'default' have no updated_at" in check.stderr + check.stdout
    assert "Stamped 1 existing row(s) of inventory.Asset for sync." in site.manage("migrate").stdout
    check = site.manage("check", "--database", "default")
    assert "offline_sync" not in check.stdout + check.stderr



PLACE_BEFORE = """\
from django.db import models


class Place(models.Model):
    name = models.CharField(max_length=100)


class Asset(models.Model):
    name = models.CharField(max_length=100)
    place = models.ForeignKey(Place, on_delete=models.CASCADE)
"""

PLACE_AFTER = """\
from django.db import models

from django_offline_sync.models import SyncModel


class Place(models.Model):
    name = models.CharField(max_length=100)


class Asset(SyncModel):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100)
    place = models.ForeignKey(Place, on_delete=models.CASCADE)

    class Meta(SyncModel.Meta):
        pass
"""


def test_stamping_inside_the_adopting_migration_works_on_a_table_with_a_foreign_key(tmp_path, database):
    # The docs' explicit route: StampExistingRows after the generated operations. Django keeps
    # the index of ``deleted`` (db_index) until the migration ends; on PostgreSQL stamping a
    # table with a deferred foreign key left trigger events pending, and that CREATE INDEX then
    # failed ("pending trigger events"), so the migration could not be applied at all.
    site = _migrated_site(tmp_path, database, PLACE_BEFORE)
    site.manage(
        "shell",
        "-c",
        "from inventory.models import Asset, Place\n"
        "place = Place.objects.create(name='yard')\n"
        f"Asset.objects.bulk_create(Asset(name=f'asset {{i:03}}', place=place) for i in range({ROWS}))",
    )
    adopt(site, PLACE_AFTER)
    before = site.migrations()
    site.manage("makemigrations", "inventory")
    (added,) = sorted(set(site.migrations()) - set(before))
    relative = f"inventory/migrations/{added}"
    site.edit(
        relative,
        "from django.db import migrations, models",
        "from django.db import migrations, models\n"
        "from django_offline_sync.migration_operations import StampExistingRows",
    )
    site.edit(
        relative,
        "('inventory', '0001_initial'),",
        "('inventory', '0001_initial'),\n        ('offline_sync', '0001_initial'),",
    )
    text = (site.path / relative).read_text().rstrip()
    assert text.endswith("]")
    (site.path / relative).write_text(text[:-1] + "    StampExistingRows('asset'),\n    ]\n")

    migrated = site.manage("migrate").stdout
    assert "Stamped" not in migrated  # the migration stamped them; post_migrate found nothing left
    check = site.manage("check", "--database", "default")
    assert "offline_sync" not in check.stdout + check.stderr
    counted = site.manage(
        "shell",
        "-c",
        "from inventory.models import Asset\n"
        "print(Asset.all_objects.filter(updated_at__isnull=False).values('updated_at').distinct().count())",
    )
    assert counted.stdout.strip().splitlines()[-1] == str(ROWS)
