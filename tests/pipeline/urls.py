"""Views that exercise the pipeline's configuration: a column whitelist and overridden hooks."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Note, Task
from example_project.tasks.views import InspectionViewSet
from tests.models import Coded, Item, Ledger


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


class PlainView(APIView):
    """A view of the project's own, not a sync table: the exception handler leaves it alone."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise NotFound("nothing here")


class DrfHooksTaskViewSet(SyncViewSet):
    """Hooks overridden with DRF's own signatures (as written for 0.1): they keep working."""

    model = Task

    def perform_destroy(self, instance):
        instance.delete()

    def perform_undelete(self, instance):
        instance.undelete()


class CodedViewSet(SyncViewSet):
    model = Coded


class ItemViewSet(SyncViewSet):
    model = Item


class LedgerViewSet(SyncViewSet):
    model = Ledger


router = SyncRouter()
router.register("NarrowNote", NarrowNoteViewSet, basename="narrow-note")
router.register("SaveTwice", SaveTwiceTaskViewSet, basename="save-twice")
router.register("NoSave", NoSaveTaskViewSet, basename="no-save")
router.register("DrfHooks", DrfHooksTaskViewSet, basename="drf-hooks")
router.register("Coded", CodedViewSet, basename="coded")
router.register("Item", ItemViewSet, basename="item")
router.register("Ledger", LedgerViewSet, basename="ledger")
router.register("Inspection", InspectionViewSet, basename="inspection")

urlpatterns = [path("tables/", include(router.urls)), path("plain/", PlainView.as_view())]
