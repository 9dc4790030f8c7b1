"""A URLconf with one broken table view, for the offline_sync.E030 check."""

from django.urls import include, path

from django_offline_sync.routers import SyncRouter
from django_offline_sync.viewsets import SyncViewSet
from example_project.tasks.models import Task


class TypoTaskViewSet(SyncViewSet):
    model = Task
    fields = ("text", "compelte")


router = SyncRouter()
router.register("Typo", TypoTaskViewSet, basename="typo")
urlpatterns = [path("tables/", include(router.urls))]
