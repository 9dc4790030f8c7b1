"""The test site's URLs plus ``/positional/tables/Task``: Task with plain positional ``$skip``.

The positional endpoint turns off ``SyncPagination.boundary_skip``, so the stress test can
measure what v1/v2 clients lose without it, beside the shipped endpoint that must lose nothing.
"""

from __future__ import annotations

from django.urls import include, path

from django_offline_sync.pagination import SyncPagination
from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import TaskViewSet
from tests.urls import urlpatterns as base_patterns


class PositionalSkipPagination(SyncPagination):
    boundary_skip = False


class PositionalSkipTaskViewSet(TaskViewSet):
    pagination_class = PositionalSkipPagination


router = SyncRouter()
router.register("Task", PositionalSkipTaskViewSet, basename="positional-task")

urlpatterns = [path("positional/tables/", include(router.urls)), *base_patterns]
