"""Stand-in routes for the client tests while ``example_project/urls.py`` has no tables yet.

``conftest.py`` uses this module only when the example project does not route ``/tables/``.
"""

from __future__ import annotations

from django.urls import include, path

from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import NoteViewSet, TaskViewSet
from example_project.urls import urlpatterns as example_urlpatterns

router = SyncRouter()
router.register("Task", TaskViewSet, basename="task")
router.register("Note", NoteViewSet, basename="note")

urlpatterns = [*example_urlpatterns, path("tables/", include(router.urls))]
