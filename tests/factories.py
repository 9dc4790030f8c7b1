"""factory_boy factories, one per model; system fields are left to the model."""

import factory
from django.contrib.auth import get_user_model

from example_project.tasks.models import Inspection, Note, Task
from tests.models import Item


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    text = factory.Faker("sentence", nb_words=5)
    complete = False
    priority = factory.Faker("random_int", min=0, max=5)

    class Params:
        deleted_row = factory.Trait(deleted=True)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        deleted = kwargs.pop("deleted", False)
        obj = super()._create(model_class, *args, **kwargs)
        if deleted:
            obj.delete()
        return obj


class NoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Note

    task = factory.SubFactory(TaskFactory)
    body = factory.Faker("paragraph")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or "pw")
        if create:
            obj.save(update_fields=["password"])


class InspectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Inspection

    owner = factory.SubFactory(UserFactory)
    site = factory.Faker("city")
    pipe_id = factory.Sequence(lambda n: f"P-{n:05d}")


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    name = factory.Faker("word")
    count = factory.Faker("random_int", min=0, max=100)
