"""The example tables: Task and Note open to anyone (as in the reference samples),
Inspection scoped to the signed-in inspector."""

from rest_framework.permissions import IsAuthenticated

from django_offline_sync.viewsets import SyncViewSet

from .models import Inspection, Note, Task


class TaskViewSet(SyncViewSet):
    model = Task


class NoteViewSet(SyncViewSet):
    model = Note


class InspectionViewSet(SyncViewSet):
    """Per-user data: each inspector sees, counts, updates and deletes only their own rows."""

    model = Inspection
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return super().get_queryset().filter(owner=self.request.user)

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
