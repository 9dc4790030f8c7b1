"""Views that exercise the pipeline's configuration: a column whitelist and overridden hooks."""

from __future__ import annotations

from django.urls import include, path

from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Note, Task


class NarrowNoteViewSet(SyncViewSet):
    """A whitelist naming the foreign key by its attname: ``taskId`` must round-trip."""

    model = Note
    fields = ("task_id", "body")


class SaveTwiceTaskViewSet(SyncViewSet):
    """``perform_update`` that saves twice: the second save takes its own stamp."""

    model = Task

    def perform_update(self, serializer):
        instance = serializer.save()
        instance.priority = instance.priority + 100
        instance.save()


class NoSaveTaskViewSet(SyncViewSet):
    """``perform_update`` that refuses to write: the row and its version stay as they were."""

    model = Task

    def perform_update(self, serializer):
        pass


router = SyncRouter()
router.register("NarrowNote", NarrowNoteViewSet, basename="narrow-note")
router.register("SaveTwice", SaveTwiceTaskViewSet, basename="save-twice")
router.register("NoSave", NoSaveTaskViewSet, basename="no-save")

urlpatterns = [path("tables/", include(router.urls))]
