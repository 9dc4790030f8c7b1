"""Adopting ``SyncModel`` on a table that already has rows: the two traps, closed.

**Old rows get stamped by ``migrate`` itself.** ``makemigrations`` adds ``updated_at`` as a
nullable column, so rows that predate it have ``updated_at = NULL``, and an incremental pull
(``updated_at > token``) never returns them. Rather than asking every project to hand-edit the
generated migration, ``migrate`` stamps them: a ``post_migrate`` handler (``stamp_after_migrate``)
finds every synced table that has its system columns and still holds unstamped rows, and stamps
them through the table's clock (``migration_operations.stamp_existing_rows``), exactly as a save
would. ``migrate`` emits ``post_migrate`` even when it has nothing to apply, so running it again
is also the fix for rows that arrive unstamped later (raw SQL, ``loaddata``). The check
``offline_sync.W012`` (``check --database default``, and ``migrate``'s own checks) reports
unstamped rows that remain.

Why not an operation that ``makemigrations`` writes into the migration? That needs a
replacement ``makemigrations`` command (a project may already have one) and does nothing for
rows that appear after the migration ran. ``StampExistingRows`` stays for projects that want
the stamping inside the migration's own transaction.

**A primary key never changes type by accident.** ``SyncModel`` declares a string ``id``; a
subclass of an existing model with an integer key that forgets to keep it
(``id = models.BigAutoField(primary_key=True)``) would make ``makemigrations`` write an
``AlterField`` that turns the integer column into text, and new rows would get GUIDs. The check
``offline_sync.E011`` compares each ``SyncModel``'s key with the key its migration files give
the table and stops ``makemigrations`` (and ``migrate``) before that migration is written; a
``pre_migrate`` handler refuses to apply one that was written anyway. A deliberate conversion
(``docs/existing-models.rst``) silences ``offline_sync.E011`` in ``SILENCED_SYSTEM_CHECKS``,
which lets both through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TextIO

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections, router
from django.db.migrations.loader import MigrationLoader

from . import stamping
from .migration_operations import stamp_existing_rows

if TYPE_CHECKING:
    from django.db.models import Field, Model

__all__ = ["stamp_unstamped_rows", "unstamped_rows"]

#: The check that guards key types; silencing it allows a deliberate conversion.
KEY_CHANGE_CHECK: Final = "offline_sync.E011"

_INTEGER_TYPES: Final = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)

_STAMP_COLUMNS: Final = ("updated_at", "created_at", "version")

#: A primary key: its name and its (possibly unbound, from a migration state) field.
_Key = tuple[str, "Field[Any, Any]"]


def _synced_models() -> list[type[Model]]:
    from .models import SyncModel

    return [
        model
        for model in apps.get_models()
        if issubclass(model, SyncModel) and not model._meta.proxy and model._meta.managed
    ]


# -- old rows ------------------------------------------------------------------------------------


def _stampable(using: str) -> list[type[Model]]:
    """The synced models whose table exists on ``using`` with the system columns already added.

    A partial ``migrate`` (one app, or a target before the adoption migration) leaves tables
    without them; those are skipped, and stamped by the ``migrate`` that adds the columns.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        if stamping.CLOCK_TABLE not in tables:
            return []
        found = []
        for model in _synced_models():
            table = model._meta.db_table
            if table not in tables or not router.allow_migrate_model(using, model):
                continue
            columns = {c.name for c in connection.introspection.get_table_description(cursor, table)}
            wanted = {getattr(model._meta.get_field(name), "column", name) for name in _STAMP_COLUMNS}
            if wanted <= columns:
                found.append(model)
    return found


def unstamped_rows(using: str = "default") -> list[tuple[type[Model], int]]:
    """(model, number of rows with no ``updated_at``) for every synced table that has some."""
    counts = []
    for model in _stampable(using):
        count = model._base_manager.using(using).filter(updated_at__isnull=True).count()
        if count:
            counts.append((model, count))
    return counts


def stamp_unstamped_rows(using: str = "default") -> list[tuple[type[Model], int]]:
    """Stamp the rows of every synced table that have no ``updated_at``; (model, count) stamped.

    One transaction per table, holding its clock lock (``stamp_existing_rows``).
    """
    done = []
    for model, _count in unstamped_rows(using):
        stamped = stamp_existing_rows(model, using)
        if stamped:
            done.append((model, stamped))
    return done


def stamp_after_migrate(
    sender: Any, *, using: str = "default", verbosity: int = 1, stdout: TextIO | None = None, **kwargs: Any
) -> None:
    """``post_migrate`` handler: stamp the rows that predate a table's adoption of SyncModel."""
    for model, count in stamp_unstamped_rows(using):
        if verbosity >= 1 and stdout is not None:
            stdout.write(f"  Stamped {count} existing row(s) of {model._meta.label} for sync.\n")


# -- primary keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyChange:
    """A synced model whose primary key differs in kind from its table's key in the migrations."""

    model: type[Model]
    old_name: str
    old: Field[Any, Any]
    new_name: str
    new: Field[Any, Any]

    def describe(self) -> str:
        return (
            f"{self.model._meta.label}'s primary key would change from {self.old_name!r} {_kind(self.old)} to "
            f"{self.new_name!r} {_kind(self.new)}: the existing ids would be rewritten and new rows would "
            "get generated string ids."
        )

    def hint(self) -> str:
        cls = type(self.old).__name__
        if self.old_name == "id" and self.old.get_internal_type() in _INTEGER_TYPES:
            keep = f"keep the integer key, declare `id = models.{cls}(primary_key=True)` in {self.model.__name__}"
        else:
            keep = f"keep the existing key, declare it ({cls} {self.old_name!r}) in {self.model.__name__}"
        return (
            f"To {keep} (docs/existing-models.rst). To convert the key on purpose, write that migration "
            f"by hand and add {KEY_CHANGE_CHECK!r} to SILENCED_SYSTEM_CHECKS."
        )


def _kind(field: Field[Any, Any]) -> str:
    internal = field.get_internal_type()
    return f"(integer, {internal})" if internal in _INTEGER_TYPES else f"({internal})"


def _family(field: Field[Any, Any]) -> str:
    internal = field.get_internal_type()
    return "integer" if internal in _INTEGER_TYPES else internal


def _pk_of(fields: dict[str, Field[Any, Any]]) -> _Key | None:
    """(name, field) of the primary key among a ModelState's (unbound) fields."""
    return next(((name, f) for name, f in fields.items() if getattr(f, "primary_key", False)), None)


def _change(model: type[Model], old: _Key | None, new: _Key | None) -> KeyChange | None:
    if old is None or new is None:
        return None
    if old[0] == new[0] and _family(old[1]) == _family(new[1]):
        return None
    return KeyChange(model, old[0], old[1], new[0], new[1])


def silenced() -> bool:
    return KEY_CHANGE_CHECK in settings.SILENCED_SYSTEM_CHECKS


def key_changes() -> list[KeyChange]:
    """Synced models whose key the next ``makemigrations`` would change in kind (integer → string).

    Compares each model with the state its app's migration files build (read from disk, no
    database). A table the migrations have never created is new and may take any key.
    """
    models = _synced_models()
    if not models:
        return []
    try:
        state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    except Exception:  # broken migration files: ``migrate`` reports them itself
        return []
    changes = []
    for model in models:
        model_state = state.models.get((model._meta.app_label, model._meta.model_name))
        if model_state is None:
            continue
        pk = model._meta.pk
        assert pk is not None
        change = _change(model, _pk_of(dict(model_state.fields)), (pk.name, pk))
        if change is not None:
            changes.append(change)
    return changes


def _holds_rows(using: str, table: str) -> bool:
    """Whether ``table`` exists on ``using`` with at least one row (ids a key change would rewrite).

    On a fresh database (a new deployment, the test database) the whole migration history is
    planned and the table does not exist yet: a key change made on purpose long ago must
    replay there without the check being silenced forever.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            return False
        limit = connection.ops.limit_offset_sql(0, 1)  # LIMIT 1, or Oracle's FETCH FIRST
        cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(table)} {limit}")
        return cursor.fetchone() is not None


def refuse_key_changes(sender: Any, *, using: str = "default", plan: Any = None, **kwargs: Any) -> None:
    """``pre_migrate`` handler: refuse a planned migration that changes a synced table's key kind.

    Catches a migration written before ``offline_sync.E011`` could stop it (or with
    ``--skip-checks``), when the table already holds rows. Only migrations that alter, add
    or remove a field of a synced model have their states compared.
    """
    if not plan or silenced():
        return
    synced = {(m._meta.app_label, m._meta.model_name): m for m in _synced_models()}
    suspects = [
        migration
        for migration, backwards in plan
        if not backwards
        and any(
            (migration.app_label, str(getattr(op, "model_name", "")).lower()) in synced
            and type(op).__name__ in ("AlterField", "AddField", "RemoveField", "RenameField")
            for op in migration.operations
        )
    ]
    if not suspects:
        return
    loader = MigrationLoader(connections[using], ignore_no_migrations=True)
    for migration in suspects:
        key = (migration.app_label, migration.name)
        before = loader.project_state(key, at_end=False)
        after = loader.project_state(key, at_end=True)
        for (app_label, model_name), model in synced.items():
            if app_label != migration.app_label:
                continue
            old_state, new_state = before.models.get((app_label, model_name)), after.models.get((app_label, model_name))
            if old_state is None or new_state is None:
                continue
            change = _change(model, _pk_of(dict(old_state.fields)), _pk_of(dict(new_state.fields)))
            if change is not None and _holds_rows(using, model._meta.db_table):
                raise CommandError(
                    f"Migration {app_label}.{migration.name} changes the primary key of a synced table. "
                    f"{change.describe()} {change.hint()} Remove the primary-key change from that "
                    f"migration before migrating. [{KEY_CHANGE_CHECK}]"
                )
