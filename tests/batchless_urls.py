"""The example tables without the ``$batch`` extension: a server a client must fall back on."""

from django.urls import include, path

from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import InspectionViewSet, NoteViewSet, TaskViewSet

router = SyncRouter(batch=False)
router.register("Task", TaskViewSet, basename="task")
router.register("Note", NoteViewSet, basename="note")
router.register("Inspection", InspectionViewSet, basename="inspection")

urlpatterns = [path("tables/", include(router.urls))]
