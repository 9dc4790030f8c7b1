"""System checks: every check id in ``checks.py`` has a test that triggers it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection, connections, models
from django.test import override_settings
from django.test.utils import isolate_apps

from django_offline_sync import checks
from django_offline_sync.models import SyncModel


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def settings_ids(value) -> list[str]:
    with override_settings(OFFLINE_SYNC=value):
        return ids(checks.check_settings())


def test_settings_pass_when_empty():
    assert settings_ids({}) == []


def test_settings_pass_when_every_key_has_a_sound_value():
    sound = {"PAGE_SIZE": 10, "MAX_TOP": 10, "ENABLED_GENERATIONS": ("v3",), "DEFAULT_GENERATION": "v3"}
    assert settings_ids(sound) == []


def test_e001_when_offline_sync_is_not_a_dict():
    assert settings_ids([("PAGE_SIZE", 10)]) == ["offline_sync.E001"]


def test_w001_when_a_key_is_unknown():
    assert settings_ids({"PAGE_SIZ": 10}) == ["offline_sync.W001"]


@pytest.mark.parametrize(
    "value",
    [
        {"PAGE_SIZE": "50"},
        {"PAGE_SIZE": True},
        {"SOFT_DELETE": 1},
        {"ENABLED_GENERATIONS": "v3"},
        {"STAMPING": None},
    ],
)
def test_e002_when_a_value_has_the_wrong_type(value):
    assert settings_ids(value) == ["offline_sync.E002"]


@pytest.mark.parametrize("value", [["v4"], []])
def test_e003_when_enabled_generations_is_empty_or_unknown(value):
    assert "offline_sync.E003" in settings_ids({"ENABLED_GENERATIONS": value})


@pytest.mark.parametrize(
    "value",
    [{"DEFAULT_GENERATION": "v9"}, {"DEFAULT_GENERATION": "v1", "ENABLED_GENERATIONS": ["v3"]}],
)
def test_e004_when_the_default_generation_is_not_enabled(value):
    assert settings_ids(value) == ["offline_sync.E004"]


@pytest.mark.parametrize(
    "value",
    [
        {"PAGE_SIZE": 0},
        {"PAGE_SIZE": 100, "MAX_TOP": 10},
        {"V3_PAGE_SIZE": 0},
        {"V3_PAGE_SIZE": 500, "V3_MAX_TOP": 100},
    ],
)
def test_e005_when_a_page_size_is_below_one_or_above_its_maximum(value):
    assert settings_ids(value) == ["offline_sync.E005"]


@pytest.mark.parametrize("key", ["MAX_FILTER_LENGTH", "MAX_FILTER_DEPTH", "MAX_FILTER_NODES", "MAX_BODY_BYTES"])
def test_e006_when_a_limit_is_not_positive(key):
    assert settings_ids({key: 0}) == ["offline_sync.E006"]


def test_e007_when_next_link_format_is_unknown():
    assert settings_ids({"NEXT_LINK_FORMAT": "relative"}) == ["offline_sync.E007"]


def test_e008_when_stamping_is_unknown():
    assert settings_ids({"STAMPING": "trigger"}) == ["offline_sync.E008"]


def test_w002_when_stamping_is_now():
    assert settings_ids({"STAMPING": "now"}) == ["offline_sync.W002"]


def test_models_pass_when_the_project_models_are_sound():
    assert ids(checks.check_models()) == []


def test_e010_when_a_subclass_removes_a_system_field(monkeypatch):
    with isolate_apps("tests") as test_apps:

        class NoDeleted(SyncModel):
            deleted = None

            class Meta(SyncModel.Meta):
                app_label = "tests"

        monkeypatch.setattr(checks, "apps", test_apps)
        messages = checks.check_models()
    assert ids(messages) == ["offline_sync.E010"]
    assert messages[0].obj is NoDeleted


def test_e012_when_a_subclass_keeps_its_own_created_at_and_updated_at(monkeypatch):
    """The adopted table's usual auto_now/auto_now_add fields replace SyncModel's: refused."""
    with isolate_apps("tests") as test_apps:

        class Order(SyncModel):
            created_at = models.DateTimeField(auto_now_add=True)
            updated_at = models.DateTimeField(auto_now=True)

            class Meta(SyncModel.Meta):
                app_label = "tests"

        monkeypatch.setattr(checks, "apps", test_apps)
        messages = checks.check_models()
    assert ids(messages) == ["offline_sync.E012", "offline_sync.E012"]
    assert all(m.obj is Order for m in messages)
    assert messages[0].msg.startswith("tests.Order.created_at is DateTimeField(auto_now_add=True), not SyncModel's")
    assert messages[1].msg.startswith("tests.Order.updated_at is DateTimeField(auto_now=True), not SyncModel's")
    assert "RenameField" in messages[1].hint and "'updated_at_old'" in messages[1].hint


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("version", models.IntegerField(default=0, editable=False)),
        ("version", models.BigIntegerField(default=1, editable=False)),
        ("deleted", models.BooleanField(default=False, editable=False)),  # no db_index
        ("updated_at", models.DateTimeField(editable=False, null=True, db_index=True)),
        ("imported_version", models.CharField(max_length=20, null=True, editable=False)),
    ],
)
def test_e012_when_a_system_field_differs_in_class_or_attribute(monkeypatch, name, field):
    with isolate_apps("tests") as test_apps:
        Model = type(
            "Redefined",
            (SyncModel,),
            {"__module__": __name__, name: field, "Meta": type("Meta", (SyncModel.Meta,), {"app_label": "tests"})},
        )
        monkeypatch.setattr(checks, "apps", test_apps)
        messages = checks.check_models()
    assert ids(messages) == ["offline_sync.E012"]
    assert messages[0].obj is Model and messages[0].msg.startswith(f"tests.Redefined.{name} is ")


def test_e012_passes_for_cosmetic_changes_and_a_removed_imported_version(monkeypatch):
    with isolate_apps("tests") as test_apps:

        class Relabelled(SyncModel):
            updated_at = models.DateTimeField("last change", editable=False, null=True, help_text="UTC")
            imported_version = None

            class Meta(SyncModel.Meta):
                app_label = "tests"

        monkeypatch.setattr(checks, "apps", test_apps)
        assert ids(checks.check_models()) == []


def test_w010_when_a_subclass_drops_the_pull_index(monkeypatch):
    with isolate_apps("tests") as test_apps:

        class NoIndex(SyncModel):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "tests"

        monkeypatch.setattr(checks, "apps", test_apps)
        messages = checks.check_models()
    assert ids(messages) == ["offline_sync.W010"]
    assert messages[0].obj is NoIndex


def test_w011_when_the_database_vendor_is_untested(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "exotic")
    assert ids(checks.check_database_vendors()) == ["offline_sync.W011"]


def test_every_check_id_in_checks_py_has_a_test_here():
    source = Path(checks.__file__).read_text()
    source = re.sub(r"\nCATALOG: .*?\n\)\n", "\n", source, flags=re.DOTALL)  # the docs' catalog is no use
    declared = set(re.findall(r"offline_sync\.[EW]\d{3}", source))
    tested = {i.split(".")[1].lower() for i in declared}
    this_file = Path(__file__).read_text() + (Path(__file__).parent / "test_checks_stress.py").read_text()
    missing = [i for i in sorted(tested) if f"def test_{i}_" not in this_file]
    assert declared and not missing


def test_e030_when_a_routed_table_view_names_a_missing_column(settings):
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = "tests.checks_urls"
    clear_url_caches()
    try:
        found = checks.check_table_views()
    finally:
        clear_url_caches()
    assert [m.id for m in found] == ["offline_sync.E030"]
    assert "compelte" in found[0].msg


def test_e030_passes_on_the_project_urls():
    assert ids(checks.check_table_views()) == []


def test_the_check_catalog_lists_exactly_the_ids_the_code_reports():
    """docs/settings.rst renders ``checks.CATALOG``: every id in the package's code must be in it."""
    import re
    from pathlib import Path

    import django_offline_sync
    from django_offline_sync.checks import CATALOG

    package = Path(django_offline_sync.__file__).parent
    used = set()
    for path in package.rglob("*.py"):
        text = path.read_text()
        # The catalog itself is not a use: cut it out of checks.py.
        text = re.sub(r"\nCATALOG: .*?\n\)\n", "\n", text, flags=re.DOTALL)
        used |= set(re.findall(r"offline_sync\.[EW]\d{3}", text))
    listed = [c.id for c in CATALOG]
    assert len(listed) == len(set(listed)), "an id listed twice in checks.CATALOG"
    missing = sorted(used - set(listed))
    assert not missing, f"add {missing} to django_offline_sync.checks.CATALOG (the docs' checks reference)"
    assert sorted(set(listed) - used) == [], "checks.CATALOG lists ids no code reports"
    for entry in CATALOG:
        assert entry.problem.strip() and entry.fix.strip(), entry.id


# -- adopting SyncModel on an existing table ----------------------------------------------------


def _legacy_migrations() -> dict[str, str | None]:
    from django.apps import apps

    modules: dict[str, str | None] = {config.label: None for config in apps.get_app_configs()}
    modules["legacy"] = "tests.legacy.migrations"
    return modules


@pytest.fixture
def legacy_app():
    from django.test import modify_settings

    with (
        modify_settings(INSTALLED_APPS={"append": "tests.legacy"}),
        override_settings(MIGRATION_MODULES=_legacy_migrations()),
    ):
        yield


def test_e011_passes_when_the_integer_key_is_kept(legacy_app):
    assert ids(checks.check_primary_keys()) == []


def test_e011_when_a_subclass_forgets_its_integer_key(legacy_app, monkeypatch):
    from django_offline_sync.models import generate_id
    from tests.legacy.models import Asset

    # What ``class Asset(SyncModel)`` without ``id = models.BigAutoField(...)`` gives.
    string_id = models.CharField(max_length=255, primary_key=True, default=generate_id)
    string_id.set_attributes_from_name("id")
    monkeypatch.setattr(Asset._meta, "pk", string_id)
    messages = checks.check_primary_keys()
    assert ids(messages) == ["offline_sync.E011"]
    assert messages[0].obj is Asset
    assert messages[0].msg.startswith(
        "legacy.Asset's primary key would change from 'id' (integer, BigAutoField) to 'id' (CharField)"
    )
    assert "declare `id = models.BigAutoField(primary_key=True)` in Asset" in messages[0].hint
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match=r"offline_sync\.E011"):
        call_command("check", "legacy")
    with override_settings(SILENCED_SYSTEM_CHECKS=["offline_sync.E011"]):
        call_command("check", "legacy")  # the escape hatch for a deliberate conversion


def test_w012_when_rows_have_no_stamp(db):
    from django_offline_sync.adoption import stamp_unstamped_rows
    from tests.factories import ItemFactory
    from tests.models import Item

    ItemFactory.create_batch(3)
    assert ids(checks.check_unstamped_rows(databases=["default"])) == []
    table = connection.ops.quote_name(Item._meta.db_table)
    with connection.cursor() as cursor:  # as raw SQL or ``loaddata`` would leave them
        cursor.execute(f"UPDATE {table} SET updated_at = NULL")
    messages = checks.check_unstamped_rows(databases=["default"])
    assert ids(messages) == ["offline_sync.W012"]
    assert messages[0].msg == (
        "3 row(s) of tests.Item on database 'default' have no updated_at; devices never pull them."
    )
    assert messages[0].hint == "Run `python manage.py migrate --database default`: it stamps them."
    assert ids(checks.check_unstamped_rows()) == []  # a database check: only with --database
    assert stamp_unstamped_rows("default") == [(Item, 3)]
    assert ids(checks.check_unstamped_rows(databases=["default"])) == []


def test_e031_when_rest_framework_is_not_installed():
    from django.test import modify_settings

    without_drf = ["rest_framework", "rest_framework.authtoken", "drf_spectacular"]
    with modify_settings(INSTALLED_APPS={"remove": without_drf}):
        messages = checks.check_installed_apps()
    assert ids(messages) == ["offline_sync.E031"]
    assert "'rest_framework'" in messages[0].msg and "INSTALLED_APPS" in messages[0].hint
    assert checks.check_installed_apps() == []


# -- E040/W040: read replicas ------------------------------------------------------------------

REPLICA_ROUTER = "django_offline_sync.replicas.ReplicaRouter"


def read_ids() -> list[str]:
    return [m.id for m in checks.check_read_databases()]


@pytest.fixture
def replica_alias(monkeypatch, settings):
    monkeypatch.setitem(settings.DATABASES, "replica1", {**connections["default"].settings_dict})
    return "replica1"


def test_read_databases_pass_with_a_known_replica_and_the_router(replica_alias):
    with override_settings(DATABASE_ROUTERS=[REPLICA_ROUTER], OFFLINE_SYNC={"READ_DATABASES": [replica_alias]}):
        assert read_ids() == []


def test_e040_when_a_replica_alias_is_unknown_or_the_primary(replica_alias):
    replicas = {"READ_DATABASES": ["replica9", "default"]}
    with override_settings(DATABASE_ROUTERS=[REPLICA_ROUTER], OFFLINE_SYNC=replicas):
        assert read_ids() == ["offline_sync.E040", "offline_sync.E040"]


def test_w040_when_replicas_are_set_without_the_router(replica_alias):
    with override_settings(DATABASE_ROUTERS=[], OFFLINE_SYNC={"READ_DATABASES": [replica_alias]}):
        assert read_ids() == ["offline_sync.W040"]


def test_no_replica_checks_without_read_databases():
    assert read_ids() == []


# -- W013: SQLite served by several workers (check --deploy) ------------------------------------


def _sqlite(**config):
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/site.sqlite3", **config}}


def test_a_plain_sqlite_file_is_reported_under_deploy_with_everything_it_lacks():
    [warning] = checks.sqlite_deployment_warnings(_sqlite())
    assert warning.id == "offline_sync.W013"
    for part in ("django_offline_sync.backends.sqlite3", "IMMEDIATE", "journal_mode=WAL"):
        assert part in warning.msg


def test_the_example_projects_sqlite_setup_passes():
    from example_project.database import database_from_env

    assert checks.sqlite_deployment_warnings({"default": database_from_env("sqlite:////srv/site.sqlite3")}) == []


@pytest.mark.parametrize("name", [":memory:", "file:memdb1?mode=memory&cache=shared"])
def test_an_in_memory_database_is_not_reported(name):
    assert checks.sqlite_deployment_warnings(_sqlite(NAME=name)) == []


def test_w013_runs_only_under_deploy():
    from django.core.checks import registry

    assert checks.check_sqlite_deployment in registry.registry.get_checks(include_deployment_checks=True)
    assert checks.check_sqlite_deployment not in registry.registry.get_checks(include_deployment_checks=False)
