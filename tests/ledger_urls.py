"""The example site plus a Task table only staff may change, for the ledger's 403 case."""

from django.urls import include, path
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser

from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import TaskViewSet
from example_project.urls import urlpatterns as site_patterns


class StaffOnlyTaskViewSet(TaskViewSet):
    operation_permission_classes = {"update": [IsAdminUser], "delete": [IsAdminUser]}


class SessionStaffTaskViewSet(StaffOnlyTaskViewSet):
    """Signed in by session alone: DRF answers an anonymous caller 403, not 401 (no challenge)."""

    authentication_classes = [SessionAuthentication]


router = SyncRouter()
router.register("StaffTask", StaffOnlyTaskViewSet, basename="stafftask")
router.register("SessionStaffTask", SessionStaffTaskViewSet, basename="sessionstafftask")
urlpatterns = [path("staff/", include(router.urls)), *site_patterns]
