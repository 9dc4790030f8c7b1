"""AppConfig for the test-only ``legacy`` app (installed only inside test_migrations)."""

from __future__ import annotations

from django.apps import AppConfig


class LegacyConfig(AppConfig):
    name = "tests.legacy"
    label = "legacy"
    default_auto_field = "django.db.models.BigAutoField"
