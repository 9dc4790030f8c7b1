"""The example site plus a Task table only staff may change, for the ledger's 403 case."""

from django.urls import include, path
from rest_framework.permissions import IsAdminUser

from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import TaskViewSet
from example_project.urls import urlpatterns as site_patterns


class StaffOnlyTaskViewSet(TaskViewSet):
    operation_permission_classes = {"update": [IsAdminUser], "delete": [IsAdminUser]}


router = SyncRouter()
router.register("StaffTask", StaffOnlyTaskViewSet, basename="stafftask")
urlpatterns = [path("staff/", include(router.urls)), *site_patterns]
