from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OfflineSyncAuthConfig(AppConfig):
    """Sign-in for the Azure Mobile Apps / Datasync clients (add to ``INSTALLED_APPS``)."""

    name = "django_offline_sync.auth"
    label = "offline_sync_auth"
    verbose_name = _("Offline sync sign-in")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        try:
            import drf_spectacular  # noqa: F401
        except ImportError:
            return
        from . import schema  # noqa: F401  (registers the OpenAPI security schemes)
