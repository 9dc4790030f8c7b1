"""Example site: the sync tables under /tables/, sign-in under /.auth/, the admin, and the OpenAPI schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from django_offline_sync.routers import SyncRouter
from example_project.tasks.views import InspectionViewSet, NoteViewSet, TaskViewSet

router = SyncRouter()
router.register("Task", TaskViewSet, basename="task")
router.register("Note", NoteViewSet, basename="note")
router.register("Inspection", InspectionViewSet, basename="inspection")

urlpatterns = [
    path("tables/", include(router.urls)),
    path("", include("django_offline_sync.auth.urls")),  # /.auth/login/…, /.auth/me, /login/… (v1)
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (no inline script, so a strict
    # Content-Security-Policy allows it); its assets come from drf-spectacular-sidecar.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]
