"""The test site's URLs plus ``/fixed/tables/Task``: Task served with ``BoundarySkipPagination``."""

from __future__ import annotations

from django.urls import include, path

from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import TaskViewSet
from tests.urls import urlpatterns as base_patterns

from .boundary import BoundarySkipPagination


class BoundarySkipTaskViewSet(TaskViewSet):
    pagination_class = BoundarySkipPagination


router = SyncRouter()
router.register("Task", BoundarySkipTaskViewSet, basename="fixed-task")

urlpatterns = [path("fixed/tables/", include(router.urls)), *base_patterns]
