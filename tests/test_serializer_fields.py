"""The serializer's per-instance fields: fresh copies of prototypes built once per class."""

from __future__ import annotations

import copy

import pytest
from rest_framework import serializers

from django_offline_sync.serializers import _SHALLOW_COPY_SAFE, SyncModelSerializer, _fresh_copy
from example_project.tasks.models import Note, Task

#: What ``copy.copy`` would honour in place of a plain new instance with the same ``__dict__``.
_COPY_HOOKS = ("__copy__", "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__", "__slots__")


@pytest.mark.parametrize("field_class", sorted(_SHALLOW_COPY_SAFE, key=lambda c: c.__name__))
def test_the_shallow_copied_classes_have_no_copy_hooks_of_their_own(field_class):
    # _fresh_copy makes what copy.copy makes only while none of these is overridden below
    # object (a DRF upgrade that adds one must take the class off the list).
    for klass in field_class.__mro__[:-1]:
        assert not set(_COPY_HOOKS) & set(vars(klass)), (field_class, klass)


def _serializer(model):
    meta = type("Meta", (), {"model": model, "fields": "__all__"})
    return type(f"{model.__name__}FieldsSerializer", (SyncModelSerializer,), {"Meta": meta})


@pytest.mark.parametrize("model", [Task, Note])
def test_a_fresh_copy_is_what_copy_copy_makes_and_shares_no_state(model):
    prototypes = _serializer(model)()._build_wire_fields()
    assert any(type(f) in _SHALLOW_COPY_SAFE for f in prototypes.values())
    for name, prototype in prototypes.items():
        fresh = _fresh_copy(prototype)
        assert type(fresh) is type(prototype)
        if type(prototype) in _SHALLOW_COPY_SAFE:
            assert vars(fresh) == vars(copy.copy(prototype)), name
            assert vars(fresh) is not vars(prototype)
        fresh.bind(name, serializers.Serializer())
        assert fresh.parent is not None and fresh.field_name == name
        assert prototype.parent is None and prototype.field_name is None  # the prototype stays unbound


def test_each_serializer_gets_its_own_bound_fields():
    serializer_class = _serializer(Task)
    first, second = serializer_class(), serializer_class()
    for name, field in first.fields.items():
        assert field is not second.fields[name]
        assert field.parent is first and second.fields[name].parent is second


@pytest.mark.django_db
def test_to_many_values_keep_the_writers_transaction():
    """Values of a to-many relation are set after the row (``create``/``update``): a write
    that carries them is more than one statement, so the writer keeps its transaction."""
    from django_offline_sync.serializers import sets_to_many
    from django_offline_sync.writer import _creates_with_one_save, _updates_with_one_save
    from example_project.tasks.views import TaskViewSet

    library = TaskViewSet._table().serializer_class

    class WithNotes(library):
        notes = serializers.PrimaryKeyRelatedField(many=True, queryset=Note.all_objects.all(), required=False)

        class Meta(library.Meta):
            fields = [*library.Meta.fields, "notes"]

    without, with_notes = WithNotes(data={"text": "x"}), WithNotes(data={"text": "x", "notes": []})
    assert without.is_valid(), without.errors
    assert with_notes.is_valid(), with_notes.errors
    assert not sets_to_many(without) and sets_to_many(with_notes)
    assert _creates_with_one_save(without, Task) and not _creates_with_one_save(with_notes, Task)
    assert _updates_with_one_save(without, Task) and not _updates_with_one_save(with_notes, Task)
