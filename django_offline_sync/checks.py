"""System checks: the ``OFFLINE_SYNC`` settings and every concrete ``SyncModel``.

Ids: ``offline_sync.E001`` and up for errors, ``offline_sync.W001`` and up for warnings.
``CATALOG`` lists each one with its fix; the checks reference in the documentation
(docs/settings.rst) is generated from it, and a test keeps it equal to the ids used here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import connections
from django.db.models import CharField
from django.urls import URLPattern, URLResolver, get_resolver

from .settings import SETTING_NAME, validate


@dataclass(frozen=True)
class CheckDoc:
    """One check id as the documentation describes it (reStructuredText)."""

    id: str
    problem: str
    fix: str

    @property
    def error(self) -> bool:
        return self.id.split(".")[-1].startswith("E")


#: Every check id the app reports, in the order the reference lists them.
CATALOG: Final[tuple[CheckDoc, ...]] = (
    CheckDoc("offline_sync.E001", "``OFFLINE_SYNC`` is not a dict.", "Set ``OFFLINE_SYNC = {...}``."),
    CheckDoc(
        "offline_sync.W001",
        "An ``OFFLINE_SYNC`` key that is not a setting (a typo?); it is ignored.",
        "Use one of the keys in the settings reference.",
    ),
    CheckDoc("offline_sync.E002", "A key has the wrong type.", "Give the type its default has."),
    CheckDoc(
        "offline_sync.E003",
        "``ENABLED_GENERATIONS`` is empty or names an unknown generation.",
        'A non-empty list of ``"v1"``, ``"v2"``, ``"v3"``.',
    ),
    CheckDoc(
        "offline_sync.E004",
        "``DEFAULT_GENERATION`` is not one of the enabled generations.",
        "Enable it, choose another, or ``None``.",
    ),
    CheckDoc(
        "offline_sync.E005",
        "A page size is below 1 or above its maximum (``PAGE_SIZE`` > ``MAX_TOP``, ``V3_PAGE_SIZE`` > "
        "``V3_MAX_TOP``).",
        "Keep each page size between 1 and its maximum.",
    ),
    CheckDoc(
        "offline_sync.E006",
        "A limit is out of range: a filter, body or batch limit or ``CURSOR_MAX_AGE`` below 1, "
        "``QUERY_TIMEOUT_MS`` or ``COUNT_ESTIMATE_ABOVE`` below 0, ``QUERY_TIMEOUT_MS`` above 2147483647.",
        "Use a value in range (the message says which).",
    ),
    CheckDoc(
        "offline_sync.E007",
        "``NEXT_LINK_FORMAT`` is not ``auto``, ``query``, ``path`` or ``absolute``.",
        "Use one of those.",
    ),
    CheckDoc("offline_sync.E008", "``STAMPING`` is not ``clock`` or ``now``.", "Use one of those."),
    CheckDoc(
        "offline_sync.W002",
        "``STAMPING`` is ``now``: a write that commits late can be missed by incremental pulls.",
        'Keep the default ``"clock"`` unless you measured that you need the write throughput.',
    ),
    CheckDoc(
        "offline_sync.W003",
        "A renamed key (``MAX_PAGE_SIZE`` is now ``MAX_TOP``); the old name is still read while the new "
        "one is not set.",
        "Rename the key.",
    ),
    CheckDoc(
        "offline_sync.E009",
        "``TOMBSTONE_RETENTION`` or ``REJECTION_RETENTION`` is not ``None``, a ``timedelta`` or whole "
        "seconds of at least 1.",
        "``None`` (keep for ever), ``datetime.timedelta(days=90)`` or ``90 * 86400``.",
    ),
    CheckDoc(
        "offline_sync.E010",
        "A ``SyncModel`` subclass lost one of the system fields.",
        "Do not remove or shadow ``SyncModel``'s fields.",
    ),
    CheckDoc(
        "offline_sync.E012",
        "A ``SyncModel`` subclass redefines a system field (``created_at``, ``updated_at``, ``version``, "
        "``deleted`` or ``imported_version``) with a field other than ``SyncModel``'s, typically a table's "
        "own ``updated_at = DateTimeField(auto_now=True)``: its values are then not the clock's stamps and "
        "incremental pulls can skip or repeat rows. Only ``verbose_name``, ``help_text`` and ``db_comment`` "
        "may differ.",
        "Rename (or remove) the model's own field before adopting ``SyncModel``: rename it in the model, "
        "run ``makemigrations`` (a ``RenameField`` keeps its data), then switch the base class "
        "(``docs/existing-models.rst``).",
    ),
    CheckDoc(
        "offline_sync.E011",
        "A ``SyncModel`` would change its table's primary key type: an existing integer ``id`` would "
        "become a string one because the subclass does not declare it (existing ids rewritten, new rows "
        "given generated ids). Stops ``makemigrations``; ``migrate`` refuses such a migration.",
        "Declare the key the table has, e.g. ``id = models.BigAutoField(primary_key=True)`` (the hint names "
        "the class). Silence the check only for a deliberate, hand-written key conversion.",
    ),
    CheckDoc(
        "offline_sync.W012",
        "Rows of a synced table have no ``updated_at`` (written around the ORM: raw SQL, ``loaddata``): "
        "devices never pull them. Reported by ``migrate`` and ``check --database``.",
        "Run ``python manage.py migrate``: after migrating it stamps every such row.",
    ),
    CheckDoc(
        "offline_sync.W010",
        "A ``SyncModel`` subclass has no ``(updated_at, id)`` index: pulls scan the table.",
        "Declare ``class Meta(SyncModel.Meta)``, or add the index to your own ``indexes``.",
    ),
    CheckDoc(
        "offline_sync.W013",
        "``check --deploy``: a SQLite database file served without the setup that several workers "
        "need: the ``django_offline_sync.backends.sqlite3`` engine (writers queue instead of failing "
        "with \"database is locked\"), ``OPTIONS[\"transaction_mode\"] = \"IMMEDIATE\"`` (a read "
        "lock is never upgraded mid-transaction), and ``PRAGMA journal_mode=WAL`` in ``init_command`` "
        "(readers do not block the writer). Not an error: one worker process runs without them.",
        "Set them as ``docs/deployment.rst`` shows (the example project's ``database.py`` does).",
    ),
    CheckDoc(
        "offline_sync.W011",
        "A database backend the gap-free guarantee is not tested on.",
        "Use SQLite, PostgreSQL or MariaDB/MySQL, or test your backend with ``tests/stress``.",
    ),
    CheckDoc(
        "offline_sync.E020",
        "MySQL/MariaDB: a synced table (or the clock) uses a storage engine without transactions "
        "(MyISAM, Aria). Reported by ``migrate`` and ``check --database``.",
        "``ALTER TABLE … ENGINE=InnoDB`` and ``default_storage_engine=InnoDB``.",
    ),
    CheckDoc(
        "offline_sync.E022",
        "MySQL/MariaDB: a synced table's ``id`` column (or, for a table not yet created, the "
        "database) has a collation that is not binary, such as the default ``utf8mb4_general_ci``: "
        "ids differing in case or accents, and ids made of different emoji, are one row to it "
        "(an insert is a 409 with another id's row, a read or write by id reaches another id's "
        "row). Reported by ``migrate`` and ``check --database``.",
        "A binary collation (``utf8mb4_bin``) for the database and the ``id`` columns "
        "(``docs/install.rst``).",
    ),
    CheckDoc(
        "offline_sync.E021",
        'MySQL/MariaDB with ``isolation_level = "read uncommitted"``: pulls would see rows that are '
        "later rolled back.",
        "Django's default ``read committed`` (or ``repeatable read``).",
    ),
    CheckDoc(
        "offline_sync.E030",
        "A routed ``SyncViewSet`` whose ``model`` is not a ``SyncModel``, or whose ``fields`` name a "
        "column the model does not have (every request would be a 500).",
        "Set ``model`` to a ``SyncModel`` subclass and ``fields`` to its column names.",
    ),
    CheckDoc(
        "offline_sync.E031",
        "``rest_framework`` is not in ``INSTALLED_APPS``: a browser's request to a table would be a 500 "
        "(``TemplateDoesNotExist``).",
        "Add ``\"rest_framework\"`` to ``INSTALLED_APPS``.",
    ),
    CheckDoc(
        "offline_sync.E040",
        "``READ_DATABASES`` names an alias that is not in ``DATABASES``, or names the primary.",
        "List only the aliases of streaming replicas; writes and the clock always use the primary.",
    ),
    CheckDoc(
        "offline_sync.W040",
        "``READ_DATABASES`` is set but no ``ReplicaRouter`` is in ``DATABASE_ROUTERS``: pulls read the primary.",
        "Add ``django_offline_sync.replicas.ReplicaRouter`` to ``DATABASE_ROUTERS``.",
    ),
    CheckDoc(
        "offline_sync.E050",
        "``OFFLINE_SYNC[\"AUTH\"]`` is not a dict, or one of its values is wrong: a lifetime, grace or "
        "leeway out of range, a ``LOGIN_RATE`` that is not a DRF rate, an empty issuer or audience.",
        "Fix the value the message names (keys in ``docs/auth.rst``).",
    ),
    CheckDoc(
        "offline_sync.E051",
        "``AUTH[\"SIGNING_KEYS\"]``: an entry without exactly ``kid`` and ``key``, a key shorter than "
        "32 bytes, or a ``kid`` used twice.",
        "List ``{\"kid\": …, \"key\": …}`` dicts, newest first, each key at least 32 random bytes.",
    ),
    CheckDoc(
        "offline_sync.E052",
        "``AUTH[\"PROVIDERS\"]``: a bad or reserved provider name, a missing ``issuer`` or ``client_id``, "
        "a URL that is not http(s), or an unknown or mistyped key.",
        "Give each provider a lower-case name and at least ``issuer`` and ``client_id``.",
    ),
    CheckDoc(
        "offline_sync.W050",
        "An ``OFFLINE_SYNC[\"AUTH\"]`` key that is not a setting (a typo?); it is ignored.",
        "Use one of the keys in ``docs/auth.rst``.",
    ),
)


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Report what ``settings.validate`` finds wrong with ``OFFLINE_SYNC``."""
    _, problems = validate(getattr(settings, SETTING_NAME, None))
    return [(Error if p.error else Warning)(p.message, hint=p.hint, id=p.id) for p in problems]


@register(Tags.compatibility)
def check_installed_apps(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The table views are DRF views: without ``rest_framework`` installed, its templates are
    missing and a browser's request to a table fails with ``TemplateDoesNotExist`` (a 500)."""
    if apps.is_installed("rest_framework"):
        return []
    return [
        Error(
            "django_offline_sync needs 'rest_framework' in INSTALLED_APPS.",
            hint="Add 'rest_framework' to INSTALLED_APPS (its templates render the tables' browsable pages).",
            id="offline_sync.E031",
        )
    ]


@register(Tags.models)
def check_models(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .models import SyncModel

    errors: list[CheckMessage] = []
    for model in apps.get_models():
        if not issubclass(model, SyncModel) or model._meta.proxy:
            continue
        names = {f.name for f in model._meta.get_fields()}
        missing = [f for f in SyncModel.SYSTEM_FIELDS if f not in names]
        if missing:
            errors.append(
                Error(
                    f"{model._meta.label} lacks the system fields {missing}.",
                    hint="Do not remove SyncModel's fields in a subclass.",
                    obj=model,
                    id="offline_sync.E010",
                )
            )
            continue
        errors.extend(_check_redefined_system_fields(model))
        if not any(idx.fields[:2] == ["updated_at", "id"] for idx in model._meta.indexes):
            errors.append(
                Warning(
                    f"{model._meta.label} has no index on (updated_at, id); incremental pulls will scan the table.",
                    hint="Keep SyncModel.Meta.indexes when you declare Meta: class Meta(SyncModel.Meta): …",
                    obj=model,
                    id="offline_sync.W010",
                )
            )
    errors.extend(check_database_vendors())
    return errors


#: The system fields a subclass must take from ``SyncModel`` as they are (``id`` may be redefined:
#: an integer key is kept that way; ``imported_version`` may be removed with ``= None``).
_FIXED_SYSTEM_FIELDS: Final = ("created_at", "updated_at", "version", "deleted", "imported_version")
#: Field attributes that change nothing the library relies on; every other one must match.
_COSMETIC: Final = frozenset({"verbose_name", "help_text", "db_comment"})


def _field_spec(field: Any) -> tuple[type[Any], dict[str, Any]]:
    _, _, _, kwargs = field.deconstruct()
    return type(field), {k: v for k, v in kwargs.items() if k not in _COSMETIC}


def _describe(cls: type[Any], kwargs: dict[str, Any]) -> str:
    return f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in sorted(kwargs.items()))})"


def _check_redefined_system_fields(model: type[Any]) -> list[CheckMessage]:
    """E012: a system field the subclass declared itself, such as the common
    ``updated_at = models.DateTimeField(auto_now=True)`` of a table being adopted.

    Django lets a subclass override an abstract parent's field, so the model keeps a field of
    that name (E010 is silent) but ``save()`` no longer gives it the clock's stamp: ``auto_now``
    writes the wall clock after the stamp, existing rows keep ``version`` 0, and pulls ordered by
    ``(updated_at, id)`` skip or repeat rows. The class and every attribute but the cosmetic
    ones (``_COSMETIC``) must be ``SyncModel``'s.
    """
    from .models import SyncModel

    errors: list[CheckMessage] = []
    for name in _FIXED_SYSTEM_FIELDS:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:  # imported_version removed with ``= None``; E010 covers the others
            continue
        own_cls, own = _field_spec(field)
        base_cls, base = _field_spec(SyncModel._meta.get_field(name))
        if own_cls is base_cls and own == base:
            continue
        errors.append(
            Error(
                f"{model._meta.label}.{name} is {_describe(own_cls, own)}, not SyncModel's "
                f"{_describe(base_cls, base)}: the model's own field replaces the system field, so its "
                "values are not the sync clock's and incremental pulls can miss or repeat rows.",
                hint=(
                    f"Rename the model's own field (e.g. to '{name}_old') or remove it before adopting "
                    "SyncModel: rename it while the model is still a plain Model and run makemigrations "
                    "(a RenameField keeps its data), then switch the base class "
                    "(docs/existing-models.rst)."
                ),
                obj=model,
                id="offline_sync.E012",
            )
        )
    return errors


def check_database_vendors() -> list[CheckMessage]:
    """Warn about backends the gap-free guarantee (row lock until commit, ms datetimes) is untested on."""
    errors: list[CheckMessage] = []
    for alias in connections:
        vendor = connections[alias].vendor
        if vendor not in ("sqlite", "postgresql", "mysql", "oracle"):
            errors.append(
                Warning(
                    f"Database {alias!r} ({vendor}) is not tested with django-offline-sync.",
                    hint="Gap-free pulls rely on a row lock held until commit and millisecond datetimes.",
                    id="offline_sync.W011",
                )
            )
    return errors


# -- offline_sync.E020/E021: where the clock's guarantee cannot hold -------------------------


def _mysql_aliases(databases: Any) -> list[str]:
    return [alias for alias in (databases or []) if connections[alias].vendor == "mysql"]


@register(Tags.database, deploy=True)
def check_sqlite_deployment(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: a SQLite file without the engine, transaction mode and WAL that
    several workers need (``docs/deployment.rst``). Read from the settings, not a connection."""
    return sqlite_deployment_warnings(settings.DATABASES)


def sqlite_deployment_warnings(databases: Any) -> list[CheckMessage]:
    """W013 for each SQLite file in ``databases`` (a ``DATABASES`` setting)."""
    warnings: list[CheckMessage] = []
    for alias, config in databases.items():
        engine = str(config.get("ENGINE", ""))
        name = str(config.get("NAME", "") or "")
        if not engine.endswith("sqlite3") or name in ("", ":memory:") or "mode=memory" in name:
            continue
        options = config.get("OPTIONS") or {}
        missing = []
        if engine != "django_offline_sync.backends.sqlite3":
            missing.append('ENGINE "django_offline_sync.backends.sqlite3"')
        if str(options.get("transaction_mode", "")).upper() not in ("IMMEDIATE", "EXCLUSIVE"):
            missing.append('OPTIONS["transaction_mode"] = "IMMEDIATE"')
        if "journal_mode=wal" not in str(options.get("init_command", "")).replace(" ", "").lower():
            missing.append('"PRAGMA journal_mode=WAL" in OPTIONS["init_command"]')
        if missing:
            warnings.append(
                Warning(
                    f"SQLite database {alias!r} lacks what several worker processes need: {'; '.join(missing)}.",
                    hint="See docs/deployment.rst (SQLite); with one worker process it runs without them.",
                    id="offline_sync.W013",
                )
            )
    return warnings


@register(Tags.compatibility)
def check_mysql_isolation(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse READ UNCOMMITTED on MySQL/MariaDB: pulls would read rows that later roll back.

    A puller that reads an uncommitted row keeps it (and moves its token past it) even when
    the writer rolls back, so the device holds a version that never existed. The clock cannot
    help: its lock orders commits, not dirty reads. PostgreSQL has no dirty reads, SQLite only
    in shared-cache mode. (``check_settings`` reads no database, so this one does not either.)
    """
    errors: list[CheckMessage] = []
    for alias, config in settings.DATABASES.items():
        if not str(config.get("ENGINE", "")).endswith("mysql"):
            continue
        level = str((config.get("OPTIONS") or {}).get("isolation_level") or "").lower().replace("-", " ")
        if level == "read uncommitted":
            errors.append(
                Error(
                    f"Database {alias!r} uses READ UNCOMMITTED; incremental pulls would deliver rows that "
                    "are later rolled back.",
                    hint="Use Django's default 'read committed' (or 'repeatable read') in OPTIONS['isolation_level'].",
                    id="offline_sync.E021",
                )
            )
    return errors


@register(Tags.database)
def check_mysql_engines(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse synced tables (or the clock) on a non-transactional MySQL engine such as MyISAM.

    Gap-free stamps need the clock row's lock to be held until the write commits. MyISAM has
    no transactions: the clock UPDATE and the row write commit separately, so a row can become
    visible after a larger stamp was already pulled. Runs with ``migrate`` or ``check --database``.
    """
    from .models import SyncClock, SyncModel

    errors: list[CheckMessage] = []
    for alias in _mysql_aliases(databases):
        tables = {SyncClock._meta.db_table}
        tables |= {
            m._meta.db_table
            for m in apps.get_models()
            if issubclass(m, SyncModel) and not m._meta.proxy and m._meta.managed
        }
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            )
            engines = dict(cursor.fetchall())
            cursor.execute("SELECT @@default_storage_engine")
            default = cursor.fetchone()[0]
        for table in sorted(tables):
            engine = engines.get(table, default) or ""
            if engine.lower() != "innodb":
                errors.append(
                    Error(
                        f"Table {table!r} on database {alias!r} uses the {engine} engine, which has no "
                        "transactions; incremental pulls can miss rows.",
                        hint=f"ALTER TABLE {table} ENGINE=InnoDB (and set default_storage_engine=InnoDB).",
                        id="offline_sync.E020",
                    )
                )
    return errors


def _binary_collation(collation: str | None) -> bool:
    """``utf8mb4_bin``, ``utf8mb4_nopad_bin``, ``binary`` (a ``VARBINARY`` id); ``None`` for a
    column without one is not a text column at all (an integer key)."""
    return collation is None or collation == "binary" or collation.endswith("_bin")


@register(Tags.database)
def check_mysql_id_collation(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse a synced table whose ``id`` compares by a collation that is not binary.

    Under MariaDB's and MySQL's default collations (``utf8mb4_general_ci``, ``…_0900_ai_ci``)
    ``"abc"`` equals ``"ABC"`` and ``"abé"``, and ``utf8mb4_general_ci`` weighs every
    character outside the Basic Multilingual Plane alike, so ``"id😀"`` equals ``"id😁"``. A
    device's new row under such an id was refused with a 409 carrying another id's row, and a
    read, update or delete by id reached another id's row. Runs with ``migrate`` or
    ``check --database``; a table not yet created takes the database's collation.
    """
    from .models import SyncModel

    errors: list[CheckMessage] = []
    models_ = [m for m in apps.get_models() if issubclass(m, SyncModel) and not m._meta.proxy and m._meta.managed]
    for alias in _mysql_aliases(databases):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE()"
            )
            columns = {(table, column): collation for table, column, collation in cursor.fetchall()}
            cursor.execute("SELECT @@collation_database")
            default = cursor.fetchone()[0]
        for model in sorted(models_, key=lambda m: m._meta.db_table):
            table, column = model._meta.db_table, str(model._meta.pk.column)
            if not isinstance(model._meta.pk, CharField):
                continue  # an integer key (docs/existing-models.rst)
            collation = columns.get((table, column), default)
            if not _binary_collation(collation):
                errors.append(
                    Error(
                        f"The id column {table}.{column} on database {alias!r} compares by {collation}, which "
                        "does not tell ids apart by case or accents (and, general_ci, by which emoji they hold): "
                        "different ids would be one row.",
                        hint="Use a binary collation (utf8mb4_bin) for the database and its id columns: see "
                        "docs/install.rst (MariaDB/MySQL).",
                        obj=model,
                        id="offline_sync.E022",
                    )
                )
    return errors


# -- offline_sync.E030: table views that cannot serve ---------------------------------------


def _view_classes(patterns: Iterable[Any]) -> Iterator[type[Any]]:
    """The view classes (``cls`` of ``as_view()``/router callbacks) under ``patterns``."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _view_classes(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            cls = getattr(pattern.callback, "cls", None)
            if isinstance(cls, type):
                yield cls


@register(Tags.urls)
def check_table_views(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Every routed ``SyncViewSet`` must name a ``SyncModel`` and only columns it has.

    Otherwise the table would answer every request with a 500; this reports it at start-up.
    """
    from .viewsets import SyncViewSet, _table_of

    errors: list[CheckMessage] = []
    seen: set[type[Any]] = set()
    for cls in _view_classes(get_resolver().url_patterns):
        if cls in seen or not issubclass(cls, SyncViewSet):
            continue
        seen.add(cls)
        try:
            _table_of(cls)
        except ImproperlyConfigured as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="Set `model` to a SyncModel subclass and `fields` to names of its columns.",
                    obj=cls,
                    id="offline_sync.E030",
                )
            )
    return errors


# -- offline_sync.E011/W012: adopting SyncModel on an existing table -------------------------


@register(Tags.models)
def check_primary_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse a SyncModel whose key differs in kind from its table's (the forgotten integer ``id``).

    Runs with ``makemigrations``, so the migration that would rewrite the key is never written.
    """
    from .adoption import key_changes

    return [
        Error(change.describe(), hint=change.hint(), obj=change.model, id="offline_sync.E011")
        for change in key_changes()
    ]


@register(Tags.database)
def check_unstamped_rows(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn about synced rows with no ``updated_at``: incremental pulls never return them.

    ``migrate`` stamps them (``adoption``); rows written afterwards around the ORM (raw SQL,
    ``loaddata``) stay unstamped until the next ``migrate``. Runs with ``migrate`` and
    ``check --database``.
    """
    from django.db import DatabaseError

    from .adoption import unstamped_rows

    errors: list[CheckMessage] = []
    for alias in databases or []:
        try:
            found = unstamped_rows(alias)
        except DatabaseError:  # not reachable or not migrated: migrate and the other checks say so
            continue
        for model, count in found:
            errors.append(
                Warning(
                    f"{count} row(s) of {model._meta.label} on database {alias!r} have no updated_at; "
                    "devices never pull them.",
                    hint=f"Run `python manage.py migrate --database {alias}`: it stamps them.",
                    obj=model,
                    id="offline_sync.W012",
                )
            )
    return errors


# -- offline_sync.E040/W040: read replicas -------------------------------------------------


@register(Tags.compatibility)
def check_read_databases(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``READ_DATABASES`` must name configured replicas, and needs the router to take effect.

    (Reads no database: the aliases and routers are settings.)
    """
    from django.utils.module_loading import import_string

    from .replicas import ReplicaRouter

    loaded, _ = validate(getattr(settings, SETTING_NAME, None))
    replicas = loaded.READ_DATABASES
    if not replicas:
        return []
    errors: list[CheckMessage] = []
    routers = []
    for entry in settings.DATABASE_ROUTERS:
        router = import_string(entry) if isinstance(entry, str) else entry
        routers.append(router if isinstance(router, type) else type(router))
    replica_routers = [r for r in routers if issubclass(r, ReplicaRouter)]
    primaries = {r.primary for r in replica_routers} or {ReplicaRouter.primary}
    for alias in replicas:
        if alias not in settings.DATABASES:
            errors.append(
                Error(
                    f"{SETTING_NAME}['READ_DATABASES'] names {alias!r}, which is not in DATABASES.",
                    hint=f"Known aliases: {', '.join(sorted(settings.DATABASES))}.",
                    id="offline_sync.E040",
                )
            )
        elif alias in primaries:
            errors.append(
                Error(
                    f"{SETTING_NAME}['READ_DATABASES'] names the primary {alias!r}.",
                    hint="List only replicas; writes and the clock always use the primary.",
                    id="offline_sync.E040",
                )
            )
    if not replica_routers:
        errors.append(
            Warning(
                f"{SETTING_NAME}['READ_DATABASES'] is set but no ReplicaRouter is installed; pulls read the primary.",
                hint="Add 'django_offline_sync.replicas.ReplicaRouter' to DATABASE_ROUTERS.",
                id="offline_sync.W040",
            )
        )
    return errors
