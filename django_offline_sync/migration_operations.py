"""Migration helpers for giving an existing, populated table the SyncModel system fields.

After the ``AddField`` operations for ``created_at``, ``updated_at``, ``version`` and
``deleted``, ``StampExistingRows`` gives every row that has no ``updated_at`` yet its own stamp
from the table's clock, exactly as a save would. ``docs/existing-models.rst`` walks through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import router
from django.db.migrations.operations.base import Operation
from django.db.models import BigIntegerField, Case, DateTimeField, F, Model, QuerySet, Value, When

from . import stamping

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import ProjectState

#: Rows per UPDATE statement.
BATCH_SIZE = 500


def stamp_existing_rows(model: type[Model], using: str = "default", *, batch_size: int = BATCH_SIZE) -> int:
    """Stamp every row of ``model`` whose ``updated_at`` is NULL; return how many.

    Works with a historical model (``apps.get_model`` in ``RunPython``) or a real one. Each
    row gets a distinct ``updated_at``/``version`` from the clock (in ``"now"`` mode: one
    timestamp and a random version each); ``created_at`` is set to the same value where it
    is NULL. ``id`` and ``deleted`` are left alone. Rows are stamped in primary-key order,
    inside one transaction that holds the table's clock lock, so the stamps cannot interleave
    with concurrent writes. Running it again stamps nothing.
    """
    base: QuerySet[Model] = QuerySet(model, using=using)
    with stamping.atomic(using):
        stamping.lock(model, using)
        pks = list(base.filter(updated_at__isnull=True).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            chunk = pks[start : start + batch_size]
            stamps = stamping.reserve(model, len(chunk), using)
            times = [stamping.ms_to_datetime(stamp.ms) for stamp in stamps]
            base.filter(pk__in=chunk).update(
                updated_at=Case(
                    *(When(pk=pk, then=Value(t)) for pk, t in zip(chunk, times, strict=True)),
                    output_field=DateTimeField(),
                ),
                version=Case(
                    *(When(pk=pk, then=Value(v)) for pk, (_, v) in zip(chunk, stamps, strict=True)),
                    output_field=BigIntegerField(),
                ),
            )
        base.filter(created_at__isnull=True).update(created_at=F("updated_at"))
    return len(pks)


def _run_deferred_sql(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Finish the schema the operations before this one changed, before rows are written.

    Django keeps some statements of a migration (the index of an ``AddField`` with
    ``db_index``, such as ``deleted``; foreign key constraints) until the migration ends. On
    PostgreSQL an ``UPDATE`` of a table with a deferred foreign key leaves trigger events
    pending until commit, and a ``CREATE INDEX`` on that table run after it then fails
    ("cannot CREATE INDEX ... because it has pending trigger events"). Run them now instead.
    """
    while schema_editor.deferred_sql:
        schema_editor.execute(schema_editor.deferred_sql.pop(0))


class StampExistingRows(Operation):
    """Stamp the rows of ``model_name`` that predate its SyncModel fields.

    Put it after the ``AddField`` operations, in a migration that depends on
    ``("offline_sync", "0001_initial")`` (the clock table). Reversing it does nothing: the
    reverse of the ``AddField`` operations removes the columns it filled.
    """

    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, batch_size: int = BATCH_SIZE) -> None:
        self.model_name = model_name
        self.batch_size = batch_size

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if self.batch_size != BATCH_SIZE:
            kwargs["batch_size"] = self.batch_size
        return self.__class__.__qualname__, [self.model_name], kwargs

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass  # data only; the schema is unchanged

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        alias = schema_editor.connection.alias
        if router.allow_migrate_model(alias, model):
            _run_deferred_sql(schema_editor)
            stamp_existing_rows(model, alias, batch_size=self.batch_size)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        pass

    def describe(self) -> str:
        return f"Stamp existing rows of {self.model_name} for sync"

    @property
    def migration_name_fragment(self) -> str:
        return f"stamp_{self.model_name.lower()}"
