"""A per-user Inspection view that does not give ``query_cache_key`` (tests/test_query_cache.py)."""

from django.urls import include, path
from rest_framework.permissions import IsAuthenticated

from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Inspection


class UnkeyedInspectionViewSet(SyncViewSet):
    model = Inspection
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return super().get_queryset().filter(owner=self.request.user)


router = SyncRouter()
router.register("Inspection", UnkeyedInspectionViewSet, basename="unkeyed-inspection")
urlpatterns = [path("tables/", include(router.urls))]
