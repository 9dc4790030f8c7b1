"""The example tables: Task and Note open to anyone (as in the reference samples),
Inspection scoped to the signed-in inspector."""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.permissions import IsAuthenticated

from django_offline_sync.filters import ODataFilterBackend
from django_offline_sync.viewsets import SyncViewSet

from .models import Inspection, Note, Task


class TaskViewSet(SyncViewSet):
    model = Task


class NoteViewSet(SyncViewSet):
    """``?task=<id>`` (django-filter) narrows a device's pull to one task's notes."""

    model = Note
    filter_backends = [DjangoFilterBackend, ODataFilterBackend]
    filterset_fields = ["task"]


class InspectionViewSet(SyncViewSet):
    """Per-user data: each inspector sees, counts, updates and deletes only their own rows."""

    model = Inspection
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return super().get_queryset().filter(owner=self.request.user)

    def query_cache_key(self):
        # get_queryset depends on the user alone: one cached list statement per user.
        return self.request.user.pk

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
